// ListConRanker in the browser: the model runs in a dedicated Web Worker created here; every
// method returns a Promise, concurrent calls are queued in order, and an AbortSignal cancels a
// load or a call. Errors are `ListConRankerError`s with a stable `code`. Bundles are cached in
// IndexedDB (see cache.js); the second load of the same bundle reads no shard from the network.
// A ranker may instead score on a `listconranker serve` server (`ListConRanker.remote`, or
// `load`'s `fallback` for device 'auto' on a page without a hardware WebGPU adapter): the same
// methods, over HTTP (RemoteChannel below).
import { bundleBase, clearAll, deleteVersions, latestVersion, openCache } from './cache.js';
import { probeWebGpu } from './gpu.js';
import { ErrorCode, Op } from './protocol.js';

/** @typedef {import('./index.js').ErrorCode} PublicErrorCode */
/** @typedef {import('./index.js').ListConRankerError} DeclaredError */
/** @typedef {import('./index.js').ListConRanker} DeclaredRanker */
/** @typedef {import('./index.js').LoadOptions} LoadOptions */
/** @typedef {import('./index.js').RemoteRankerOptions} RemoteRankerOptions */
/** @typedef {import('./index.js').ServerInfo} ServerInfo */
/** @typedef {import('./index.js').StoredDType} StoredDType */
/** @typedef {import('./index.js').CallOptions} CallOptions */
/** @typedef {import('./index.js').RerankOptions} RerankOptions */
/** @typedef {import('./index.js').RankedPassage} RankedPassage */
/** @typedef {import('./index.js').ProgressEvent} LoadProgress */
/** @typedef {import('./protocol.js').LoadResult} LoadResult */
/** @typedef {import('./protocol.js').OpResults} OpResults */
/** @typedef {import('./protocol.js').WorkerReply} WorkerReply */

// (`import('./index.js')` in these JSDoc types is index.d.ts, the published declarations: the
// classes below are checked against them with @implements.)

/** @implements {DeclaredError} */
export class ListConRankerError extends Error {
  /** @type {'ListConRankerError'} */
  name = 'ListConRankerError';

  /**
   * @param {PublicErrorCode} code
   * @param {string} message
   * @param {{ serverCode?: string, status?: number, retryAfter?: number }} [server] What a
   *   server's error answer said.
   */
  constructor(code, message, server) {
    super(message);
    this.code = code;
    /** The server's own code (`INPUT_TOO_LARGE`, `OVERLOADED`, ...) when a server answered with
     *  an error; undefined otherwise. */
    this.serverCode = server?.serverCode;
    /** The HTTP status of a server's error answer; undefined otherwise. */
    this.status = server?.status;
    /** Seconds to wait before retrying, from the answer's `Retry-After` (when the server sent one
     *  and CORS lets the page read it); undefined otherwise. */
    this.retryAfter = server?.retryAfter;
  }
}

/**
 * @param {AbortSignal | undefined} signal
 * @returns {Error}
 */
function abortError(signal) {
  const reason = signal && signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The operation was aborted', 'AbortError');
}

/** @param {any} device From the caller, of any type: checked here. */
function checkDevice(device) {
  if (!['auto', 'webgpu', 'cpu'].includes(device)) {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: device must be 'auto', 'webgpu' or 'cpu', not ${JSON.stringify(device)}`);
  }
}

/** @param {any} dtype From the caller, of any type: checked here. */
function checkDtype(dtype) {
  if (!['f32', 'f16'].includes(dtype)) {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: dtype must be 'f32' or 'f16', not ${JSON.stringify(dtype)}`);
  }
}

