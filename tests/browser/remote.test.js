// The remote fallback: a page without a hardware WebGPU adapter, device 'auto' and a `fallback`
// server (the native `listconranker serve` on the same bundle) scores on the server, with the
// worker's CPU scores; ListConRanker.remote, the API key, the server's error codes mapped onto
// the package's, abort and dispose; no fallback without one; an unreachable server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { bundles, expected, here, launch, maxAbsDiff, nativeServer, openTestPage, serve } from './harness.js';

const MODEL = 'zh-tiny';

let server; // the static files (the page, pkg/, the bundle)
let open; // the native server on the same bundle, no API key, CORS for the page's origin
let keyed; // the same with --api-key and a small --max-texts
let noGpu; // Chromium without --enable-unsafe-webgpu: navigator.gpu without any adapter
let page;
let url;

/** A loopback port that nothing listens on. */
function closedPort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

before(async () => {
  const base = bundles();
  server = await serve();
  const dir = join(here, '.bundles', MODEL);
  [open, keyed] = await Promise.all([
    nativeServer(dir, ['--cors-origin', server.url]),
    nativeServer(dir, ['--cors-origin', server.url, '--api-key', 'sesame', '--max-texts', '30']),
  ]);
  noGpu = await launch({ webgpu: false });
  page = await openTestPage(noGpu, server.url);
  url = `${server.url}${base}/${MODEL}/`;
});

after(async () => {
  await noGpu?.close();
  await Promise.all([open?.close(), keyed?.close()]);
  server?.close();
});

test("'auto' with a fallback on a page without WebGPU scores on the server, as the worker does", async () => {
  const exp = await expected(MODEL);
  // The server truncates at its --max-length (512): the cases at another length are left out.
  const scoreCases = exp.compute_score.filter((c) => c.max_length === 512);
  const iterCases = exp.iterative.filter((c) => c.max_length === 512);
  const r = await page.evaluate(async ({ url, fallback, scoreCases, iterCases }) => {
    const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
    const remote = await window.lcr.ListConRanker.load(url, { device: 'auto', fallback });
    const local = await window.lcr.ListConRanker.load(url, { device: 'cpu' });
    const out = [];
    for (const c of scoreCases) {
      out.push({ name: c.name, remote: await remote.computeScore(c.batch), local: await local.computeScore(c.batch) });
    }
    for (const c of iterCases) {
      out.push({ name: c.name, remote: await remote.iterativeInference(c.list), local: await local.iterativeInference(c.list) });
    }
    const passages = ['熊猫是一种熊。', 'Paris is in France.', 'The giant panda is a bear.'];
    const ranked = await remote.rerank('what is a panda?', passages, { topK: 2, returnDocuments: true });
    const rankedLocal = await local.rerank('what is a panda?', passages, { topK: 2, returnDocuments: true });
    const fields = {
      hasAdapter: Boolean(adapter), device: remote.device, note: remote.deviceNote, server: remote.server,
      config: remote.config, localConfig: local.config, dtype: remote.dtype, storedDtype: remote.storedDtype,
      threads: remote.threads, totalBytes: remote.totalBytes, downloadedBytes: remote.downloadedBytes,
      cached: remote.cached, fromCache: remote.fromCache, persisted: remote.persisted,
      wasmMemoryBytes: remote.wasmMemoryBytes, stats: await remote.stats(), loadMs: remote.loadMs,
      adapterName: remote.adapter, localDevice: local.device,
    };
    await remote.dispose();
    await local.dispose();
    return { out, ranked, rankedLocal, fields };
  }, { url, fallback: open.url, scoreCases, iterCases });
  const f = r.fields;
  assert.equal(f.hasAdapter, false, 'this Chromium has a WebGPU adapter: the test needs a page without one');
  assert.equal(f.device, 'remote');
  assert.equal(f.localDevice, 'cpu');
  assert.match(f.note, /no WebGPU adapter: scoring on the server http:\/\/127\.0\.0\.1:\d+\/ \(fallback\)/);
  assert.equal(f.server.url, open.url);
  assert.equal(f.server.maxLength, 512);
  assert.equal(f.server.device, 'cpu');
  assert.equal(f.server.name, MODEL);
  assert.equal(f.dtype, 'f32');
  assert.deepEqual(f.config, { ...f.localConfig, vocab: null });
  assert.equal(f.storedDtype, null);
  assert.equal(f.adapterName, null);
  assert.deepEqual([f.threads, f.totalBytes, f.downloadedBytes, f.wasmMemoryBytes, f.stats.wasmMemoryBytes], [0, 0, 0, 0, 0]);
  assert.deepEqual([f.cached, f.fromCache, f.persisted], [false, false, null]);
  assert.ok(f.loadMs > 0);
  assert.equal(r.out.length, scoreCases.length + iterCases.length);
  let worst = 0;
  for (const o of r.out) {
    const diff = maxAbsDiff(o.remote, o.local);
    assert.ok(diff < 1e-5, `${o.name}: server vs worker max |diff| ${diff}`);
    worst = Math.max(worst, diff);
  }
  assert.deepEqual(r.ranked.map((x) => [x.index, x.document]), r.rankedLocal.map((x) => [x.index, x.document]));
  console.log(`remote: ${r.out.length} cases, server vs worker (CPU) max |diff| ${worst.toExponential(2)}`);
});

