// ListConRanker in the browser: the model runs in a dedicated Web Worker created here; every
// method returns a Promise, concurrent calls are queued in order, and an AbortSignal cancels a
// load or a call. Errors are `ListConRankerError`s with a stable `code`. Bundles are cached in
// IndexedDB (see cache.js); the second load of the same bundle reads no shard from the network.
import { bundleBase, clearAll, deleteVersions, latestVersion, openCache } from './cache.js';

export class ListConRankerError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ListConRankerError';
    this.code = code;
  }
}

function abortError(signal) {
  const reason = signal && signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The operation was aborted', 'AbortError');
}

function checkDevice(device) {
  if (!['auto', 'webgpu', 'cpu'].includes(device)) {
    throw new ListConRankerError('INPUT_INVALID', `invalid input: device must be 'auto', 'webgpu' or 'cpu', not ${JSON.stringify(device)}`);
  }
}

function checkDtype(dtype) {
  if (!['f32', 'f16'].includes(dtype)) {
    throw new ListConRankerError('INPUT_INVALID', `invalid input: dtype must be 'f32' or 'f16', not ${JSON.stringify(dtype)}`);
  }
}

function checkThreads(threads) {
  if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new ListConRankerError('INPUT_INVALID', `invalid input: threads must be 'auto' or an integer from 1 to 256, not ${JSON.stringify(threads)}`);
  }
}

function absoluteUrl(modelUrl) {
  const base = typeof document !== 'undefined' ? document.baseURI : self.location.href;
  return new URL(String(modelUrl), base).href;
}

class WorkerChannel {
  constructor(worker) {
    this.worker = worker;
    this.next = 1;
    this.pending = new Map();
    worker.onmessage = (event) => this.receive(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.failAll('INTERNAL_ERROR', `the worker failed: ${event.message || 'unknown error'}`);
    };
  }

  receive(msg) {
    const entry = this.pending.get(msg.id);
    if (!entry) return;
    if (msg.progress) {
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
    else entry.reject(new ListConRankerError(msg.error.code, msg.error.message));
  }

  call(op, args, { signal, onProgress } = {}) {
    if (!this.worker) return Promise.reject(new ListConRankerError('DISPOSED', 'this ranker was disposed'));
    if (signal && signal.aborted) return Promise.reject(abortError(signal));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        this.worker?.postMessage({ op: 'cancel', target: id });
        reject(abortError(signal));
      };
      const cleanup = () => signal && signal.removeEventListener('abort', onAbort);
      this.pending.set(id, { resolve, reject, onProgress, cleanup });
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      this.worker.postMessage({ id, op, args });
    });
  }

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
    this.failAll('DISPOSED', 'this ranker was disposed');
  }
}

export class ListConRanker {
  /** @private */
  constructor(channel, info) {
    this._channel = channel;
    /** What the model actually runs on: 'webgpu' or 'cpu'. */
    this.device = info.device;
    this.dtype = info.dtype;
    /** Why the device differs from the one asked for (or null). */
    this.deviceNote = info.note;
    this.adapter = info.adapter;
    /** CPU threads the model runs on (1 on WebGPU, and on pages that are not cross-origin isolated). */
    this.threads = info.threads;
    /** Why the CPU backend runs on fewer threads than the machine has (or null). */
    this.threadsNote = info.threadsNote;
    this.config = info.info;
    this.loadMs = info.loadMs;
    this.totalBytes = info.totalBytes;
    /** Bytes fetched from the network by this load (0 when every file came from the cache). */
    this.downloadedBytes = info.downloadedBytes;
    /** Whether every file came from the IndexedDB cache. */
    this.fromCache = info.fromCache;
    /** Whether the bundle is (now) stored in the cache. */
    this.cached = info.cached;
    /** The worker's wasm memory once loaded, in bytes: the peak of the load (wasm memory never
     *  shrinks). On WebGPU the weights live in GPU buffers, not here. */
    this.wasmMemoryBytes = info.wasmMemoryBytes;
  }

