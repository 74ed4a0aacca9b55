// The package's Web Worker: owns the wasm module and the model, runs one request at a time
// (later ones wait in a queue), and answers the page with {id, ok, result | error} (the messages
// and their names are in protocol.js).
// Two builds of the module ship with the package: one thread with WebGPU (./listconranker.js,
// imported statically so bundlers see it), and the CPU backend on several threads
// (threads/listconranker.js, imported at run time from a URL and only on a cross-origin-isolated
// page, which SharedArrayBuffer needs). Bundlers leave threads/ alone: it is served as is.
import * as singleThreaded from './listconranker.js';
import {
  bundleBase, deleteVersion, deleteVersions, getVersion, latestVersion, openCache, putShard,
  putVersion, sha256Hex, storedShards, versionKey,
} from './cache.js';
import { probeWebGpu } from './gpu.js';
import { ErrorCode, Op, Phase } from './protocol.js';

/** @typedef {import('./index.js').ErrorCode} Code The codes the package may throw (index.d.ts). */
/** @typedef {import('./protocol.js').LoadArgs} LoadArgs */
/** @typedef {import('./protocol.js').LoadResult} LoadResult */
/** @typedef {import('./protocol.js').WorkerRequest} WorkerRequest */
/** @typedef {import('./protocol.js').CancelRequest} CancelRequest */
/** @typedef {import('./protocol.js').SerializedError} SerializedError */
/** @typedef {import('./cache.js').ShardRecord} ShardRecord */
/** @typedef {import('./index.js').ProgressEvent['phase']} PhaseName */
/** @typedef {import('./index.js').DType} DType */
/** @typedef {'webgpu' | 'cpu'} Backend */

/**
 * The glue's exports the worker uses (both builds have them).
 * @typedef {Pick<typeof import('./listconranker.js'), 'BundleLoader' | 'loadRanker' | 'uploadTo'>} Glue
 */
/**
 * The threaded build's glue (threads/listconranker.js): the same exports, its memory (imported
 * by the module, so possibly not among its exports), and rayon's pool.
 * @typedef {Glue & {
 *   default: () => Promise<{ memory?: WebAssembly.Memory }>,
 *   initThreadPool: (threads: number) => Promise<unknown>,
 * }} ThreadedGlue
 */
/** @type {import('./listconranker.js').WasmRanker | null} */
let ranker = null;
/** @type {WebAssembly.Memory | null | undefined} */
let wasmMemory = null; // the module's WebAssembly.Memory: it only grows, so its size is the peak
let chain = Promise.resolve();
/** @type {Set<number>} */
const cancelled = new Set();
/** @type {Map<number, AbortController>} */
const controllers = new Map(); // id -> AbortController of a running load

/**
 * @param {Code} code
 * @param {string} message
 * @returns {Error & { code: Code }}
 */
function codedError(code, message) {
  const e = /** @type {Error & { code: Code }} */ (new Error(message));
  e.code = code;
  return e;
}

/**
 * `e && e.message`, typed: a thrown value's message (or the falsy value itself), for messages.
 * @param {unknown} e
 */
function messageOf(e) {
  return e && /** @type {{ message?: unknown }} */ (e).message;
}

/**
 * @param {any} e Whatever was thrown.
 * @returns {SerializedError}
 */
function serializeError(e) {
  if (e && typeof e === 'object') {
    return { name: e.name || 'Error', message: String(e.message ?? e), code: e.code || ErrorCode.INTERNAL_ERROR };
  }
  return { name: 'Error', message: String(e), code: ErrorCode.INTERNAL_ERROR };
}

/** @param {object} msg */
function post(msg) {
  self.postMessage(msg);
}

/**
 * The device to run on, and why it differs from the one asked for.
 * @param {import('./index.js').Device} requested
 * @param {DType} dtype
 * @returns {Promise<{ device: Backend, note: string | null, adapter?: string, fallback?: boolean, warn?: boolean }>}
 */