test("without a fallback, 'auto' on the same page takes the CPU path", async () => {
  const r = await page.evaluate(async (url) => {
    const ranker = await window.lcr.ListConRanker.load(url, { device: 'auto' });
    const out = { device: ranker.device, note: ranker.deviceNote, server: ranker.server, n: (await ranker.computeScore([['q', 'p']]))[0].length };
    await ranker.dispose();
    return out;
  }, url);
  assert.deepEqual([r.device, r.server, r.n], ['cpu', null, 1]);
  assert.match(r.note, /no WebGPU adapter: using the CPU backend/);
});

test("a hardware WebGPU adapter keeps 'auto' off the fallback server; a software one does not", async () => {
  // The page's navigator.gpu answers with a made-up adapter (the worker's is untouched and has
  // none, so the local load then runs on the CPU).
  const r = await page.evaluate(async ({ url, fallback }) => {
    const gpu = navigator.gpu;
    const adapter = (isFallbackAdapter) => ({
      info: { vendor: 'test', architecture: '', description: 'made up', isFallbackAdapter },
      features: new Set(),
    });
    const out = {};
    try {
      gpu.requestAdapter = async () => adapter(false);
      const hw = await window.lcr.ListConRanker.load(url, { device: 'auto', fallback });
      out.hardware = hw.device;
      await hw.dispose();
      gpu.requestAdapter = async () => adapter(true);
      const sw = await window.lcr.ListConRanker.load(url, { device: 'auto', fallback });
      out.software = [sw.device, sw.deviceNote];
      await sw.dispose();
      // Only 'auto' consults the fallback.
      const cpu = await window.lcr.ListConRanker.load(url, { device: 'cpu', fallback });
      out.cpu = cpu.device;
      await cpu.dispose();
    } finally {
      delete gpu.requestAdapter;
    }
    return out;
  }, { url, fallback: open.url });
  assert.equal(r.hardware, 'cpu');
  assert.equal(r.software[0], 'remote');
  assert.match(r.software[1], /software fallback \(test made up\): scoring on the server/);
  assert.equal(r.cpu, 'cpu');
});