  /**
   * Loads a web bundle (the directory of `manifest.json`, written by `listconranker convert`).
   */
  static async load(modelUrl, options = {}) {
    const { device = 'auto', dtype = 'f32', maxLength = 512, onProgress, signal, wasmUrl, threadsUrl, threads = 'auto', cache = 'auto' } = options;
    checkDevice(device);
    checkDtype(dtype);
    checkThreads(threads);
    if (!['auto', 'best-effort', 'off'].includes(cache)) {
      throw new ListConRankerError('INPUT_INVALID', `invalid input: cache must be 'auto', 'best-effort' or 'off', not ${JSON.stringify(cache)}`);
    }
    if (typeof modelUrl !== 'string' && !(modelUrl instanceof URL)) {
      throw new ListConRankerError('INPUT_INVALID', 'invalid input: modelUrl must be a string or URL');
    }
    if (signal && signal.aborted) throw abortError(signal);
    const base = typeof document !== 'undefined' ? document.baseURI : self.location.href;
    const url = new URL(String(modelUrl), base).href;
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'listconranker' });
    const channel = new WorkerChannel(worker);
    const onAbort = () => channel.terminate();
    try {
      const loading = channel.call(
        'load',
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

  /** Whether a complete copy of the bundle at `modelUrl` is in this origin's IndexedDB cache. */
  static async isCached(modelUrl) {
    const db = await openCache();
    if (!db) return false;
    try {
      return (await latestVersion(db, bundleBase(absoluteUrl(modelUrl)))) !== null;
    } finally {
      db.close();
    }
  }

  /** Deletes the cached copies (complete or partial) of the bundle at `modelUrl`, or of every bundle. */
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

  /** One score in (0, 1) per passage of each `[query, passage, ...]` list. */
  async computeScore(batch, { signal } = {}) {
    if (!Array.isArray(batch)) {
      throw new ListConRankerError('INPUT_INVALID', 'invalid input: expected an array of [query, passage, ...] lists');
    }
    return this._channel.call('computeScore', { json: JSON.stringify(batch) }, { signal });
  }

  /** Iterative inference over one `[query, passage, ...]` list (scores for ranking only). */
  async iterativeInference(list, { signal } = {}) {
    if (!Array.isArray(list)) {
      throw new ListConRankerError('INPUT_INVALID', 'invalid input: expected a [query, passage, ...] list');
    }
    return this._channel.call('iterativeInference', { json: JSON.stringify(list) }, { signal });
  }

  /** Passages sorted by score, best first: `[{index, score}]` (plus `document` if asked). */
  async rerank(query, passages, { topK, iterative = true, returnDocuments = false, signal } = {}) {
    if (typeof query !== 'string' || !Array.isArray(passages)) {
      throw new ListConRankerError('INPUT_INVALID', 'invalid input: rerank(query: string, passages: string[])');
    }
    const list = [query, ...passages];
    const scores = iterative
      ? await this.iterativeInference(list, { signal })
      : (await this.computeScore([list], { signal }))[0];
    const ranked = scores.map((score, index) => (returnDocuments ? { index, score, document: passages[index] } : { index, score }));
    ranked.sort((a, b) => b.score - a.score || a.index - b.index);
    return topK === undefined || topK === null ? ranked : ranked.slice(0, topK);
  }

  /** Changes the truncation length (tokens per text, [CLS] and [SEP] included). */
  async setMaxLength(maxLength) {
    await this._channel.call('setMaxLength', { maxLength });
  }

  /** The worker's wasm memory now, in bytes (its peak so far): `{wasmMemoryBytes}`. */
  async stats() {
    return this._channel.call('stats', {});
  }

  /** Frees the model and ends the worker. */
  async dispose() {
    if (!this._channel.worker) return;
    try {
      await this._channel.call('dispose', {});
    } finally {
      this._channel.terminate();
    }
  }
}

export default ListConRanker;