async function pickDevice(requested, dtype) {
  if (requested === 'cpu') return { device: 'cpu', note: null };
  const { adapter, fallback, f16: f16ok, name: adapterName, why } = await probeWebGpu();
  if (requested === 'webgpu') {
    if (!adapter) throw codedError(ErrorCode.WEBGPU_UNAVAILABLE, `device 'webgpu': ${why}`);
    if (dtype === 'f16' && !f16ok) {
      throw codedError(ErrorCode.WEBGPU_UNAVAILABLE, "device 'webgpu' with dtype 'f16': the adapter lacks 'shader-f16'");
    }
    return { device: 'webgpu', note: fallback ? `software WebGPU adapter (${adapterName || 'fallback'})` : null, adapter: adapterName, fallback };
  }
  // 'auto': WebGPU on a real GPU, else the CPU backend (a software WebGPU adapter is far slower).
  if (!adapter) return { device: 'cpu', note: `${why}: using the CPU backend` };
  if (fallback) return { device: 'cpu', note: `${why}: using the CPU backend, which is faster` };
  if (dtype === 'f16' && !f16ok) {
    return { device: 'cpu', note: "the WebGPU adapter lacks 'shader-f16': using the CPU backend for f16", warn: true };
  }
  return { device: 'webgpu', note: null, adapter: adapterName, fallback };
}

/**
 * How many CPU threads to run on: the `threads` option ('auto' or a number >= 1) against what
 * the page allows. Threads need SharedArrayBuffer, i.e. a cross-origin-isolated page.
 * @param {'auto' | number} requested
 * @returns {{ threads: number, note: string | null }}
 */
function pickThreads(requested) {
  const cores = Math.max(1, Number(self.navigator?.hardwareConcurrency) || 1);
  const wanted = requested === 'auto' ? cores : requested;
  if (wanted <= 1) return { threads: 1, note: null };
  if (!self.crossOriginIsolated) {
    return { threads: 1, note: 'the page is not cross-origin isolated (COOP/COEP headers): the CPU backend runs on one thread' };
  }
  return { threads: wanted, note: null };
}

// A variable, not a literal in `new URL(...)`: bundlers would otherwise copy the glue alone as an
// asset, away from its .wasm and its thread helpers.
const THREADED_GLUE = 'threads/listconranker.js';
const THREAD_START_MS = 30000;

/**
 * Imports the threaded build from `threadsUrl` (its directory; default: threads/ next to this
 * worker) and starts its `threads` workers.
 * @param {number} threads
 * @param {string | null} threadsUrl
 */