/** @param {any} threads From the caller, of any type: checked here. */
function checkThreads(threads) {
  if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: threads must be 'auto' or an integer from 1 to 256, not ${JSON.stringify(threads)}`);
  }
}

/** @param {string | URL} modelUrl */
function absoluteUrl(modelUrl) {
  const base = typeof document !== 'undefined' ? document.baseURI : self.location.href;
  return new URL(String(modelUrl), base).href;
}

/**
 * A request waiting for its answer.
 * @typedef {object} Pending
 * @property {(result: any) => void} resolve
 * @property {(error: unknown) => void} reject
 * @property {((event: LoadProgress) => void) | undefined} onProgress
 * @property {() => void} cleanup
 */

/** The page's end of the worker protocol (protocol.js): numbered requests, their answers. */
class WorkerChannel {
  /** @param {Worker} worker */
  constructor(worker) {
    /** @type {Worker | null} null once terminated. */
    this.worker = worker;
    this.next = 1;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    worker.onmessage = (event) => this.receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.failAll(ErrorCode.INTERNAL_ERROR, `the worker failed: ${event.message || 'unknown error'}`);
    };
  }

  /** @param {WorkerReply} msg */
  receive(msg) {
    const entry = this.pending.get(msg.id);
    if (!entry) return;
    if ('progress' in msg) {
      if (entry.onProgress) {
        try {
          entry.onProgress(msg.progress);
        } catch (e) {
          console.error(e);
        }
      }
      return;
    }
    this.pending.delete(msg.id);
    entry.cleanup();
    if (msg.ok) entry.resolve(msg.result);
    // A code the worker or the wasm module set (the browser's codes: index.d.ts's ErrorCode), or
    // INTERNAL_ERROR for an error without one.
    else entry.reject(new ListConRankerError(/** @type {PublicErrorCode} */ (msg.error.code), msg.error.message));
  }

  /**
   * Sends one request; resolves to the worker's result.
   * @template {keyof OpResults} K
   * @param {K} op
   * @param {object} args
   * @param {{ signal?: AbortSignal, onProgress?: (event: LoadProgress) => void }} [options]
   * @returns {Promise<OpResults[K]>}
   */
  call(op, args, { signal, onProgress } = {}) {
    if (!this.worker) return Promise.reject(new ListConRankerError(ErrorCode.DISPOSED, 'this ranker was disposed'));
    if (signal && signal.aborted) return Promise.reject(abortError(signal));
    const id = this.next++;
    const worker = this.worker;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        this.worker?.postMessage({ op: Op.CANCEL, target: id });
        reject(abortError(signal));
      };
      const cleanup = () => signal && signal.removeEventListener('abort', onAbort);
      this.pending.set(id, { resolve, reject, onProgress, cleanup });
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      worker.postMessage({ id, op, args });
    });
  }

  /**
   * Rejects every request still waiting.
   * @param {PublicErrorCode} code
   * @param {string} message
   */
  failAll(code, message) {
    for (const [id, entry] of this.pending) {
      this.pending.delete(id);
      entry.cleanup();
      entry.reject(new ListConRankerError(code, message));
    }
  }

  /** Whether the worker was ended. */
  get closed() {
    return this.worker === null;
  }

  terminate() {
    this.worker?.terminate();
    this.worker = null;
    this.failAll(ErrorCode.DISPOSED, 'this ranker was disposed');
  }
}

/** How long a remote ranker waits for an answer by default (ms): past the server's own default
 *  scoring timeout (60 s), so that the server's TIMEOUT answer comes first. */
const DEFAULT_TIMEOUT_MS = 120000;
/** How often a remote ranker asks a server that is still loading its model (ms). */
const LOADING_POLL_MS = 1000;

/**
 * The server's error code (its `{error, code}` body) as one of the package's codes.
 * @param {string | null} serverCode
 * @param {number} status
 * @returns {PublicErrorCode}
 */
function mapServerCode(serverCode, status) {
  switch (serverCode) {
    case 'INPUT_INVALID':
    case 'INPUT_TOO_LARGE':
      return ErrorCode.INPUT_INVALID;
    case 'UNAUTHORIZED':
      return ErrorCode.UNAUTHORIZED;
    default:
      // LOADING, OVERLOADED, TIMEOUT, SHUTTING_DOWN, MODEL_UNAVAILABLE, NOT_FOUND, the engine's
      // codes on a 500, and answers without a code (a proxy's page) go by their status.
      if (status === 401 || status === 403) return ErrorCode.UNAUTHORIZED;
      if (status >= 400 && status < 500 && ![404, 408, 429].includes(status)) return ErrorCode.INPUT_INVALID;
      return ErrorCode.SERVER_UNAVAILABLE;
  }
}

/**
 * Resolves after `ms`, or rejects when `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Whether `value` is `rows` arrays of numbers, the i-th of `lengths[i]` numbers.
 * @param {unknown} value
 * @param {number[]} lengths
 * @returns {value is number[][]}
 */
function isScores(value, lengths) {
  return Array.isArray(value) && value.length === lengths.length && value.every((row, i) =>
    Array.isArray(row) && row.length === lengths[i] && row.every((x) => typeof x === 'number'));
}

/**
 * Passages per list of a batch the caller gave (any shape: the server checks it; this is only
 * for checking the answer's shape).
 * @param {unknown[]} lists
 */
function passageCounts(lists) {
  return lists.map((list) => (Array.isArray(list) ? Math.max(list.length - 1, 0) : 0));
}

/**
 * The page's end of a `listconranker serve` server: the worker channel's `call` over HTTP
 * (POST /v1/score), so that a ListConRanker runs on either. Calls are not queued: the server
 * batches concurrent requests. Every request is bounded by `timeoutMs` and ends at `dispose`.
 */
class RemoteChannel {
  /**
   * @param {string} base The server's URL, ending in '/'.
   * @param {{ apiKey: string | null, timeoutMs: number }} options
   */
  constructor(base, { apiKey, timeoutMs }) {
    this.base = base;
    this.apiKey = apiKey;
    this.timeoutMs = timeoutMs;
    /** Aborted by dispose: every request in flight ends with DISPOSED. */
    this.lifetime = new AbortController();
    /** The server's truncation length (set from /info). */
    this.maxLength = 0;
  }

  /** Whether dispose() has run. */
  get closed() {
    return this.lifetime.signal.aborted;
  }

  /**
   * One HTTP request to the server; resolves to its JSON answer, rejects with a coded error (or
   * the caller's abort reason).
   * @param {'GET' | 'POST'} method
   * @param {string} path Relative to the server's URL.
   * @param {string | null} body JSON text.
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<any>}
   */
  async request(method, path, body, signal) {
    if (this.closed) throw new ListConRankerError(ErrorCode.DISPOSED, 'this ranker was disposed');
    if (signal && signal.aborted) throw abortError(signal);
    const url = new URL(path, this.base).href;
    const controller = new AbortController();
    const stop = () => controller.abort();
    let timedOut = false;
    const timer = Number.isFinite(this.timeoutMs)
      ? setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, Math.min(this.timeoutMs, 2 ** 31 - 1))
      : null;
    signal?.addEventListener('abort', stop, { once: true });
    this.lifetime.signal.addEventListener('abort', stop, { once: true });
    /** @type {Record<string, string>} */
    const headers = {};
    if (body !== null) headers['Content-Type'] = 'application/json';
    if (this.apiKey !== null) headers.Authorization = `Bearer ${this.apiKey}`;
    /** @type {Response} */
    let response;
    let text;
    try {
      response = await fetch(url, {
        method, headers, body, signal: controller.signal, mode: 'cors', credentials: 'omit', cache: 'no-store',
      });
      text = await response.text();
    } catch (e) {
      if (signal && signal.aborted) throw abortError(signal);
      if (this.closed) throw new ListConRankerError(ErrorCode.DISPOSED, 'this ranker was disposed');
      if (timedOut) {
        throw new ListConRankerError(ErrorCode.SERVER_UNAVAILABLE, `the server did not answer ${method} ${url} within ${this.timeoutMs} ms (timeoutMs)`);
      }
      const origin = typeof location !== 'undefined' ? location.origin : 'this page';
      throw new ListConRankerError(
        ErrorCode.SERVER_UNAVAILABLE,
        `cannot reach the server at ${url}: ${messageOf(e)} (it is down or the URL is wrong, or it does not allow ` +
        `this page's origin ${origin}: \`listconranker serve --cors-origin ${origin}\`)`,
      );
    } finally {
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
      this.lifetime.signal.removeEventListener('abort', stop);
    }
    /** @type {any} */
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    if (!response.ok) {
      const serverCode = json && typeof json.code === 'string' ? json.code : null;
      const said = json && typeof json.error === 'string' ? json.error : `HTTP ${response.status} ${response.statusText}`.trim();
      const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
      throw new ListConRankerError(
        mapServerCode(serverCode, response.status),
        `${said} (the server ${this.base} answered ${method} /${path} with ${response.status}${serverCode ? ` ${serverCode}` : ''})`,
        { serverCode: serverCode ?? undefined, status: response.status, retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined },
      );
    }
    if (json === null) {
      throw new ListConRankerError(ErrorCode.SERVER_UNAVAILABLE, `the server ${this.base} answered ${method} /${path} with something other than JSON: is it a listconranker server?`);
    }
    return json;
  }

  /**
   * POST /v1/score; resolves to `{scores}` checked against the lists' passage counts.
   * @param {string} lists The `lists` field as JSON text.
   * @param {boolean} iterative
   * @param {number[]} counts Passages per list.
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<number[][]>}
   */
  async score(lists, iterative, counts, signal) {
    const answer = await this.request('POST', 'v1/score', `{"lists":${lists},"iterative":${iterative}}`, signal);
    if (!isScores(answer.scores, counts)) {
      throw new ListConRankerError(ErrorCode.SERVER_UNAVAILABLE, `the server ${this.base} answered /v1/score with scores of the wrong shape: is it a listconranker server?`);
    }
    return answer.scores;
  }

  /**
   * The worker channel's call, for the operations a ListConRanker sends after its load.
   * @template {keyof OpResults} K
   * @param {K} op
   * @param {any} args
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<OpResults[K]>}
   */
  async call(op, args, { signal } = {}) {
    if (this.closed) throw new ListConRankerError(ErrorCode.DISPOSED, 'this ranker was disposed');
    if (signal && signal.aborted) throw abortError(signal);
    /** @type {any} */
    let result;
    switch (op) {
      case Op.COMPUTE_SCORE: {
        const batch = JSON.parse(args.json);
        result = await this.score(args.json, false, passageCounts(batch), signal);
        break;
      }
      case Op.ITERATIVE_INFERENCE: {
        const list = JSON.parse(args.json);
        result = (await this.score(`[${args.json}]`, true, passageCounts([list]), signal))[0];
        break;
      }
      case Op.SET_MAX_LENGTH:
        if (args.maxLength !== this.maxLength) {
          throw new ListConRankerError(
            ErrorCode.INPUT_INVALID,
            `invalid input: the server ${this.base} truncates texts at ${this.maxLength} tokens (its --max-length); a remote ranker cannot change it to ${JSON.stringify(args.maxLength)}`,
          );
        }
        result = undefined;
        break;
      case Op.STATS:
        result = { wasmMemoryBytes: 0 };
        break;
      case Op.DISPOSE:
        this.terminate();
        result = null;
        break;
      default:
        throw new ListConRankerError(ErrorCode.INTERNAL_ERROR, `a remote ranker cannot run ${op}`);
    }
    return result;
  }

  /** Ends every request in flight (DISPOSED) and refuses later ones. */
  terminate() {
    this.lifetime.abort();
  }
}

