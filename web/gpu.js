// What WebGPU this browser offers, asked the same way on the page (index.js: whether device
// 'auto' may use the `fallback` server) and in the worker (worker.js: which device to load on).
// A software adapter (SwiftShader, WARP: `isFallbackAdapter`) does not count as hardware: the wasm
// CPU backend is far faster than it.

/**
 * The part of WebGPU the package reads (the TypeScript libraries do not declare WebGPU).
 * @typedef {object} GpuAdapter
 * @property {{ vendor?: string, architecture?: string, description?: string, isFallbackAdapter?: boolean }} [info]
 * @property {boolean} [isFallbackAdapter] Older browsers' place for it.
 * @property {{ has(feature: string): boolean }} features
 */
/** @typedef {{ requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapter | null> }} Gpu */

/**
 * What `navigator.gpu.requestAdapter()` gives here.
 * @typedef {object} GpuProbe
 * @property {GpuAdapter | null} adapter
 * @property {boolean} fallback Whether the adapter is a software fallback.
 * @property {boolean} f16 Whether the adapter has 'shader-f16'.
 * @property {string} name The adapter's vendor, architecture and description ('' without one).
 * @property {boolean} hardware A hardware adapter: what device 'auto' runs WebGPU on.
 * @property {string} why Why there is no hardware adapter ('' when there is one).
 */

/** @returns {Promise<GpuProbe>} */
export async function probeWebGpu() {
  const nav = /** @type {{ gpu?: Gpu } | undefined} */ (/** @type {unknown} */ (globalThis.navigator));
  const gpu = nav && nav.gpu;
  /** @type {GpuAdapter | null} */
  let adapter = null;
  let why = 'this browser has no WebGPU (navigator.gpu)';
  if (gpu) {
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) why = 'no WebGPU adapter';
    } catch (e) {
      why = `requestAdapter failed: ${e && /** @type {{ message?: unknown }} */ (e).message}`;
    }
  }
  const info = adapter ? (adapter.info || {}) : {};
  const fallback = adapter ? Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) : false;
  const name = adapter ? [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') : '';
  if (adapter && fallback) why = `the only WebGPU adapter is a software fallback (${name || 'unknown'})`;
  return {
    adapter,
    fallback,
    f16: adapter ? adapter.features.has('shader-f16') : false,
    name,
    hardware: Boolean(adapter) && !fallback,
    why: adapter && !fallback ? '' : why,
  };
}