test('ListConRanker.remote: the API key, and the server\'s error codes mapped onto the package\'s', async () => {
  const r = await page.evaluate(async (base) => {
    const { ListConRanker, ListConRankerError } = window.lcr;
    const code = (p) => p.then(() => 'resolved', (e) => `${e instanceof ListConRankerError}:${e.code}:${e.serverCode}:${e.status}`);
    const out = {};
    out.noKey = await code(ListConRanker.remote(base));
    out.wrongKey = await code(ListConRanker.remote(base, { apiKey: 'open sesame' }));
    const ranker = await ListConRanker.remote(base, { apiKey: 'sesame' });
    out.device = ranker.device;
    out.note = ranker.deviceNote;
    out.maxTexts = ranker.server.maxTexts;
    out.scores = await ranker.computeScore([['q', 'p1', 'p2'], ['q2', 'p3']]);
    // The same bad input as the worker's test: the server's INPUT_INVALID (400).
    out.invalid = [
      await code(ranker.computeScore([['only a query']])),
      await code(ranker.computeScore([])),
      await code(ranker.computeScore([[1, 2]])),
      await code(ranker.computeScore('not a batch')),
      await code(ranker.iterativeInference([])),
    ];
    // More texts than the server's --max-texts (30): 413 INPUT_TOO_LARGE.
    out.tooLarge = await code(ranker.iterativeInference(['q', ...Array.from({ length: 40 }, (_, i) => `p${i}`)]));
    out.message = await ranker.computeScore([]).catch((e) => e.message);
    out.setLength = [await code(ranker.setMaxLength(16)), await code(ranker.setMaxLength(512))];
    // An AbortSignal: already aborted, and aborted while the request is in flight.
    const ac = new AbortController();
    ac.abort();
    const name = (p) => p.then(() => 'resolved', (e) => e.name);
    out.aborted = await name(ranker.computeScore([['q', 'p']], { signal: ac.signal }));
    const ac2 = new AbortController();
    const inFlight = ranker.iterativeInference(['q', ...Array.from({ length: 25 }, (_, i) => `passage ${i} `.repeat(40))], { signal: ac2.signal });
    ac2.abort();
    out.abortedInFlight = await name(inFlight);
    out.after = (await ranker.computeScore([['q', 'p']]))[0].length;
    // dispose: a call in flight and later calls fail with DISPOSED.
    const pending = code(ranker.iterativeInference(['q', ...Array.from({ length: 25 }, (_, i) => `passage ${i} `.repeat(40))]));
    await ranker.dispose();
    out.disposed = [await pending, await code(ranker.computeScore([['q', 'p']]))];
    return out;
  }, keyed.url);
  assert.equal(r.noKey, 'true:UNAUTHORIZED:UNAUTHORIZED:401');
  assert.equal(r.wrongKey, 'true:UNAUTHORIZED:UNAUTHORIZED:401');
  assert.equal(r.device, 'remote');
  assert.equal(r.note, null);
  assert.equal(r.maxTexts, 30);
  assert.deepEqual(r.scores.map((s) => s.length), [2, 1]);
  // 'not a batch' is refused in the page, as the worker's ranker does, before any request.
  const server400 = 'true:INPUT_INVALID:INPUT_INVALID:400';
  assert.deepEqual(r.invalid, [server400, server400, server400, 'true:INPUT_INVALID:undefined:undefined', server400]);
  assert.equal(r.tooLarge, 'true:INPUT_INVALID:INPUT_TOO_LARGE:413');
  // The server's sentence, then what answered it.
  assert.match(r.message, /^no lists to score \(the server http:\/\/127\.0\.0\.1:\d+\/ answered POST \/v1\/score with 400 INPUT_INVALID\)$/);
  assert.deepEqual(r.setLength, ['true:INPUT_INVALID:undefined:undefined', 'resolved']);
  assert.equal(r.aborted, 'AbortError');
  assert.equal(r.abortedInFlight, 'AbortError');
  assert.equal(r.after, 1);
  assert.deepEqual(r.disposed, ['true:DISPOSED:undefined:undefined', 'true:DISPOSED:undefined:undefined']);
});

test('an unreachable server, a page origin the server does not allow, no answer in time: SERVER_UNAVAILABLE', async () => {
  const port = await closedPort();
  const r = await page.evaluate(async ({ url, down, notServer, open }) => {
    const { ListConRanker } = window.lcr;
    const code = (p) => p.then(() => 'resolved', (e) => `${e.code}:${e.status}:${e.message}`);
    return {
      down: await code(ListConRanker.load(url, { device: 'auto', fallback: down })),
      // The static file server: /health is its 404 page, not a listconranker answer.
      notServer: await code(ListConRanker.remote(notServer)),
      slow: await code(ListConRanker.remote(open, { timeoutMs: 1 })),
      badUrl: await code(ListConRanker.remote('ftp://example.com/')),
      badFallback: await code(ListConRanker.load(url, { device: 'auto', fallback: 42 })),
      badTimeout: await code(ListConRanker.remote(open, { timeoutMs: -1 })),
    };
  }, { url, down: `http://127.0.0.1:${port}/`, notServer: `${server.url}/no-server/`, open: open.url });
  assert.match(r.down, new RegExp(`^SERVER_UNAVAILABLE:undefined:cannot reach the server at http://127\\.0\\.0\\.1:${port}/health`));
  assert.match(r.notServer, /^SERVER_UNAVAILABLE:404:/);
  assert.match(r.slow, /^SERVER_UNAVAILABLE:undefined:the server did not answer GET .*health within 1 ms/);
  assert.match(r.badUrl, /^INPUT_INVALID:/);
  assert.match(r.badFallback, /^INPUT_INVALID:/);
  assert.match(r.badTimeout, /^INPUT_INVALID:/);

  // A page of another origin (localhost, not 127.0.0.1): the server's CORS does not allow it.
  const other = await openTestPage(noGpu, server.url.replace('127.0.0.1', 'localhost'));
  const cors = await other.evaluate((base) => window.lcr.ListConRanker.remote(base)
    .then(() => 'resolved', (e) => `${e.code}:${e.message}`), open.url);
  await other.close();
  assert.match(cors, /^SERVER_UNAVAILABLE:cannot reach the server .*--cors-origin http:\/\/localhost:\d+/);
});
