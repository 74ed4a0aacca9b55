// The demo page (www/, served cross-origin isolated as www/serve.py does) loads the model given
// by ?model= (a q4 bundle: any stored type loads the same way), searches, reranks; a screenshot
// is saved for a look. With ?server= on a browser without WebGPU it scores on the native server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, nativeServer, outDir, quantizedBundle, root, serve } from './harness.js';

let server;
let context;

let bundlePath;

before(async () => {
  bundlePath = quantizedBundle('zh-tiny', 'q4').path;
  server = await serve(undefined, { isolated: true });
  context = await launch();
});

after(async () => {
  await context?.close();
  server?.close();
});

test('the demo loads, searches and reranks the top 50 with the model', async () => {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  const model = encodeURIComponent(bundlePath);
  const started = Date.now();
  await page.goto(`${server.url}/www/?model=${model}&q=${encodeURIComponent('green tea caffeine 绿茶')}`);
  await page.waitForFunction(() => window.demo && window.demo.lastResults && window.demo.firstScoreMs, null, { timeout: 120000 });
  const r = await page.evaluate(() => ({
    results: window.demo.lastResults.length,
    scored: window.demo.lastResults.filter((x) => x.modelScore !== null).length,
    firstScoreMs: window.demo.firstScoreMs,
    device: window.demo.ranker.device,
    threads: window.demo.ranker.threads,
    status: document.getElementById('status').textContent,
    ready: window.demo.readyText,
    notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent,
    items: document.querySelectorAll('#results li').length,
    timings: document.getElementById('timings').textContent,
  }));
  assert.ok(r.results > 5 && r.results <= 50, JSON.stringify(r));
  assert.equal(r.scored, r.results);
  assert.equal(r.items, r.results);
  assert.match(r.status, /Reranked on (CPU|WEBGPU)/);
  assert.match(r.ready, /\(f32, q4 bundle/, 'the status says how the bundle is stored');
  // On the CPU the isolated page runs the threaded build, one thread per core.
  if (r.device === 'cpu') assert.equal(r.threads, await page.evaluate(() => navigator.hardwareConcurrency), r.status);
  assert.match(r.notice, /random/);
  assert.match(r.timings, /rerank/);
  // A second search through the form.
  await page.fill('#query', '皮蛋 高血压');
  await page.click('#search');
  await page.waitForFunction(() => window.demo.lastResults.some((x) => x.modelScore !== null)
    && document.getElementById('timings').textContent.includes('rerank') && !document.getElementById('search').disabled);
  mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, 'demo.png'), fullPage: false });
  console.log(`demo: first score ${r.firstScoreMs.toFixed(0)} ms after page load on ${r.device} (test wall ${Date.now() - started} ms)`);
  await page.close();
});

test('with ?server= and no WebGPU adapter, the demo scores on the server and says so', async () => {
  const native = await nativeServer(join(root, 'tests/fixtures/models/zh-tiny'), ['--cors-origin', server.url]);
  const noGpu = await launch({ webgpu: false });
  try {
    const page = await noGpu.newPage();
    page.on('pageerror', (e) => console.error('[page error]', e.message));
    const q = encodeURIComponent('green tea caffeine 绿茶');
    await page.goto(`${server.url}/www/?model=${encodeURIComponent(bundlePath)}&server=${encodeURIComponent(native.url)}&q=${q}`);
    await page.waitForFunction(() => window.demo && window.demo.lastResults && window.demo.firstScoreMs, null, { timeout: 120000 });
    const r = await page.evaluate(() => ({
      device: window.demo.ranker.device,
      scored: window.demo.lastResults.filter((x) => x.modelScore !== null).length,
      results: window.demo.lastResults.length,
      status: document.getElementById('status').textContent,
      timings: document.getElementById('timings').textContent,
      server: document.getElementById('server').value,
    }));
    assert.equal(r.device, 'remote', r.status);
    assert.equal(r.server, native.url);
    assert.ok(r.results > 5 && r.scored === r.results, JSON.stringify(r));
    assert.match(r.status, /^Scoring remotely on the server http:\/\/127\.0\.0\.1:\d+\/ \(model zh-tiny, cpu, f32, listconranker [^)]+\), ready in/);
    assert.match(r.status, /Note: no WebGPU adapter: scoring on the server/);
    assert.match(r.status, /Reranked remotely on the server\.$/);
    assert.match(r.timings, /rerank \(remote, iterative\)/);
    await page.screenshot({ path: join(outDir, 'demo-remote.png'), fullPage: false });
  } finally {
    await noGpu.close();
    await native.close();
  }
});
