// The JS API in Chromium: the page stays responsive while the worker scores, concurrent calls
// are queued, errors carry stable codes, 'auto' avoids a software WebGPU adapter, abort works.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundles, here, launch, openTestPage, serve } from './harness.js';

let server;
let context;
let page;
let url;

before(async () => {
  const base = bundles();
  server = await serve();
  context = await launch();
  page = await openTestPage(context, server.url);
  url = `${server.url}${base}/zh-tiny/`;
  await page.evaluate(async (url) => {
    window.ranker = await window.lcr.ListConRanker.load(url, { device: 'cpu' });
  }, url);
});

after(async () => {
  await context?.close();
  server?.close();
});

test('the main thread keeps ticking while the model scores', async () => {
  const r = await page.evaluate(async () => {
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(60);
    const batch = Array.from({ length: 8 }, (_, i) => [`query ${i}`, ...Array.from({ length: 20 }, (_, j) => `${long} ${i} ${j}`)]);
    let ticks = 0;
    const timer = setInterval(() => { ticks += 1; }, 10);
    const t0 = performance.now();
    const scores = await window.ranker.computeScore(batch);
    const ms = performance.now() - t0;
    clearInterval(timer);
    return { ms, ticks, n: scores.flat().length };
  });
  assert.equal(r.n, 160);
  // A blocked main thread would give ~0 ticks; allow for timer clamping and a loaded machine.
  assert.ok(r.ms > 100, `scoring took only ${r.ms} ms: the workload is too small to tell`);
  assert.ok(r.ticks >= (r.ms / 10) * 0.3, `${r.ticks} ticks in ${r.ms.toFixed(0)} ms`);
});

test('the worker reports its wasm memory, which only grows', async () => {
  const r = await page.evaluate(async () => {
    const before = window.ranker.wasmMemoryBytes;
    const long = 'word '.repeat(400);
    await window.ranker.computeScore([['q', long, long + 'x']]);
    return { before, after: (await window.ranker.stats()).wasmMemoryBytes };
  });
  // Wasm memory grows in 64 KiB pages; the tiny model and its tokenizer need a few MiB.
  assert.ok(r.before > 1 << 20 && r.before % 65536 === 0, `after load: ${r.before} bytes`);
  assert.ok(r.after >= r.before, `after scoring: ${r.after} < ${r.before}`);
});

test('concurrent calls are queued and all succeed', async () => {
  const r = await page.evaluate(async () => {
    const a = window.ranker.computeScore([['q', 'p1', 'p2']]);
    const b = window.ranker.computeScore([['another query', 'x', 'y', 'z']]);
    const c = window.ranker.iterativeInference(['q', 'p1', 'p2']);
    const d = window.ranker.rerank('q', ['p1', 'p2', 'p3'], { topK: 2 });
    return Promise.all([a, b, c, d]);
  });
  assert.equal(r[0][0].length, 2);
  assert.equal(r[1][0].length, 3);
  assert.deepEqual(r[2], r[0][0]);
  assert.equal(r[3].length, 2);
  assert.ok(r[3][0].score >= r[3][1].score);
});

test('bad input gives INPUT_INVALID errors', async () => {
  const codes = await page.evaluate(async () => {
    const code = (p) => p.then(() => 'resolved', (e) => `${e instanceof Error}:${e.code}`);
    return [
      await code(window.ranker.computeScore([['only a query']])),
      await code(window.ranker.computeScore([])),
      await code(window.ranker.computeScore([[1, 2]])),
      await code(window.ranker.computeScore('not a batch')),
      await code(window.ranker.iterativeInference([])),
    ];
  });
  assert.deepEqual(codes, Array(5).fill('true:INPUT_INVALID'));
  // The model still works after errors.
  const ok = await page.evaluate(() => window.ranker.computeScore([['q', 'p']]));
  assert.equal(ok[0].length, 1);
});