/**
 * `e && e.message`, typed: a thrown value's message, for messages.
 * @param {unknown} e
 */
function messageOf(e) {
  return e && typeof e === 'object' && 'message' in e ? String(e.message) : String(e);
}

/**
 * The server's URL with a trailing '/', so that its endpoints resolve under its path.
 * @param {any} serverUrl From the caller, of any type: checked here.
 * @param {string} what The option's name, for messages.
 */
function serverBase(serverUrl, what) {
  if (typeof serverUrl !== 'string' && !(serverUrl instanceof URL)) {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: ${what} must be the server's URL (a string or URL), not ${JSON.stringify(serverUrl)}`);
  }
  let url;
  try {
    url = new URL(absoluteUrl(serverUrl));
  } catch {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: ${what} is not a URL: ${JSON.stringify(String(serverUrl))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: ${what} must be an http: or https: URL, not ${url.href}`);
  }
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

/**
 * Checks a remote ranker's options; fills the defaults.
 * @param {any} options From the caller, of any type: checked here.
 * @returns {{ apiKey: string | null, timeoutMs: number }}
 */
function remoteOptions(options) {
  const { apiKey = null, timeoutMs = DEFAULT_TIMEOUT_MS } = options;
  if (apiKey !== null && (typeof apiKey !== 'string' || apiKey === '')) {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, 'invalid input: apiKey must be a non-empty string');
  }
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) {
    throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: timeoutMs must be a positive number of milliseconds (Infinity for none), not ${JSON.stringify(timeoutMs)}`);
  }
  return { apiKey, timeoutMs };
}

