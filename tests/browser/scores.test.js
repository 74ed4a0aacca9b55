// Scores computed in Chromium equal the PyTorch reference's fixtures: the wasm CPU backend
// within 1e-5, WebGPU (SwiftShader where there is no GPU) within 1e-4.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, bundles, launch, maxAbsDiff, nativeScores, openTestPage, runCases, serve } from './harness.js';

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

for (const model of MODELS) {
  test(`${model}: CPU backend scores equal the reference and the native build (<= 1e-5), compute_score and iterative`, async (t) => {
    const page = await openTestPage(context, server.url);
    const { device, out } = await runCases(page, `${server.url}${bundleBase}/${model}/`, model, 'cpu');
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
  const { device, out } = await runCases(page, `${server.url}${bundleBase}/zh-tiny/`, 'zh-tiny', 'webgpu', { cases });
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