async function startThreaded(threads, threadsUrl) {
  const glueUrl = new URL(threadsUrl ? 'listconranker.js' : THREADED_GLUE, threadsUrl || import.meta.url).href;
  /** @type {ThreadedGlue} */
  let module;
  try {
    module = await import(/* @vite-ignore */ /* webpackIgnore: true */ glueUrl);
  } catch (e) {
    throw new Error(`the threaded build could not be imported from ${glueUrl} (with a bundler, serve the package's threads/ directory and pass its URL as threadsUrl): ${messageOf(e)}`);
  }
  const exports = await module.default();
  // A pool whose workers never start (blocked by the page's CSP, say) must not hang the load.
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the ${threads} thread workers did not start within ${THREAD_START_MS / 1000} s`)), THREAD_START_MS);
  });
  try {
    await Promise.race([module.initThreadPool(threads), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return { module, exports };
}

/**
 * Instantiates the build for `device` on `threads` threads; a threaded build that cannot start
 * falls back to one thread, saying why.
 * @param {Backend} device
 * @param {number} threads
 * @param {string | null} wasmUrl
 * @param {string | null} threadsUrl
 * @returns {Promise<{ module: Glue, exports: { memory?: WebAssembly.Memory }, threads: number, note: string | null }>}
 */
async function initModule(device, threads, wasmUrl, threadsUrl) {
  let note = null;
  if (device === 'cpu' && threads > 1) {
    try {
      return { ...(await startThreaded(threads, threadsUrl)), threads, note };
    } catch (e) {
      note = `${messageOf(e)}: the CPU backend runs on one thread`;
    }
  }
  const exports = await singleThreaded.default(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  return { module: singleThreaded, exports, threads: 1, note };
}

/**
 * Downloads `url` whole, reporting each chunk's size to `onChunk`.
 * @param {string} url
 * @param {AbortSignal} signal
 * @param {(bytes: number) => void} onChunk
 * @param {RequestCache} [cacheMode]
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
async function fetchBytes(url, signal, onChunk, cacheMode = 'default') {
  let response;
  try {
    response = await fetch(url, { signal, cache: cacheMode });
  } catch (e) {
    if (signal.aborted) throw e;
    throw codedError(ErrorCode.MODEL_FETCH_FAILED, `${url}: ${messageOf(e)}`);
  }
  if (!response.ok) throw codedError(ErrorCode.MODEL_FETCH_FAILED, `${url}: HTTP ${response.status} ${response.statusText}`);
  if (!response.body) {
    const buf = new Uint8Array(await response.arrayBuffer());
    onChunk(buf.length);
    return buf;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      if (signal.aborted) throw e;
      throw codedError(ErrorCode.MODEL_FETCH_FAILED, `${url}: the transfer broke off after ${size} bytes: ${messageOf(e)}`);
    }
    const { done, value } = step;
    if (done) break;
    chunks.push(value);
    size += value.length;
    onChunk(value.length);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * One file as manifest.json lists it.
 * @typedef {{ path: string, bytes: number, sha256: string }} BundleFile
 */

/**
 * Fetches one listed file and checks its sha256; a mismatch is fetched again once (bypassing
 * the HTTP cache), then fails with MODEL_INVALID.
 * @param {string} fileUrl
 * @param {BundleFile} f
 * @param {AbortSignal} signal
 * @param {(bytes: number) => void} onChunk Bytes received (negative: bytes to download again).
 * @param {(phase: PhaseName, loaded: number, total: number) => void} progress
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
async function fetchVerified(fileUrl, f, signal, onChunk, progress) {
  for (let attempt = 0; ; attempt++) {
    let got = 0;
    const bytes = await fetchBytes(fileUrl, signal, (n) => {
      got += n;
      onChunk(n);
    }, attempt > 0 ? 'reload' : 'default');
    signal.throwIfAborted();
    progress(Phase.VERIFY, f.bytes, f.bytes);
    const hash = bytes.length === f.bytes ? await sha256Hex(bytes) : null;
    if (hash === f.sha256) return bytes;
    onChunk(-got); // the retry downloads it again
    if (attempt > 0) {
      const why = hash === null ? `${bytes.length} bytes, manifest.json says ${f.bytes}` : 'sha256 differs from manifest.json';
      throw codedError(ErrorCode.MODEL_INVALID, `invalid model: ${f.path}: ${why} (fetched twice)`);
    }
  }
}

/** Bytes of storage quota left (Infinity where the browser does not say). */
async function estimateFree() {
  const storage = self.navigator && self.navigator.storage;
  if (!storage || !storage.estimate) return Infinity;
  try {
    const { usage = 0, quota = Infinity } = await storage.estimate();
    return quota - usage;
  } catch {
    return Infinity;
  }
}

/** @param {any} e Whatever a write threw. */
function isQuotaError(e) {
  return e && (e.name === 'QuotaExceededError' || /quota/i.test(String(e.message)));
}

/**
 * Whether the browser keeps this origin's storage persistently (not evicted under pressure), or
 * null where it does not say. Only a page can ask for persistence (`navigator.storage.persist()`
 * is not exposed to workers), so the worker only reads it.
 * @returns {Promise<boolean | null>}
 */
async function storagePersisted() {
  const storage = self.navigator && self.navigator.storage;
  if (!storage || !storage.persisted) return null;
  try {
    return await storage.persisted();
  } catch {
    return null;
  }
}

// ---- Loading a bundle, step by step (`load` below runs them in order) ----

/**
 * What every step of one load shares.
 * @typedef {object} LoadContext
 * @property {AbortSignal} signal Aborted by a CANCEL of this load.
 * @property {(phase: PhaseName, loaded: number, total: number, file: string | null) => void} progress
 * @property {string[]} warnings Console warnings for the page.
 */

/**
 * The cache's part in one load: where the files of this bundle version are (or go) in IndexedDB.
 * @typedef {object} CachePlan
 * @property {IDBDatabase | null} db Where verified files are written; null once caching is off
 *   for this load (`cache: 'off'`, no IndexedDB, no room, a failed write).
 * @property {'auto' | 'best-effort' | 'off'} mode The `cache` option.
 * @property {string} base The bundle's directory URL.
 * @property {string} version The version's key: `${base}@${sha256 of manifest.json}`.
 * @property {boolean} complete Whether the version was already complete in the cache.
 * @property {Map<string, ShardRecord>} stored The files of this version already stored, by path.
 */

/**
 * Bytes of the bundle so far, over all files.
 * @typedef {object} Transfer
 * @property {number} total Bytes of all files.
 * @property {number} loaded Downloaded or read from the cache.
 * @property {number} downloaded From the network only.
 */

/**
 * Step 1: the device, then the module. The device comes first because it decides which build to
 * instantiate (WebGPU runs on the single-threaded build; the CPU backend may run on threads).
 * @param {LoadArgs} args
 * @param {LoadContext} ctx
 */
async function startModule({ device, dtype, threads, wasmUrl, threadsUrl }, ctx) {
  const choice = await pickDevice(device, dtype);
  const threadChoice = choice.device === 'cpu' ? pickThreads(threads) : { threads: 1, note: null };
  ctx.signal.throwIfAborted();
  ctx.progress(Phase.INIT, 0, 0, null);
  const instance = await initModule(choice.device, threadChoice.threads, wasmUrl, threadsUrl);
  const threadsNote = threadChoice.note || instance.note;
  // Asked for threads explicitly and did not get them: say so on the console too.
  if (threadsNote && threads !== 'auto' && threads > 1) ctx.warnings.push(threadsNote);
  wasmMemory = instance.exports.memory;
  return { choice, glue: instance.module, threads: instance.threads, threadsNote };
}

/**
 * Step 2: the cache database, unless caching is off. Without IndexedDB (refused, say) the model
 * still loads, uncached, with a warning.
 * @param {LoadArgs['cache']} cache
 * @param {LoadContext} ctx
 */
async function openBundleCache(cache, ctx) {
  const db = cache === 'off' ? null : await openCache();
  if (cache !== 'off' && !db) ctx.warnings.push('IndexedDB is not available: the model is not cached');
  return db;
}

/**
 * Step 3: read the manifest, which lists the files with their sizes and sha256 and, by its own
 * hash, names the version. From the network, so that a new version is seen; offline, the newest
 * complete cached version's copy.
 * @param {string} base
 * @param {IDBDatabase | null} db
 * @param {LoadContext} ctx
 * @returns {Promise<{ text: string, offline: boolean }>}
 */
async function readManifest(base, db, ctx) {
  const manifestUrl = new URL('manifest.json', base).href;
  ctx.progress(Phase.MANIFEST, 0, 0, 'manifest.json');
  try {
    return { text: new TextDecoder().decode(await fetchBytes(manifestUrl, ctx.signal, () => {})), offline: false };
  } catch (e) {
    const err = /** @type {{ code?: unknown, message?: unknown }} */ (e);
    const cachedVersion = db && err.code === ErrorCode.MODEL_FETCH_FAILED ? await latestVersion(db, base) : null;
    if (!cachedVersion) throw e;
    ctx.warnings.push(`${manifestUrl} could not be fetched (${err.message}): using the cached copy`);
    return { text: cachedVersion.manifest, offline: true };
  }
}

/**
 * Step 4: plan the cache: which version this manifest is, whether it is complete in IndexedDB,
 * which of its files are stored already (an interrupted download resumes from them), and whether
 * the rest fits in the storage quota: with `cache: 'auto'` a bundle that does not fit fails
 * before anything is downloaded; with 'best-effort' it loads uncached.
 * @param {IDBDatabase | null} db
 * @param {LoadArgs['cache']} mode
 * @param {string} base
 * @param {string} manifestText
 * @param {BundleFile[]} files
 * @param {LoadContext} ctx
 * @returns {Promise<CachePlan>}
 */
async function planCache(db, mode, base, manifestText, files, ctx) {
  const version = versionKey(base, await sha256Hex(new TextEncoder().encode(manifestText)));
  const complete = db ? await getVersion(db, version) : null;
  const stored = db ? await storedShards(db, version) : new Map();
  const missing = files.filter((f) => !stored.has(f.path)).reduce((s, f) => s + f.bytes, 0);
  if (db && missing > 0) {
    // Room for the rest of the bundle (and some slack for IndexedDB's own records).
    const free = await estimateFree();
    if (missing * 1.05 + (1 << 20) > free) {
      const message = `${missing} bytes of model to cache but only ${Math.max(0, Math.floor(free))} bytes of storage quota left`;
      if (mode === 'auto') throw codedError(ErrorCode.QUOTA_EXCEEDED, `quota exceeded: ${message}`);
      ctx.warnings.push(`${message}: loading without caching`);
      db = null;
    }
  }
  return { db, mode, base, version, complete: Boolean(complete), stored };
}

/**
 * Step 5a: one file's bytes, verified: from the cache when this version has it stored (checked
 * against the manifest's size and sha256 when it was written), else downloaded, checked against
 * its sha256 and stored.
 * @param {BundleFile} f
 * @param {CachePlan} plan
 * @param {Transfer} transfer
 * @param {LoadContext} ctx
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
async function fetchOrReadFile(f, plan, transfer, ctx) {
  const fileUrl = new URL(f.path, plan.base).href;
  const record = plan.stored.get(f.path);
  if (record && record.sha256 === f.sha256 && record.bytes === f.bytes) {
    ctx.progress(Phase.CACHE_READ, transfer.loaded, transfer.total, f.path);
    const bytes = new Uint8Array(await record.blob.arrayBuffer());
    transfer.loaded += bytes.length;
    ctx.progress(Phase.CACHE_READ, transfer.loaded, transfer.total, f.path);
    return bytes;
  }
  const bytes = await fetchVerified(fileUrl, f, ctx.signal, (n) => {
    transfer.loaded += n;
    transfer.downloaded += Math.max(0, n);
    if (n > 0) ctx.progress(Phase.DOWNLOAD, transfer.loaded, transfer.total, f.path);
  }, (phase) => ctx.progress(phase, transfer.loaded, transfer.total, f.path));
  await storeFile(f, bytes, plan, ctx);
  return bytes;
}

/**
 * Step 5b: keep a verified download in IndexedDB, so that the next load (or the resumed one
 * after a broken transfer) reads it from there. A failed write leaves nothing half-written: this
 * version's files go, and the load fails (a full quota with `cache: 'auto'`) or goes on uncached.
 * @param {BundleFile} f
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {CachePlan} plan
 * @param {LoadContext} ctx
 */
async function storeFile(f, bytes, plan, ctx) {
  if (!plan.db) return;
  const { db, version, base } = plan;
  try {
    await putShard(db, { key: `${version}/${f.path}`, version, url: base, path: f.path, bytes: f.bytes, sha256: f.sha256, blob: new Blob([bytes]) });
  } catch (e) {
    const err = /** @type {any} */ (e);
    // Nothing half-written stays behind: this version's shards go.
    await deleteVersion(db, version).catch(() => {});
    if (isQuotaError(err) && plan.mode === 'auto') throw codedError(ErrorCode.QUOTA_EXCEEDED, `quota exceeded while caching ${f.path}: ${err.message}`);
    ctx.warnings.push(`caching ${f.path} failed (${err.message}): loading without caching`);
    plan.db = null;
  }
}

/**
 * Step 6: hand one verified file to the wasm loader, which decodes it (quantized weights of a q8
 * or q4 bundle are dequantized here, one tensor at a time) and (on a loader from uploadTo)
 * uploads its tensors to the device now, in the compute dtype; the caller then drops the bytes,
 * so the worker holds one file at a time, never the whole model.
 * @param {import('./listconranker.js').BundleLoader} loader
 * @param {BundleFile} f
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {Transfer} transfer
 * @param {LoadContext} ctx
 */
function uploadFile(loader, f, bytes, transfer, ctx) {
  ctx.signal.throwIfAborted();
  ctx.progress(Phase.UPLOAD, transfer.loaded, transfer.total, f.path);
  loader.add(f.path, bytes);
}

/**
 * Step 7: build the model from the fed loader on the device (the loader checks that every
 * tensor arrived); it then serves the other operations.
 * @param {import('./listconranker.js').BundleLoader} loader
 * @param {LoadArgs} args
 * @param {Awaited<ReturnType<typeof startModule>>} started
 * @param {Transfer} transfer
 * @param {LoadContext} ctx
 */
async function buildModel(loader, args, started, transfer, ctx) {
  ctx.signal.throwIfAborted();
  ctx.progress(Phase.BUILD, transfer.loaded, transfer.total, null);
  ranker = await started.glue.loadRanker(loader, started.choice.device, args.dtype, args.maxLength);
  return ranker;
}

/**
 * Step 8: once every file is stored and the model is built from them, the version record makes
 * the version complete (written last, so an interrupted load, or one whose files do not make a
 * model, never looks complete); then the older versions of the bundle go (not when offline: the
 * newest version was not seen). Says whether the storage is persistent.
 * @param {CachePlan} plan
 * @param {string} manifestText
 * @param {boolean} manifestOffline
 * @param {number} total
 * @returns {Promise<boolean | null>} null when the bundle is not cached.
 */
async function completeVersion(plan, manifestText, manifestOffline, total) {
  if (!plan.db) return null;
  if (!plan.complete) {
    const { db, version, base } = plan;
    await putVersion(db, { key: version, url: base, hash: version.slice(base.length + 1), manifest: manifestText, bytes: total, time: Date.now() });
    if (!manifestOffline) await deleteVersions(db, base, version);
  }
  return storagePersisted();
}

/**
 * What the page's ranker shows of the load: where it runs, how it was loaded.
 * @param {object} load
 * @param {import('./listconranker.js').WasmRanker} load.model
 * @param {LoadArgs} load.args
 * @param {Awaited<ReturnType<typeof startModule>>} load.started
 * @param {string} load.manifestText
 * @param {CachePlan} load.plan
 * @param {Transfer} load.transfer
 * @param {boolean | null} load.persisted
 * @param {number} load.startedAt performance.now() at the start of the load.
 * @param {LoadContext} load.ctx
 * @returns {LoadResult}
 */
function describeLoad({ model, args, started, manifestText, plan, transfer, persisted, startedAt, ctx }) {
  const { choice } = started;
  return {
    device: choice.device,
    dtype: args.dtype,
    note: choice.note || null,
    warn: Boolean(choice.warn),
    warnings: ctx.warnings,
    adapter: choice.adapter || null,
    threads: started.threads,
    threadsNote: started.threadsNote,
    info: JSON.parse(model.info()),
    // Checked by BundleLoader when it parsed the manifest: f32, f16, q8 or q4.
    storedDtype: JSON.parse(manifestText).dtype,
    totalBytes: transfer.total,
    downloadedBytes: transfer.downloaded,
    fromCache: transfer.downloaded === 0,
    cached: Boolean(plan.db),
    persisted,
    loadMs: performance.now() - startedAt,
    wasmMemoryBytes: wasmMemoryBytes(),
  };
}

/**
 * A version whose files were verified but do not make a model (MODEL_INVALID from decoding a
 * shard or building the model: a shard whose tensors differ from the manifest's list, a quantized
 * weight without its scale, a wrong shape, a non-finite value) is broken as published, and
 * loading it again would fail the same way: none of its files stay in the cache.
 * @param {CachePlan} plan
 * @param {unknown} e What decoding or building threw.
 */
async function forgetInvalidVersion(plan, e) {
  const code = e && typeof e === 'object' ? /** @type {{ code?: unknown }} */ (e).code : null;
  if (plan.db && code === ErrorCode.MODEL_INVALID) await deleteVersion(plan.db, plan.version).catch(() => {});
}

/**
 * Op.LOAD: the steps above, in order. Progress events, in order: init, manifest, then per file
 * cache-read (twice) or download (per chunk) and verify, then upload; build; ready. The bundle's
 * stored dtype (f32, f16, q8, q4) needs nothing here: the wasm loader reads it from the manifest.
 * @param {number} id
 * @param {LoadArgs} args
 * @returns {Promise<LoadResult>}
 */
async function load(id, args) {
  const { url, threads = 'auto', cache = 'auto' } = args;
  args = { ...args, threads, cache };
  const controller = new AbortController();
  controllers.set(id, controller);
  const startedAt = performance.now();
  /** @type {LoadContext} */
  const ctx = {
    signal: controller.signal,
    progress: (phase, loaded, total, file) => post({ id, progress: { phase, loaded, total, file } }),
    warnings: [],
  };
  try {
    const started = await startModule(args, ctx);
    const { BundleLoader, uploadTo } = started.glue;
    const base = bundleBase(url);
    const db = await openBundleCache(cache, ctx);
    const manifest = await readManifest(base, db, ctx);
    // Parsing checks the manifest (format version, files, dtype): MODEL_INVALID otherwise.
    let loader = new BundleLoader(manifest.text);
    /** @type {BundleFile[]} */
    const files = JSON.parse(loader.files());
    /** @type {Transfer} */
    const transfer = { total: files.reduce((s, f) => s + f.bytes, 0), loaded: 0, downloaded: 0 };
    const plan = await planCache(db, cache, base, manifest.text, files, ctx);

    // Each file's tensors go to the device as soon as the file is decoded, so the worker holds
    // one shard at a time, never the whole model.
    ctx.signal.throwIfAborted();
    loader = await uploadTo(loader, started.choice.device, args.dtype);
    for (const f of files) {
      const bytes = await fetchOrReadFile(f, plan, transfer, ctx);
      try {
        uploadFile(loader, f, bytes, transfer, ctx); // decoded and uploaded now: the bytes are dropped here
      } catch (e) {
        await forgetInvalidVersion(plan, e);
        throw e;
      }
    }

    /** @type {import('./listconranker.js').WasmRanker} */
    let model;
    try {
      model = await buildModel(loader, args, started, transfer, ctx);
    } catch (e) {
      await forgetInvalidVersion(plan, e);
      throw e;
    }
    const persisted = await completeVersion(plan, manifest.text, manifest.offline, transfer.total);
    const result = describeLoad({ model, args, started, manifestText: manifest.text, plan, transfer, persisted, startedAt, ctx });
    ctx.progress(Phase.READY, transfer.loaded, transfer.total, null);
    return result;
  } finally {
    controllers.delete(id);
  }
}

function wasmMemoryBytes() {
  return wasmMemory ? wasmMemory.buffer.byteLength : 0;
}

/** @param {WorkerRequest} msg */
async function handle(msg) {
  const { id, op, args } = msg;
  if (cancelled.delete(id)) return; // aborted while queued
  try {
    let result;
    if (op === Op.LOAD) {
      result = await load(id, args);
    } else {
      if (!ranker) throw codedError(ErrorCode.INTERNAL_ERROR, 'no model loaded');
      if (op === Op.COMPUTE_SCORE) result = JSON.parse(await ranker.computeScore(args.json));
      else if (op === Op.ITERATIVE_INFERENCE) result = JSON.parse(await ranker.iterativeInference(args.json));
      else if (op === Op.SET_MAX_LENGTH) result = ranker.setMaxLength(args.maxLength);
      else if (op === Op.STATS) result = { wasmMemoryBytes: wasmMemoryBytes() };
      else if (op === Op.DISPOSE) {
        ranker.free();
        ranker = null;
        result = null;
      } else throw codedError(ErrorCode.INTERNAL_ERROR, `unknown operation ${op}`);
    }
    post({ id, ok: true, result });
  } catch (e) {
    post({ id, ok: false, error: serializeError(e) });
  }
}

self.onmessage = (event) => {
  /** @type {WorkerRequest | CancelRequest} */
  const msg = event.data;
  if (msg.op === Op.CANCEL) {
    const running = controllers.get(msg.target);
    if (running) running.abort();
    else cancelled.add(msg.target);
    return;
  }
  chain = chain.then(() => handle(msg));
};
