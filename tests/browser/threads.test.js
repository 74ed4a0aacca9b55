// The threaded CPU build (pkg/threads/): on a cross-origin-isolated page the CPU backend runs on
// several Web Workers and gives the reference's scores; elsewhere, or where the threaded build
// cannot be imported, it falls back to one thread and says why; bad `threads` values are
// rejected.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, bundles, launch, maxAbsDiff, openTestPage, runCases, serve } from './harness.js';

let isolated;
let plain;
let context;
let bundleBase;

before(async () => {
  bundleBase = bundles();
  isolated = await serve(undefined, { isolated: true });
  plain = await serve();
  context = await launch();
});

after(async () => {
  await context?.close();
  isolated?.close();
  plain?.close();
});

for (const model of MODELS) {
  test(`${model}: 2 threads on an isolated page, scores equal the reference (<= 1e-5), compute_score and iterative`, async (t) => {
    const page = await openTestPage(context, isolated.url);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    const url = `${isolated.url}${bundleBase}/${model}/`;
    const r = await runCases(page, url, model, 'cpu', { loadOptions: { threads: 2 } });
    assert.equal(r.device, 'cpu');
    assert.equal(r.threads, 2, `threads: ${r.threads} (${r.threadsNote})`);
    assert.equal(r.threadsNote, null);
    assert.ok(r.out.length >= 20, `${r.out.length} cases`);
    let worst = 0;
    for (const c of r.out) {
      const diff = maxAbsDiff(c.got, c.want);
      assert.ok(diff <= 1e-5, `${model} ${c.name}: max |diff| vs reference ${diff}`);
      worst = Math.max(worst, diff);
    }
    t.diagnostic(`${model} browser wasm CPU, 2 threads: max |diff| vs reference ${worst.toExponential(2)}`);
    await page.close();
  });
}

test("'auto' uses one thread per core on an isolated page, and one elsewhere (with the reason)", async () => {
  const load = async (server) => {
    const page = await openTestPage(context, server.url);
    const r = await page.evaluate(async (url) => {
      const ranker = await window.lcr.ListConRanker.load(url, { device: 'cpu' });
      const scores = await ranker.computeScore([['皮蛋是寒性的食物吗', '皮蛋性凉', '咖啡因']]);
      const out = { threads: ranker.threads, note: ranker.threadsNote, cores: navigator.hardwareConcurrency, scores };
      await ranker.dispose();
      return out;
    }, `${server.url}${bundleBase}/zh-tiny/`);
    await page.close();
    return r;
  };
  const on = await load(isolated);
  const off = await load(plain);
  assert.equal(on.threads, on.cores);
  assert.equal(off.threads, 1);
  if (on.cores > 1) {
    assert.equal(on.note, null);
    assert.match(off.note, /cross-origin isolated/);
  }
  assert.ok(maxAbsDiff(on.scores, off.scores) <= 1e-6, `threaded ${on.scores} vs one thread ${off.scores}`);
});

test('asking for threads on a page that is not isolated: one thread and a console warning', async () => {
  const page = await openTestPage(context, plain.url);
  const warnings = [];
  page.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
  const r = await page.evaluate(async (url) => {
    const ranker = await window.lcr.ListConRanker.load(url, { device: 'cpu', threads: 4 });
    const out = { threads: ranker.threads, note: ranker.threadsNote };
    await ranker.dispose();
    return out;
  }, `${plain.url}${bundleBase}/zh-tiny/`);
  assert.equal(r.threads, 1);
  assert.match(r.note, /cross-origin isolated/);
  assert.ok(warnings.some((w) => /cross-origin isolated/.test(w)), `warnings: ${warnings}`);
  await page.close();
});

test('a threaded build that cannot be imported falls back to one thread, naming threadsUrl', async () => {
  const page = await openTestPage(context, isolated.url);
  const r = await page.evaluate(async (url) => {
    const ranker = await window.lcr.ListConRanker.load(url, { device: 'cpu', threads: 2, threadsUrl: '/no-such-dir/' });
    const scores = await ranker.computeScore([['q', 'a passage', 'another passage']]);
    const out = { threads: ranker.threads, note: ranker.threadsNote, n: scores[0].length };
    await ranker.dispose();
    return out;
  }, `${isolated.url}${bundleBase}/zh-tiny/`);
  assert.equal(r.threads, 1);
  assert.equal(r.n, 2);
  assert.match(r.note, /no-such-dir.*threadsUrl/);
  await page.close();
});

test('invalid threads values are rejected with INPUT_INVALID', async () => {
  const page = await openTestPage(context, plain.url);
  const codes = await page.evaluate(async (url) => {
    const out = [];
    for (const threads of [0, 1.5, -2, 'many', null, 1000]) {
      try {
        await window.lcr.ListConRanker.load(url, { device: 'cpu', threads });
        out.push('loaded');
      } catch (e) {
        out.push(e.code);
      }
    }
    return out;
  }, `${plain.url}${bundleBase}/zh-tiny/`);
  assert.deepEqual(codes, Array(6).fill('INPUT_INVALID'));
  await page.close();
});
