// The package's Web Worker: owns the wasm module and the model, runs one request at a time
// (later ones wait in a queue), and answers the page with {id, ok, result | error}.
// Two builds of the module ship with the package: one thread with WebGPU (./listconranker.js,
// imported statically so bundlers see it), and the CPU backend on several threads
// (threads/listconranker.js, imported at run time from a URL and only on a cross-origin-isolated
// page, which SharedArrayBuffer needs). Bundlers leave threads/ alone: it is served as is.
import * as singleThreaded from './listconranker.js';
import {
  bundleBase, deleteVersionShards, deleteVersions, getVersion, latestVersion, openCache, putShard,
  putVersion, sha256Hex, storedShards, versionKey,
} from './cache.js';

let ranker = null;
let wasmMemory = null; // the module's WebAssembly.Memory: it only grows, so its size is the peak
let chain = Promise.resolve();
const cancelled = new Set();
const controllers = new Map(); // id -> AbortController of a running load

function codedError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function serializeError(e) {
  if (e && typeof e === 'object') {
    return { name: e.name || 'Error', message: String(e.message ?? e), code: e.code || 'INTERNAL_ERROR' };
  }
  return { name: 'Error', message: String(e), code: 'INTERNAL_ERROR' };
}

function post(msg) {
  self.postMessage(msg);
}

async function pickDevice(requested, dtype) {
  if (requested === 'cpu') return { device: 'cpu', note: null };
  const gpu = self.navigator && self.navigator.gpu;
  let adapter = null;
  let why = 'this browser has no WebGPU (navigator.gpu)';
  if (gpu) {
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) why = 'no WebGPU adapter';
    } catch (e) {
      why = `requestAdapter failed: ${e && e.message}`;
    }
  }
  const info = adapter ? (adapter.info || {}) : {};
  const fallback = adapter ? Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) : false;
  const f16ok = adapter ? adapter.features.has('shader-f16') : false;
  const adapterName = adapter ? [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') : '';
  if (requested === 'webgpu') {
    if (!adapter) throw codedError('WEBGPU_UNAVAILABLE', `device 'webgpu': ${why}`);
    if (dtype === 'f16' && !f16ok) {
      throw codedError('WEBGPU_UNAVAILABLE', "device 'webgpu' with dtype 'f16': the adapter lacks 'shader-f16'");
    }
    return { device: 'webgpu', note: fallback ? `software WebGPU adapter (${adapterName || 'fallback'})` : null, adapter: adapterName, fallback };
  }
  // 'auto': WebGPU on a real GPU, else the CPU backend (a software WebGPU adapter is far slower).
  if (!adapter) return { device: 'cpu', note: `${why}: using the CPU backend` };
  if (fallback) {
    return { device: 'cpu', note: `the only WebGPU adapter is a software fallback (${adapterName || 'unknown'}): using the CPU backend, which is faster` };
  }
  if (dtype === 'f16' && !f16ok) {
    return { device: 'cpu', note: "the WebGPU adapter lacks 'shader-f16': using the CPU backend for f16", warn: true };
  }
  return { device: 'webgpu', note: null, adapter: adapterName, fallback };
}

/** How many CPU threads to run on: the `threads` option ('auto' or a number >= 1) against what
 *  the page allows. Threads need SharedArrayBuffer, i.e. a cross-origin-isolated page. */
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

/** Imports the threaded build from `threadsUrl` (its directory; default: threads/ next to this
 *  worker) and starts its `threads` workers. */
