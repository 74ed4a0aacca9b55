// ListConRanker in the browser: the model runs in a dedicated Web Worker created here; every
// method returns a Promise, concurrent calls are queued in order, and an AbortSignal cancels a
// load or a call. Errors are `ListConRankerError`s with a stable `code`. Bundles are cached in
// IndexedDB (see cache.js); the second load of the same bundle reads no shard from the network.
import { bundleBase, clearAll, deleteVersions, latestVersion, openCache } from './cache.js';
import { ErrorCode, Op } from './protocol.js';

/** @typedef {import('./index.js').ErrorCode} PublicErrorCode */
/** @typedef {import('./index.js').ListConRankerError} DeclaredError */
/** @typedef {import('./index.js').ListConRanker} DeclaredRanker */
/** @typedef {import('./index.js').LoadOptions} LoadOptions */
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
   */
  constructor(code, message) {
    super(message);
    this.code = code;
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

  terminate() {
    this.worker?.terminate();
    this.worker = null;
    this.failAll(ErrorCode.DISPOSED, 'this ranker was disposed');
  }
}

/** @implements {DeclaredRanker} */
export class ListConRanker {
  /**
   * @private
   * @param {WorkerChannel} channel
   * @param {LoadResult} info The worker's answer to the load.
   */
  constructor(channel, info) {
    /** @private */
    this._channel = channel;
    /** What the model actually runs on: 'webgpu' or 'cpu'. */
    this.device = info.device;
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
    const { device = 'auto', dtype = 'f32', maxLength = 512, onProgress, signal, wasmUrl, threadsUrl, threads = 'auto', cache = 'auto' } = options;
    checkDevice(device);
    checkDtype(dtype);
    checkThreads(threads);
    if (!['auto', 'best-effort', 'off'].includes(cache)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, `invalid input: cache must be 'auto', 'best-effort' or 'off', not ${JSON.stringify(cache)}`);
    }
    if (typeof modelUrl !== 'string' && !(modelUrl instanceof URL)) {
      throw new ListConRankerError(ErrorCode.INPUT_INVALID, 'invalid input: modelUrl must be a string or URL');
    }
    if (signal && signal.aborted) throw abortError(signal);
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
      const ranker = new ListConRanker(channel, info);
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
   * Frees the model and ends the worker.
   * @returns {Promise<void>}
   */
  async dispose() {
    if (!this._channel.worker) return;
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
