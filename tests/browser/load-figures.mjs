// Measures loading the full-size model in Chromium (not a test; CI does not run it): for each
// bundle (f16, q8, q4 of the full-size synthetic model, the released model's shapes) and each
// device (WebGPU, the wasm CPU backend on one thread), in the setup of full-size.test.js (a
// local static server, headless Chromium with a real profile, so a real IndexedDB cache):
//   - the first load (cache cleared: download, sha256, IndexedDB, upload) to a ready model;
//   - the second load, after a page reload (every file from IndexedDB, no request);
//   - the worker's peak wasm memory (`wasmMemoryBytes`, which never shrinks; the largest of the
//     two loads, after a score call where there is one);
//   - on the CPU backend, one short score call (a query and two short passages) after each load,
//     its scores against the native CLI's on the same bundle.
// The model computes in f32 on both devices (SwiftShader, the software adapter, has no
// shader-f16). A load that fails is recorded with its error code and message; a step that runs
// past --limit-s is recorded as such. Prints progress on stderr, then a Markdown table.
//   LCR_FULL_MODEL=tests/.synthetic/full-<hash> node tests/browser/load-figures.mjs
//        [--dtypes f16,q8,q4] [--devices webgpu,cpu] [--limit-s 600] [--json OUT]
// The bundles are tests/browser/.bundles/<basename of LCR_FULL_MODEL>-<dtype>/, converted from
// LCR_FULL_MODEL by the native CLI when absent (as full-size.test.js does).
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { bundle, launch, maxAbsDiff, nativeScores, openTestPage, outDir, serve } from './harness.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const FULL = process.env.LCR_FULL_MODEL;
if (!FULL) throw new Error('set LCR_FULL_MODEL to the full-size synthetic checkpoint (tests/run.sh makes it)');
const dtypes = opt('dtypes', 'f16,q8,q4').split(',');
const devices = opt('devices', 'webgpu,cpu').split(',');
const limitMs = Number(opt('limit-s', '600')) * 1000;
const jsonOut = opt('json', null);
const MIB = 2 ** 20;
const LIST = [
  'what is the capital of France?',
  'Paris is the capital and largest city of France.',
  'The Great Wall of China is thousands of kilometres long.',
];

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const load1 = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** `promise`, or {timeout: true} once `ms` have passed. */
function limited(promise, ms) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((ok) => { timer = setTimeout(() => ok({ timeout: true }), ms); }),
  ]);
}

/** In the page: loads `url` on `device` (f32, one thread), scores LIST if asked; times from the
 *  call to load(). A failed load or score comes back as {error: {code, message}}. */
function measure(page, url, device, score) {
  return page.evaluate(async ({ url, device, list, score }) => {
    const asError = (e) => ({ code: e?.code ?? e?.name ?? null, message: String(e?.message ?? e) });
    const phases = new Set();
    const started = performance.now();
    let ranker;
    try {
      ranker = await window.lcr.ListConRanker.load(url, {
        device, dtype: 'f32', threads: 1, onProgress: (e) => phases.add(e.phase),
      });
    } catch (e) {
      return { error: asError(e), afterMs: performance.now() - started, phases: [...phases] };
    }
    const out = {
      loadMs: performance.now() - started, workerLoadMs: ranker.loadMs,
      device: ranker.device, note: ranker.deviceNote, adapter: ranker.adapter, dtype: ranker.dtype,
      storedDtype: ranker.storedDtype, fromCache: ranker.fromCache, cached: ranker.cached,
      downloaded: ranker.downloadedBytes, total: ranker.totalBytes,
      memoryAfterLoad: ranker.wasmMemoryBytes, phases: [...phases],
    };
    if (score) {
      const a = performance.now();
      try {
        out.scores = await ranker.computeScore([list]);
        out.scoreMs = performance.now() - a;
      } catch (e) {
        out.scoreError = asError(e);
      }
    }
    out.memory = (await ranker.stats()).wasmMemoryBytes;
    await ranker.dispose();
    return out;
  }, { url, device, list: LIST, score });
}

/** One step, within the limit; a crash or timeout of the page is recorded, and the page is
 *  replaced (its worker goes with it). */
async function step(state, url, device, score) {
  try {
    const r = await limited(measure(state.page, url, device, score), limitMs);
    if (r.timeout) {
      await state.page.close().catch(() => {});
      state.page = await openTestPage(state.context, state.base);
      return { timeout: true };
    }
    return r;
  } catch (e) {
    await state.page.close().catch(() => {});
    state.page = await openTestPage(state.context, state.base);
    return { error: { code: 'PAGE_FAILED', message: String(e.message).split('\n')[0] } };
  }
}