/**
 * Connects to a server: waits until /health says its model is loaded (polling while it answers
 * LOADING, within `timeoutMs`), then reads /info (which wants the API key, so a wrong key fails
 * here). Resolves to the channel and what the ranker shows.
 * @param {string} base
 * @param {{ apiKey: string | null, timeoutMs: number }} options
 * @param {AbortSignal | undefined} signal
 * @param {number} startedAt performance.now() at the start of the load.
 * @returns {Promise<{ channel: RemoteChannel, state: RankerState }>}
 */
async function connectRemote(base, options, signal, startedAt) {
  const channel = new RemoteChannel(base, options);
  const deadline = performance.now() + options.timeoutMs;
  const cancel = new AbortController();
  const stop = () => cancel.abort(abortError(signal));
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for (;;) {
      try {
        await channel.request('GET', 'health', null, signal);
        break;
      } catch (e) {
        const loading = e instanceof ListConRankerError && e.serverCode === 'LOADING';
        if (!loading || performance.now() + LOADING_POLL_MS > deadline) throw e;
        await sleep(LOADING_POLL_MS, cancel.signal);
      }
    }
    const info = await channel.request('GET', 'info', null, signal);
    const model = info && info.model;
    if (!model || typeof model.hidden_size !== 'number' || typeof model.max_length !== 'number') {
      throw new ListConRankerError(ErrorCode.SERVER_UNAVAILABLE, `the server ${base} answered /info without the model's sizes: is it a listconranker server?`);
    }
    channel.maxLength = model.max_length;
    const limits = info.limits || {};
    /** @type {ServerInfo} */
    const server = {
      url: base,
      name: String(info.name ?? ''),
      version: String(info.version ?? ''),
      device: String(model.device ?? ''),
      dtype: String(model.dtype ?? ''),
      maxLength: model.max_length,
      maxPassages: model.max_passages ?? null,
      maxTexts: limits.max_texts ?? null,
      maxChars: limits.max_chars ?? null,
      maxBodyBytes: limits.max_body_bytes ?? null,
    };
    /** @type {RankerState} */
    const state = {
      device: 'remote',
      dtype: model.dtype === 'f16' ? 'f16' : 'f32',
      storedDtype: null,
      note: null,
      adapter: null,
      threads: 0,
      threadsNote: null,
      info: { hidden: model.hidden_size, layers: model.layers, vocab: null },
      totalBytes: 0,
      downloadedBytes: 0,
      fromCache: false,
      cached: false,
      persisted: null,
      loadMs: performance.now() - startedAt,
      wasmMemoryBytes: 0,
      server,
    };
    return { channel, state };
  } catch (e) {
    channel.terminate();
    throw e;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

/**
 * What a ListConRanker shows: the worker's answer to its load, or a server's (device 'remote').
 * @typedef {Omit<LoadResult, 'device' | 'storedDtype' | 'warn' | 'warnings'> & {
 *   device: 'webgpu' | 'cpu' | 'remote',
 *   storedDtype: StoredDType | null,
 *   server: ServerInfo | null,
 * }} RankerState
 */

/**
 * `load`'s `fallback` option: a server's URL, or `{url, apiKey?, timeoutMs?}`.
 * @param {any} fallback From the caller, of any type: checked here.
 * @returns {{ base: string, options: { apiKey: string | null, timeoutMs: number } }}
 */
function fallbackServer(fallback) {
  if (typeof fallback === 'string' || fallback instanceof URL) {
    return { base: serverBase(fallback, 'fallback'), options: remoteOptions({}) };
  }
  if (typeof fallback === 'object' && !Array.isArray(fallback)) {
    return { base: serverBase(fallback.url, 'fallback.url'), options: remoteOptions(fallback) };
  }
  throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: fallback must be a server's URL or {url, apiKey?, timeoutMs?}, not ${JSON.stringify(fallback)}`);
}

/**
 * What a ListConRanker sends its calls through: the worker (WorkerChannel) or a server
 * (RemoteChannel).
 * @typedef {object} Channel
 * @property {<K extends keyof OpResults>(op: K, args: object, options?: { signal?: AbortSignal }) => Promise<OpResults[K]>} call
 * @property {() => void} terminate
 * @property {boolean} closed
 */

/** @implements {DeclaredRanker} */
export class ListConRanker {
  /**
   * @private
   * @param {Channel} channel
   * @param {RankerState} info The worker's answer to the load, or the server's.
   */
  constructor(channel, info) {
    /** @private */
    this._channel = channel;
    /** What the model actually runs on: 'webgpu' or 'cpu', or 'remote' (a server scores). */
    this.device = info.device;
    /** The server a remote ranker scores on (what its /info says), or null. */
    this.server = info.server;
    /** The compute type. */
    this.dtype = info.dtype;
    /** The float type the bundle's weights are stored in (its manifest's `dtype`). */
    this.storedDtype = info.storedDtype;
    /** Why the device differs from the one asked for (or null). */
    this.deviceNote = info.note;
    /** The WebGPU adapter's description, when on WebGPU (or null). */
    this.adapter = info.adapter;
    /** CPU threads the model runs on (1 on WebGPU, and on pages that are not cross-origin isolated). */
    this.threads = info.threads;
    /** Why the CPU backend runs on fewer threads than the machine has (or null). */
    this.threadsNote = info.threadsNote;
    /** The model's sizes: {hidden, layers, vocab}. */
    this.config = info.info;
    /** Milliseconds from the start of load() to a usable model (in the worker). */
    this.loadMs = info.loadMs;
    /** Bytes of the bundle's files. */
    this.totalBytes = info.totalBytes;
    /** Bytes fetched from the network by this load (0 when every file came from the cache). */
    this.downloadedBytes = info.downloadedBytes;
    /** Whether every file came from the IndexedDB cache. */
    this.fromCache = info.fromCache;
    /** Whether the bundle is (now) stored in the cache. */
    this.cached = info.cached;
    /** Whether the browser keeps this origin's storage persistently (navigator.storage.persisted()
     *  during the load); null when not cached or unknown. */
    this.persisted = info.persisted;
    /** The worker's wasm memory once loaded, in bytes: the peak of the load (wasm memory never
     *  shrinks). On WebGPU the weights live in GPU buffers, not here. */
    this.wasmMemoryBytes = info.wasmMemoryBytes;
  }

  /**
   * Loads a web bundle (the directory of `manifest.json`, written by `listconranker convert`).
   * @param {string | URL} modelUrl
   * @param {LoadOptions} [options]
   * @returns {Promise<ListConRanker>}
   */
  static async load(modelUrl, options = {}) {
    const startedAt = performance.now();
    const { device = 'auto', dtype = 'f32', maxLength = 512, onProgress, signal, wasmUrl, threadsUrl, threads = 'auto', cache = 'auto', fallback } = options;
    checkDevice(device);
    checkDtype(dtype);
    checkThreads(threads);
    if (!['auto', 'best-effort', 'off'].includes(cache)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: cache must be 'auto', 'best-effort' or 'off', not ${JSON.stringify(cache)}`);
    }
    if (typeof modelUrl !== 'string' && !(modelUrl instanceof URL)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, 'invalid input: modelUrl must be a string or URL');
    }
    const server = fallback === undefined || fallback === null ? null : fallbackServer(fallback);
    if (signal && signal.aborted) throw abortError(signal);
    // 'auto' with a fallback server: the server scores when this browser has no hardware WebGPU
    // adapter (none, or only a software one), as the worker would decide for 'auto'.
    if (device === 'auto' && server) {
      const gpu = await probeWebGpu();
      if (signal && signal.aborted) throw abortError(signal);
      if (!gpu.hardware) {
        const { channel, state } = await connectRemote(server.base, server.options, signal, startedAt);
        const notes = [`${gpu.why}: scoring on the server ${server.base} (fallback)`];
        if (state.dtype !== dtype) notes.push(`the server computes in ${state.dtype}, not ${dtype}`);
        if (channel.maxLength !== maxLength) {
          notes.push(`the server truncates texts at ${channel.maxLength} tokens, not ${maxLength}`);
          console.warn(`listconranker: the fallback server ${server.base} truncates texts at ${channel.maxLength} tokens (its --max-length), not at maxLength ${maxLength}`);
        }
        const ranker = new ListConRanker(channel, { ...state, note: notes.join('; ') });
        if (onProgress) {
          try {
            onProgress({ phase: 'ready', loaded: 0, total: 0, file: null });
          } catch (e) {
            console.error(e);
          }
        }
        return ranker;
      }
    }
    const base = typeof document !== 'undefined' ? document.baseURI : self.location.href;
    const url = new URL(String(modelUrl), base).href;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'listconranker' });
    const channel = new WorkerChannel(worker);
    const onAbort = () => channel.terminate();
    try {
      const loading = channel.call(
        Op.LOAD,
        {
          url, device, dtype, maxLength, cache, threads,
          wasmUrl: wasmUrl ? new URL(String(wasmUrl), base).href : null,
          // A directory: the URL must end in '/' to resolve the files in it.
          threadsUrl: threadsUrl ? new URL(String(threadsUrl).replace(/\/?$/, '/'), base).href : null,
        },
        { signal, onProgress },
      );
      // After the call's own listener (which rejects with the AbortError): end the worker.
      signal?.addEventListener('abort', onAbort, { once: true });
      const info = await loading;
      const ranker = new ListConRanker(channel, { ...info, server: null });
      if (info.warn) console.warn(`listconranker: ${info.note}`);
      for (const w of info.warnings || []) console.warn(`listconranker: ${w}`);
      return ranker;
    } catch (e) {
      channel.terminate();
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A ranker that scores on a `listconranker serve` server (POST /v1/score): the same methods,
   * `device` 'remote'. Resolves once the server's /health says its model is loaded (waiting while
   * it loads, within `timeoutMs`) and its /info has been read.
   * @param {string | URL} serverUrl
   * @param {RemoteRankerOptions} [options]
   * @returns {Promise<ListConRanker>}
   */
  static async remote(serverUrl, options = {}) {
    const startedAt = performance.now();
    const base = serverBase(serverUrl, 'serverUrl');
    const checked = remoteOptions(options);
    const { signal } = options;
    if (signal && signal.aborted) throw abortError(signal);
    const { channel, state } = await connectRemote(base, checked, signal, startedAt);
    return new ListConRanker(channel, state);
  }

  /**
   * Whether a complete copy of the bundle at `modelUrl` is in this origin's IndexedDB cache.
   * @param {string | URL} modelUrl
   * @returns {Promise<boolean>}
   */
  static async isCached(modelUrl) {
    const db = await openCache();
    if (!db) return false;
    try {
      return (await latestVersion(db, bundleBase(absoluteUrl(modelUrl)))) !== null;
    } finally {
      db.close();
    }
  }

  /**
   * Deletes the cached copies (complete or partial) of the bundle at `modelUrl`, or of every bundle.
   * @param {string | URL | null} [modelUrl]
   * @returns {Promise<void>}
   */
  static async clearCache(modelUrl) {
    const db = await openCache();
    if (!db) return;
    try {
      if (modelUrl === undefined || modelUrl === null) await clearAll(db);
      else await deleteVersions(db, bundleBase(absoluteUrl(modelUrl)));
    } finally {
      db.close();
    }
  }

  /**
   * One score in (0, 1) per passage of each `[query, passage, ...]` list.
   * @param {string[][]} batch
   * @param {CallOptions} [options]
   * @returns {Promise<number[][]>}
   */
  async computeScore(batch, { signal } = {}) {
    if (!Array.isArray(batch)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, 'invalid input: expected an array of [query, passage, ...] lists');
    }
    return this._channel.call(Op.COMPUTE_SCORE, { json: JSON.stringify(batch) }, { signal });
  }

  /**
   * Iterative inference over one `[query, passage, ...]` list (scores for ranking only).
   * @param {string[]} list
   * @param {CallOptions} [options]
   * @returns {Promise<number[]>}
   */
  async iterativeInference(list, { signal } = {}) {
    if (!Array.isArray(list)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, 'invalid input: expected a [query, passage, ...] list');
    }
    return this._channel.call(Op.ITERATIVE_INFERENCE, { json: JSON.stringify(list) }, { signal });
  }

  /**
   * Passages sorted by score, best first: `[{index, score}]` (plus `document` if asked).
   * @param {string} query
   * @param {string[]} passages
   * @param {RerankOptions} [options]
   * @returns {Promise<RankedPassage[]>}
   */
  async rerank(query, passages, { topK, iterative = true, returnDocuments = false, signal } = {}) {
    if (typeof query !== 'string' || !Array.isArray(passages)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, 'invalid input: rerank(query: string, passages: string[])');
    }
    const list = [query, ...passages];
    const scores = iterative
      ? await this.iterativeInference(list, { signal })
      : (await this.computeScore([list], { signal }))[0];
    /** @type {RankedPassage[]} */
    const ranked = scores.map((score, index) => (returnDocuments ? { index, score, document: passages[index] } : { index, score }));
    ranked.sort((a, b) => b.score - a.score || a.index - b.index);
    return topK === undefined || topK === null ? ranked : ranked.slice(0, topK);
  }

  /**
   * Changes the truncation length (tokens per text, [CLS] and [SEP] included).
   * @param {number} maxLength
   * @returns {Promise<void>}
   */
  async setMaxLength(maxLength) {
    await this._channel.call(Op.SET_MAX_LENGTH, { maxLength });
  }

  /**
   * The worker's wasm memory now, in bytes (its peak so far): `{wasmMemoryBytes}`.
   * @returns {Promise<{ wasmMemoryBytes: number }>}
   */
  async stats() {
    return this._channel.call(Op.STATS, {});
  }

  /**
   * Frees the model and ends the worker (a remote ranker: ends its requests in flight).
   * @returns {Promise<void>}
   */
  async dispose() {
    if (this._channel.closed) return;
    try {
      await this._channel.call(Op.DISPOSE, {});
    } finally {
      this._channel.terminate();
    }
  }
}

export default ListConRanker;

// Type checks only (JSDoc, no code): with the @implements above, each class and its declaration
// in index.d.ts have the same public members and statics, of the same types (tsconfig.json).
/**
 * @template {never} T
 * @typedef {T} MustBeNever
 */
/**
 * @template {true} T
 * @typedef {T} MustBeTrue
 */
/** @typedef {typeof import('./index.js').ListConRanker} DeclaredRankerClass */
/** @typedef {MustBeNever<Exclude<keyof ListConRanker, keyof DeclaredRanker>>} UndeclaredMembers */
/** @typedef {MustBeNever<Exclude<keyof ListConRankerError, keyof DeclaredError>>} UndeclaredErrorMembers */
/** @typedef {MustBeNever<Exclude<keyof typeof ListConRanker, keyof DeclaredRankerClass>>} UndeclaredStatics */
/** @typedef {MustBeNever<Exclude<PublicErrorCode, import('./protocol.js').Code>>} CodesNotInProtocol */
/** @typedef {(typeof import('./protocol.js').Phase)[keyof typeof import('./protocol.js').Phase]} PhaseValue */
/** @typedef {MustBeNever<Exclude<PhaseValue, LoadProgress['phase']> | Exclude<LoadProgress['phase'], PhaseValue>>} PhasesDiffer */
/**
 * @typedef {MustBeTrue<Pick<typeof ListConRanker, keyof DeclaredRankerClass> extends Pick<DeclaredRankerClass, keyof DeclaredRankerClass> ? true : false>} StaticsMatch
 */
