// Measures the browser build in headless Chromium next to the native CLI (not a test): the
// native `listconranker bench` runs first on the same web bundle and writes its seeded workload
// (queries of 10-30 tokens, passages of 60-250), then the page scores the very same lists the
// same way (one computeScore call per list, one untimed pass, then `--repeat` timed passes) on
// each device asked for. Prints JSON with texts/s, p50/p95 per list and the browser/native ratio.
//   node tests/browser/bench.mjs [model] [--devices cpu,webgpu] [--lists 8] [--passages 20]
//        [--repeat 3] [--threads 1|N|auto] [--native-threads N]
// `model` is a bundle under tests/browser/.bundles/ (zh-tiny by default). `--threads` other
// than 1 serves the page cross-origin isolated, so the CPU backend runs the package's threaded
// build. `--native-threads` sets RAYON_NUM_THREADS for the native run (default: every core).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundles, here, launch, nativeBin, openTestPage, serve } from './harness.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const valued = new Set(args.flatMap((a, i) => (a.startsWith('--') ? [i + 1] : [])));
const model = args.find((a, i) => !a.startsWith('--') && !valued.has(i)) || 'zh-tiny';
const devices = opt('devices', 'cpu,webgpu').split(',');
const repeat = Number(opt('repeat', '3'));
const lists = Number(opt('lists', '8'));
const passages = Number(opt('passages', '20'));
const threadsArg = opt('threads', '1');
const threads = threadsArg === 'auto' ? 'auto' : Number(threadsArg);
const nativeThreads = opt('native-threads', null);

const base = bundles();
const bundleDir = join(here, '.bundles', model);

// The native side, which also writes the workload.
const scratch = mkdtempSync(join(tmpdir(), 'lcr-bench-'));
let native;
let workload;
try {
  const env = { ...process.env };
  if (nativeThreads) env.RAYON_NUM_THREADS = nativeThreads;
  execFileSync(nativeBin(), [
    'bench', '--model', bundleDir, '--device', 'cpu', '--lists', String(lists), '--passages', String(passages),
    '--repeat', String(repeat), '--json', join(scratch, 'native.json'), '--workload-out', join(scratch, 'workload.json'),
  ], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  native = JSON.parse(readFileSync(join(scratch, 'native.json'), 'utf8')).listconranker;
  native.threads = Number(nativeThreads) || availableParallelism();
  workload = JSON.parse(readFileSync(join(scratch, 'workload.json'), 'utf8')).lists;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const server = await serve(undefined, { isolated: threads !== 1 });
const context = await launch();
const results = {
  model, lists, passages, repeat, threads, chromium: context.browser()?.version() ?? null,
  native_cpu: native, devices: {},
};
try {
  for (const device of devices) {
    const started = Date.now();
    const page = await openTestPage(context, server.url);
    const r = await page.evaluate(async ({ url, device, workload, repeat, threads }) => {
      const ranker = await window.lcr.ListConRanker.load(url, { device, threads });
      const loaded = performance.now(); // since navigation start
      for (const list of workload) await ranker.computeScore([list]); // warm-up pass
      const latencies = [];
      const passTextsPerS = []; // one figure per timed pass: shows a speed that fades over time
      const t0 = performance.now();
      for (let i = 0; i < repeat; i++) {
        const passStart = performance.now();
        for (const list of workload) {
          const a = performance.now();
          await ranker.computeScore([list]);
          latencies.push(performance.now() - a);
        }
        const passTexts = workload.reduce((n, list) => n + list.length, 0);
        passTextsPerS.push(passTexts / ((performance.now() - passStart) / 1000));
      }
      const seconds = (performance.now() - t0) / 1000;
      latencies.sort((x, y) => x - y);
      const at = (q) => latencies[Math.min(latencies.length - 1, Math.round(q * (latencies.length - 1)))];
      const texts = repeat * workload.reduce((n, list) => n + list.length, 0);
      const out = {
        device: ranker.device, note: ranker.deviceNote, adapter: ranker.adapter,
        threads: ranker.threads, threads_note: ranker.threadsNote,
        load_ms: ranker.loadMs, page_to_model_ms: loaded,
        texts_per_s: texts / seconds, lists_per_s: (repeat * workload.length) / seconds,
        pass_texts_per_s: passTextsPerS, timed_s: seconds,
        p50_ms: at(0.5), p95_ms: at(0.95), wasm_memory_mb: ranker.wasmMemoryBytes / 2 ** 20,
      };
      await ranker.dispose();
      return out;
    }, { url: `${server.url}${base}/${model}/`, device, workload, repeat, threads });
    r.wall_s = (Date.now() - started) / 1000;
    r.ratio_to_native_cpu = r.texts_per_s / native.texts_per_s;
    results.devices[device] = r;
    await page.close();
  }
} finally {
  await context.close();
  server.close();
}
console.log(JSON.stringify(results, null, 2));