async function startThreaded(threads, threadsUrl) {
  const glueUrl = new URL(threadsUrl ? 'listconranker.js' : THREADED_GLUE, threadsUrl || import.meta.url).href;
  let module;
  try {
    module = await import(/* @vite-ignore */ /* webpackIgnore: true */ glueUrl);
  } catch (e) {
    throw new Error(`the threaded build could not be imported from ${glueUrl} (with a bundler, serve the package's threads/ directory and pass its URL as threadsUrl): ${e && e.message}`);
  }
  const exports = await module.default();
  // A pool whose workers never start (blocked by the page's CSP, say) must not hang the load.
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

/** Instantiates the build for `device` on `threads` threads; a threaded build that cannot start
 *  falls back to one thread, saying why. Returns {module, exports, threads, note}. */
async function initModule(device, threads, wasmUrl, threadsUrl) {
  let note = null;
  if (device === 'cpu' && threads > 1) {
    try {
      return { ...(await startThreaded(threads, threadsUrl)), threads, note };
    } catch (e) {
      note = `${e && e.message}: the CPU backend runs on one thread`;
    }
  }
  const exports = await singleThreaded.default(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  return { module: singleThreaded, exports, threads: 1, note };
}

async function fetchBytes(url, signal, onChunk, cacheMode = 'default') {
  let response;
  try {
    response = await fetch(url, { signal, cache: cacheMode });
  } catch (e) {
    if (signal.aborted) throw e;
    throw codedError('MODEL_FETCH_FAILED', `${url}: ${e && e.message}`);
  }
  if (!response.ok) throw codedError('MODEL_FETCH_FAILED', `${url}: HTTP ${response.status} ${response.statusText}`);
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
      throw codedError('MODEL_FETCH_FAILED', `${url}: the transfer broke off after ${size} bytes: ${e && e.message}`);
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

/** Fetches one listed file and checks its sha256; a mismatch is fetched again once (bypassing
 *  the HTTP cache), then fails with MODEL_INVALID. */
async function fetchVerified(fileUrl, f, signal, onChunk, progress) {
  for (let attempt = 0; ; attempt++) {
    let got = 0;
    const bytes = await fetchBytes(fileUrl, signal, (n) => {
      got += n;
      onChunk(n);
    }, attempt > 0 ? 'reload' : 'default');
    signal.throwIfAborted();
    progress('verify', f.bytes, f.bytes);
    const hash = bytes.length === f.bytes ? await sha256Hex(bytes) : null;
    if (hash === f.sha256) return bytes;
    onChunk(-got); // the retry downloads it again
    if (attempt > 0) {
      const why = hash === null ? `${bytes.length} bytes, manifest.json says ${f.bytes}` : 'sha256 differs from manifest.json';
      throw codedError('MODEL_INVALID', `invalid model: ${f.path}: ${why} (fetched twice)`);
    }
  }
}

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

function isQuotaError(e) {
  return e && (e.name === 'QuotaExceededError' || /quota/i.test(String(e.message)));
}

async function load(id, { url, device, dtype, maxLength, wasmUrl, threadsUrl, threads = 'auto', cache = 'auto' }) {
  const controller = new AbortController();
  controllers.set(id, controller);
  const signal = controller.signal;
  const started = performance.now();
  const progress = (phase, loaded, total, file) => post({ id, progress: { phase, loaded, total, file } });
  const warnings = [];
  try {
    // The device first: it decides which build of the module to instantiate.
    const choice = await pickDevice(device, dtype);
    const threadChoice = choice.device === 'cpu' ? pickThreads(threads) : { threads: 1, note: null };
    signal.throwIfAborted();
    progress('init', 0, 0, null);
    const instance = await initModule(choice.device, threadChoice.threads, wasmUrl, threadsUrl);
    const threadsNote = threadChoice.note || instance.note;
    // Asked for threads explicitly and did not get them: say so on the console too.
    if (threadsNote && threads !== 'auto' && threads > 1) warnings.push(threadsNote);
    const { BundleLoader, loadRanker, uploadTo } = instance.module;
    wasmMemory = instance.exports.memory;
    const base = bundleBase(url);
    const manifestUrl = new URL('manifest.json', base).href;
    let db = cache === 'off' ? null : await openCache();
    if (cache !== 'off' && !db) warnings.push('IndexedDB is not available: the model is not cached');

    // The manifest: from the network; offline, the newest complete cached version.
    progress('manifest', 0, 0, 'manifest.json');
    let manifestText;
    let manifestOffline = false;
    try {
      manifestText = new TextDecoder().decode(await fetchBytes(manifestUrl, signal, () => {}));
    } catch (e) {
      const cachedVersion = db && e.code === 'MODEL_FETCH_FAILED' ? await latestVersion(db, base) : null;
      if (!cachedVersion) throw e;
      manifestText = cachedVersion.manifest;
      manifestOffline = true;
      warnings.push(`${manifestUrl} could not be fetched (${e.message}): using the cached copy`);
    }
    let loader = new BundleLoader(manifestText);
    const files = JSON.parse(loader.files());
    const total = files.reduce((s, f) => s + f.bytes, 0);
    const version = versionKey(base, await sha256Hex(new TextEncoder().encode(manifestText)));

    const complete = db ? await getVersion(db, version) : null;
    const stored = db ? await storedShards(db, version) : new Map();
    const missing = files.filter((f) => !stored.has(f.path)).reduce((s, f) => s + f.bytes, 0);
    if (db && missing > 0) {
      // Room for the rest of the bundle (and some slack for IndexedDB's own records).
      const free = await estimateFree();
      if (missing * 1.05 + (1 << 20) > free) {
        const message = `${missing} bytes of model to cache but only ${Math.max(0, Math.floor(free))} bytes of storage quota left`;
        if (cache === 'auto') throw codedError('QUOTA_EXCEEDED', `quota exceeded: ${message}`);
        warnings.push(`${message}: loading without caching`);
        db = null;
      }
    }

    // Each file's tensors go to the device as soon as the file is decoded, so the worker holds
    // one shard at a time, never the whole model.
    signal.throwIfAborted();
    loader = await uploadTo(loader, choice.device, dtype);

    let loaded = 0; // bytes over all files, downloaded or read
    let downloaded = 0;
    for (const f of files) {
      const fileUrl = new URL(f.path, base).href;
      let bytes;
      const record = stored.get(f.path);
      if (record && record.sha256 === f.sha256 && record.bytes === f.bytes) {
        progress('cache-read', loaded, total, f.path);
        bytes = new Uint8Array(await record.blob.arrayBuffer());
        loaded += bytes.length;
        progress('cache-read', loaded, total, f.path);
      } else {
        bytes = await fetchVerified(fileUrl, f, signal, (n) => {
          loaded += n;
          downloaded += Math.max(0, n);
          if (n > 0) progress('download', loaded, total, f.path);
        }, (phase) => progress(phase, loaded, total, f.path));
        if (db) {
          try {
            await putShard(db, { key: `${version}/${f.path}`, version, url: base, path: f.path, bytes: f.bytes, sha256: f.sha256, blob: new Blob([bytes]) });
          } catch (e) {
            // Nothing half-written stays behind: this version's shards go.
            await deleteVersionShards(db, version).catch(() => {});
            if (isQuotaError(e) && cache === 'auto') throw codedError('QUOTA_EXCEEDED', `quota exceeded while caching ${f.path}: ${e.message}`);
            warnings.push(`caching ${f.path} failed (${e.message}): loading without caching`);
            db = null;
          }
        }
      }
      signal.throwIfAborted();
      progress('upload', loaded, total, f.path);
      loader.add(f.path, bytes); // decoded and uploaded now: the bytes are dropped here
      bytes = null;
    }

    let persisted = null;
    if (db && !complete) {
      // Every file is stored: the version record makes it complete; then older versions go.
      await putVersion(db, { key: version, url: base, hash: version.slice(base.length + 1), manifest: manifestText, bytes: total, time: Date.now() });
      if (!manifestOffline) await deleteVersions(db, base, version);
      try {
        persisted = self.navigator.storage && self.navigator.storage.persist ? await self.navigator.storage.persist() : null;
      } catch {
        persisted = null;
      }
    }

    signal.throwIfAborted();
    progress('build', loaded, total, null);
    ranker = await loadRanker(loader, choice.device, dtype, maxLength);
    const result = {
      device: choice.device,
      dtype,
      note: choice.note || null,
      warn: Boolean(choice.warn),
      warnings,
      adapter: choice.adapter || null,
      threads: instance.threads,
      threadsNote,
      info: JSON.parse(ranker.info()),
      storedDtype: JSON.parse(manifestText).dtype,
      totalBytes: total,
      downloadedBytes: downloaded,
      fromCache: downloaded === 0,
      cached: Boolean(db),
      persisted,
      loadMs: performance.now() - started,
      wasmMemoryBytes: wasmMemoryBytes(),
    };
    progress('ready', loaded, total, null);
    return result;
  } finally {
    controllers.delete(id);
  }
}

function wasmMemoryBytes() {
  return wasmMemory ? wasmMemory.buffer.byteLength : 0;
}

async function handle(msg) {
  const { id, op, args } = msg;
  if (cancelled.delete(id)) return; // aborted while queued
  try {
    let result;
    if (op === 'load') {
      result = await load(id, args);
    } else {
      if (!ranker) throw codedError('INTERNAL_ERROR', 'no model loaded');
      if (op === 'computeScore') result = JSON.parse(await ranker.computeScore(args.json));
      else if (op === 'iterativeInference') result = JSON.parse(await ranker.iterativeInference(args.json));
      else if (op === 'setMaxLength') result = ranker.setMaxLength(args.maxLength);
      else if (op === 'stats') result = { wasmMemoryBytes: wasmMemoryBytes() };
      else if (op === 'dispose') {
        ranker.free();
        ranker = null;
        result = null;
      } else throw codedError('INTERNAL_ERROR', `unknown operation ${op}`);
    }
    post({ id, ok: true, result });
  } catch (e) {
    post({ id, ok: false, error: serializeError(e) });
  }
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.op === 'cancel') {
    const running = controllers.get(msg.target);
    if (running) running.abort();
    else cancelled.add(msg.target);
    return;
  }
  chain = chain.then(() => handle(msg));
};