test('a missing model gives MODEL_FETCH_FAILED, a broken one MODEL_INVALID', async () => {
  const r = await page.evaluate(async (base) => {
    const code = (p) => p.then(() => 'resolved', (e) => `${e instanceof Error}:${e.code}:${e.message}`);
    return [
      await code(window.lcr.ListConRanker.load(`${base}/no-such-model/`, { device: 'cpu' })),
      await code(window.lcr.ListConRanker.load(`${base}/tests/fixtures/models/zh-tiny/`, { device: 'cpu' })),
    ];
  }, server.url);
  assert.match(r[0], /^true:MODEL_FETCH_FAILED:.*404/);
  // A split-layout directory has no manifest.json: 404 as well.
  assert.match(r[1], /^true:MODEL_FETCH_FAILED/);
  // A bundle of a newer format version, and one with a truncated shard.
  const broken = join(here, '.bundles', 'broken-version');
  const truncated = join(here, '.bundles', 'broken-shard');
  for (const dir of [broken, truncated]) cpSync(join(here, '.bundles', 'zh-tiny'), dir, { recursive: true });
  const manifest = readFileSync(join(broken, 'manifest.json'), 'utf8');
  writeFileSync(join(broken, 'manifest.json'), manifest.replace('"version": 1', '"version": 99'));
  const shard = readFileSync(join(truncated, 'head.safetensors'));
  writeFileSync(join(truncated, 'head.safetensors'), shard.subarray(0, shard.length - 100));
  const invalid = await page.evaluate(async (urls) => Promise.all(urls.map((u) =>
    window.lcr.ListConRanker.load(u, { device: 'cpu' }).then(() => 'resolved', (e) => `${e.code}:${e.message}`))),
  [`${server.url}/tests/browser/.bundles/broken-version/`, `${server.url}/tests/browser/.bundles/broken-shard/`]);
  assert.match(invalid[0], /^MODEL_INVALID:.*version 99/);
  assert.match(invalid[1], /^MODEL_INVALID:.*head\.safetensors/);
});

test("device 'auto' runs, and does not pick a software WebGPU adapter", async () => {
  const r = await page.evaluate(async (url) => {
    const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
    const fallback = adapter ? Boolean((adapter.info || {}).isFallbackAdapter ?? adapter.isFallbackAdapter) : null;
    const ranker = await window.lcr.ListConRanker.load(url, { device: 'auto' });
    const scores = await ranker.computeScore([['q', 'p']]);
    const out = { device: ranker.device, note: ranker.deviceNote, fallback, hasAdapter: Boolean(adapter), n: scores[0].length };
    await ranker.dispose();
    return out;
  }, url);
  assert.equal(r.n, 1);
  if (!r.hasAdapter || r.fallback) assert.equal(r.device, 'cpu', JSON.stringify(r));
  if (r.device === 'cpu') assert.ok(r.note, 'a note says why');
});

test('f16 on a WebGPU adapter without shader-f16: auto falls back to the CPU, webgpu refuses', async (t) => {
  const r = await page.evaluate(async (url) => {
    const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
    if (!adapter) return { skip: 'no WebGPU adapter in this Chromium' };
    if (adapter.features.has('shader-f16')) return { skip: "the WebGPU adapter has 'shader-f16': nothing to fall back from" };
    const forced = await window.lcr.ListConRanker.load(url, { device: 'webgpu', dtype: 'f16' })
      .then(() => 'resolved', (e) => e.code);
    const auto = await window.lcr.ListConRanker.load(url, { device: 'auto', dtype: 'f16' });
    const scores = await auto.computeScore([['q', 'p1', 'p2']]);
    const out = { forced, device: auto.device, dtype: auto.dtype, n: scores[0].length };
    await auto.dispose();
    return out;
  }, url);
  if (r.skip) {
    t.skip(r.skip);
    return;
  }
  assert.equal(r.forced, 'WEBGPU_UNAVAILABLE');
  assert.equal(r.device, 'cpu');
  assert.equal(r.dtype, 'f16');
  assert.equal(r.n, 2);
});

test('an AbortSignal cancels a load and a queued call', async () => {
  const r = await page.evaluate(async (url) => {
    const ac = new AbortController();
    const loading = window.lcr.ListConRanker.load(url, { device: 'cpu', signal: ac.signal });
    ac.abort();
    const load = await loading.then(() => 'resolved', (e) => e.name);
    const long = 'words '.repeat(300);
    const first = window.ranker.computeScore([['q', ...Array(20).fill(long).map((t, i) => t + i)]]);
    const ac2 = new AbortController();
    const second = window.ranker.computeScore([['q', 'p']], { signal: ac2.signal });
    ac2.abort();
    return [load, await second.then(() => 'resolved', (e) => e.name), (await first)[0].length];
  }, url);
  assert.deepEqual(r, ['AbortError', 'AbortError', 20]);
});

test('dispose ends the worker; later calls fail with DISPOSED', async () => {
  const r = await page.evaluate(async (url) => {
    const ranker = await window.lcr.ListConRanker.load(url, { device: 'cpu' });
    await ranker.dispose();
    return ranker.computeScore([['q', 'p']]).then(() => 'resolved', (e) => e.code);
  }, url);
  assert.equal(r, 'DISPOSED');
});
