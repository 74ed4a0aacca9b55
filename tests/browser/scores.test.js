// Scores computed in Chromium equal the PyTorch reference's fixtures: the wasm CPU backend
// within 1e-5, WebGPU (SwiftShader where there is no GPU) within 1e-4.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, bundles, expected, launch, maxAbsDiff, nativeScores, openTestPage, serve } from './harness.js';

let server;
let context;
let bundleBase;

before(async () => {
  bundleBase = bundles();
  server = await serve();
  context = await launch();
});

after(async () => {
  await context?.close();
  server?.close();
});

/** Runs every case in the page: returns [{name, kind, got, want}]. */
async function runCases(page, model, device, { iterative = true, cases } = {}) {
  const exp = await expected(model);
  const scoreCases = exp.compute_score.filter((c) => !cases || cases.includes(c.name));
  const iterCases = iterative ? exp.iterative.filter((c) => !cases || cases.includes(c.name)) : [];
  return page.evaluate(async ({ url, device, scoreCases, iterCases }) => {
    const ranker = await window.lcr.ListConRanker.load(url, { device });
    const out = [];
    let maxLength = 512;
    const setLength = async (n) => {
      if (n !== maxLength) {
        await ranker.setMaxLength(n);
        maxLength = n;
      }
    };
    for (const c of scoreCases) {
      await setLength(c.max_length);
      out.push({ name: c.name, case: c, got: await ranker.computeScore(c.batch), want: c.scores });
    }
    for (const c of iterCases) {
      await setLength(c.max_length);
      out.push({ name: c.name, case: c, got: await ranker.iterativeInference(c.list), want: c.scores });
    }
    const result = { device: ranker.device, note: ranker.deviceNote, out };
    await ranker.dispose();
    return result;
  }, { url: `${server.url}${bundleBase}/${model}/`, device, scoreCases, iterCases });
}

for (const model of MODELS) {
  test(`${model}: CPU backend scores equal the reference and the native build (<= 1e-5), compute_score and iterative`, async (t) => {
    const page = await openTestPage(context, server.url);
    const { device, out } = await runCases(page, model, 'cpu');
    assert.equal(device, 'cpu');
    assert.ok(out.length >= 20, `${out.length} cases`);
    let vsReference = 0;
    let vsNative = 0;
    for (const c of out) {
      const diff = maxAbsDiff(c.got, c.want);
      assert.ok(diff <= 1e-5, `${model} ${c.name}: max |diff| vs reference ${diff}`);
      const native = maxAbsDiff(c.got, nativeScores(model, c.case));
      assert.ok(native <= 1e-5, `${model} ${c.name}: max |diff| vs native ${native}`);
      vsReference = Math.max(vsReference, diff);
      vsNative = Math.max(vsNative, native);
    }
    t.diagnostic(`${model} browser wasm CPU: max |diff| vs reference ${vsReference.toExponential(2)}, vs native CPU ${vsNative.toExponential(2)}`);
    await page.close();
  });
}

test('zh-tiny: WebGPU scores equal the reference (<= 1e-4)', async (t) => {
  const page = await openTestPage(context, server.url);
  const hasAdapter = await page.evaluate(async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter()));
  if (!hasAdapter) {
    t.skip('no WebGPU adapter in this Chromium');
    return;
  }
  // SwiftShader is slow: a representative subset (padding, duplicates, truncation, 2 iterative).
  const cases = ['model_card', 'short_lists_1_2_3', 'duplicates', 'mixed_batch_1_20_4_7', 'truncation_16',
    'iter_25', 'iter_dup_at_cut_25'];
  const { device, out } = await runCases(page, 'zh-tiny', 'webgpu', { cases });
  assert.equal(device, 'webgpu');
  assert.equal(out.length, cases.length);
  let vsReference = 0;
  let vsNative = 0;
  for (const c of out) {
    const diff = maxAbsDiff(c.got, c.want);
    assert.ok(diff <= 1e-4, `webgpu ${c.name}: max |diff| vs reference ${diff}`);
    const native = maxAbsDiff(c.got, nativeScores('zh-tiny', c.case));
    assert.ok(native <= 1e-4, `webgpu ${c.name}: max |diff| vs native ${native}`);
    vsReference = Math.max(vsReference, diff);
    vsNative = Math.max(vsNative, native);
  }
  t.diagnostic(`zh-tiny browser WebGPU: max |diff| vs reference ${vsReference.toExponential(2)}, vs native CPU ${vsNative.toExponential(2)}`);
  await page.close();
});
