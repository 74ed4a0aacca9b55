// The package's Web Worker: owns the wasm module and the model, runs one request at a time
// (later ones wait in a queue), and answers the page with {id, ok, result | error}.
import init, { BundleLoader, loadRanker } from './listconranker.js';

let ranker = null;
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

async function fetchBytes(url, signal, onChunk) {
  let response;
  try {
    response = await fetch(url, { signal });
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
    const { done, value } = await reader.read();
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

async function load(id, { url, device, dtype, maxLength, wasmUrl }) {
  const controller = new AbortController();
  controllers.set(id, controller);
  const signal = controller.signal;
  const progress = (e) => post({ id, progress: e });
  const started = performance.now();
  try {
    progress({ phase: 'init', loaded: 0, total: 0, file: null });
    await init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
    const base = url.endsWith('/') ? url : url.replace(/manifest\.json$/, '').replace(/\/?$/, '/');
    const manifestUrl = new URL('manifest.json', base).href;
    progress({ phase: 'manifest', loaded: 0, total: 0, file: 'manifest.json' });
    const manifestText = new TextDecoder().decode(await fetchBytes(manifestUrl, signal, () => {}));
    const loader = new BundleLoader(manifestText);
    const files = JSON.parse(loader.files());
    const total = files.reduce((s, f) => s + f.bytes, 0);
    let loaded = 0;
    for (const f of files) {
      const bytes = await fetchBytes(new URL(f.path, base).href, signal, (n) => {
        loaded += n;
        progress({ phase: 'download', loaded, total, file: f.path });
      });
      signal.throwIfAborted();
      loader.add(f.path, bytes);
    }
    const choice = await pickDevice(device, dtype);
    signal.throwIfAborted();
    progress({ phase: 'build', loaded, total, file: null });
    ranker = await loadRanker(loader, choice.device, dtype, maxLength);
    const result = {
      device: choice.device,
      dtype,
      note: choice.note || null,
      warn: Boolean(choice.warn),
      adapter: choice.adapter || null,
      info: JSON.parse(ranker.info()),
      storedDtype: JSON.parse(manifestText).dtype,
      totalBytes: total,
      loadMs: performance.now() - started,
    };
    progress({ phase: 'ready', loaded, total, file: null });
    return result;
  } finally {
    controllers.delete(id);
  }
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