const before = load1();
log(`load average (1, 5, 15 min) before: ${before}`);
const name = (dtype) => `${basename(FULL)}-${dtype}`;
const paths = Object.fromEntries(dtypes.map((d) => [d, bundle(name(d), FULL, ['--dtype', d])]));
// The native CLI's scores (CPU, f32) for the same list on each bundle.
const native = devices.includes('cpu')
  ? Object.fromEntries(dtypes.map((d) => [d, nativeScores(name(d), { batch: [LIST], max_length: 512 })]))
  : {};
const server = await serve();
const context = await launch();
const chromium = context.browser()?.version() ?? null;
const state = { context, base: server.url, page: await openTestPage(context, server.url) };
const rows = [];
const started = Date.now();
try {
  for (const dtype of dtypes) {
    const url = `${server.url}${paths[dtype]}`;
    for (const device of devices) {
      log(`${dtype} on ${device}: first load`);
      await state.page.evaluate((u) => window.lcr.ListConRanker.clearCache(u), url);
      const score = device === 'cpu';
      const first = await step(state, url, device, score);
      log(`  ${JSON.stringify({ ...first, scores: undefined })}`);
      let second = { skipped: true };
      if (!first.error && !first.timeout) {
        log(`${dtype} on ${device}: second load, page reloaded`);
        await state.page.reload();
        await state.page.waitForFunction(() => window.lcr !== undefined);
        second = await step(state, url, device, score);
        log(`  ${JSON.stringify({ ...second, scores: undefined })}`);
      }
      rows.push({ dtype, device, first, second });
      await state.page.evaluate((u) => window.lcr.ListConRanker.clearCache(u), url).catch(() => {});
    }
  }
} finally {
  await context.close();
  server.close();
  // The browser profile (with its IndexedDB) that launch() made for this process.
  for (const name of readdirSync(outDir)) {
    if (name.startsWith(`profile-${process.pid}-`)) rmSync(join(outDir, name), { recursive: true, force: true });
  }
}
const after = load1();
log(`load average (1, 5, 15 min) after: ${after}`);

const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
const failure = (r) => (r.timeout ? `over ${limitMs / 1000} s (stopped)`
  : r.error ? `failed: \`${r.error.code}\` ${r.error.message.slice(0, 160)}`
    : null);
const deviceName = (device, r) => (device === 'webgpu'
  ? `WebGPU (${r.adapter ?? 'adapter'}), f32`
  : 'wasm CPU, 1 thread, f32');
const lines = [
  '| bundle | device, compute type | first load | second load (IndexedDB) | peak wasm memory | score call (1 query, 2 passages) after the first / second load | max \\|browser - native CLI\\| |',
  '|---|---|---|---|---|---|---|',
];
for (const { dtype, device, first, second } of rows) {
  const ok = [first, second].filter((r) => r.loadMs !== undefined);
  const size = ok[0] ? `${(ok[0].total / 1e6).toFixed(0)} MB` : '';
  const mem = ok.length ? `${(Math.max(...ok.map((r) => r.memory)) / MIB).toFixed(0)} MiB` : '';
  let scoreCell = '-';
  let diffCell = '-';
  if (device === 'cpu') {
    const scored = ok.filter((r) => r.scoreMs !== undefined);
    const err = ok.find((r) => r.scoreError);
    scoreCell = err ? `failed: \`${err.scoreError.code}\` ${err.scoreError.message.slice(0, 120)}`
      : scored.map((r) => s(r.scoreMs)).join(' / ');
    if (scored.length) diffCell = Math.max(...scored.map((r) => maxAbsDiff(r.scores, native[dtype]))).toExponential(1);
  }
  const sample = ok[0] ?? first;
  const cell1 = failure(first) ?? `${s(first.loadMs)}${first.fromCache ? ' (from the cache: not cleared)' : ''}`;
  const cell2 = second.skipped ? '-' : failure(second) ?? `${s(second.loadMs)}${second.fromCache ? '' : ' (not from cache)'}`;
  lines.push(`| ${dtype}${size ? `, ${size}` : ''} | ${deviceName(device, sample)} | ${cell1} | ${cell2} | ${mem} | ${scoreCell} | ${diffCell} |`);
}
const table = lines.join('\n');
const meta = {
  chromium, cpus: cpus().length, cpu: cpus()[0]?.model, loadavgBefore: before, loadavgAfter: after,
  wallS: Math.round((Date.now() - started) / 1000),
};
console.log(table);
console.log(`\nChromium ${chromium}, ${meta.cpus} cores (${meta.cpu}); load average (1, 5, 15 min) before ${before}, after ${after}; ${meta.wallS} s in all.`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ meta, rows }, null, 2));
