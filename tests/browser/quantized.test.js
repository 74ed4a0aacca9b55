// Quantized bundles in Chromium: the fixture models converted with `convert --dtype q8` and
// `--dtype q4 --block 8` (harness.js's QUANTIZED) load with no option (the manifest says how
// they are stored), and score on the wasm CPU backend and on WebGPU (SwiftShader where there is no GPU)
// as the native CLI scores the same bundle, and within a measured tolerance of the float64
// reference of the unquantized model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MODELS, QUANTIZED, here, launch, maxAbsDiff, nativeScores, openTestPage, quantizedBundle, runCases, safetensorsHeader,
  serve,
} from './harness.js';

const VARIANTS = Object.keys(QUANTIZED);
/** Browser against the native CLI on the same bundle: both decode it to the same f32 weights
 *  (measured: at most 7.0e-7 on the CPU backend, 5.5e-7 on WebGPU). */
const NATIVE_TOLERANCE = 1e-5;
/**
 * Against the float64 reference of the unquantized fixture model (tests/fixtures/expected), for
 * the scores of one round: compute_score, and iterative inference over at most 20 passages.
 * Twice the measured max |diff| over both fixture models' cases, rounded up: q8 4.6e-2, q4
 * (block 8) 4.3e-1. The fixtures' random weights in hidden sizes of 16 and 24 are far more
 * sensitive to 4-bit weights than a trained model; the check that the browser decodes the
 * bundle right is the one against the native CLI. Longer iterative lists are checked against
 * the native CLI only: their scores count rounds, so a quantization error that moves a passage
 * across a round's cut changes its score by about 1.
 */
const REFERENCE_TOLERANCE = { q8: 0.1, q4: 0.9 };
/** The reference's iterative inference scores one round of this many passages. */
const ROUND = 20;
// SwiftShader is slow, and a load's first call compiles its shaders (~25 s): one case per
// bundle on WebGPU, a batch of lists of 1, 20, 4 and 7 passages (padding within the batch).
const WEBGPU_CASES = ['mixed_batch_1_20_4_7'];

/** The safetensors dtypes stored in the bundle `name`'s weight shards (from their headers). */
function storedTypes(name) {
  const dir = join(here, '.bundles', name);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const types = new Set();
  for (const f of manifest.files.filter((file) => file.tensors)) {
    const { header } = safetensorsHeader(readFileSync(join(dir, f.path)));
    for (const [key, info] of Object.entries(header)) if (key !== '__metadata__') types.add(info.dtype);
  }
  return types;
}

let server;
let context;
/** `${model}-${dtype}` -> {name: the bundle's directory name, path: under the server's root}. */
const bundles = new Map();

before(async () => {
  for (const model of MODELS) {
    for (const dtype of VARIANTS) {
      const converted = quantizedBundle(model, dtype);
      bundles.set(`${model}-${dtype}`, converted);
      // Int8 weights in both; 4-bit ones (U8, two per byte) in q4 bundles, beside int8 ones
      // (the head and the word table), so that a q4 bundle exercises both decoders.
      const types = [...storedTypes(converted.name)].sort().join(' ');
      assert.equal(types, dtype === 'q4' ? 'F16 I8 U8' : 'F16 I8', `${converted.name} stores ${types}`);
    }
  }
  server = await serve();
  context = await launch();
});

after(async () => {
  await context?.close();
  server?.close();
});

/**
 * Checks every case of a run against the native CLI on the bundle `bundleName` and against the
 * reference; returns the worst differences, for the test's diagnostic.
 * @param {string} label
 * @param {string} bundleName
 * @param {'q8' | 'q4'} dtype
 * @param {{ name: string, case: any, got: any, want: any }[]} out
 */
function compare(label, bundleName, dtype, out) {
  let vsReference = 0;
  let vsNative = 0;
  for (const c of out) {
    const native = maxAbsDiff(c.got, nativeScores(bundleName, c.case));
    assert.ok(native <= NATIVE_TOLERANCE, `${label} ${c.name}: max |diff| vs native CLI ${native}`);
    vsNative = Math.max(vsNative, native);
    if (c.case.list && c.case.list.length - 1 > ROUND) continue;
    const diff = maxAbsDiff(c.got, c.want);
    assert.ok(diff <= REFERENCE_TOLERANCE[dtype], `${label} ${c.name}: max |diff| vs reference ${diff}`);
    vsReference = Math.max(vsReference, diff);
  }
  return `max |diff| vs native CLI ${vsNative.toExponential(2)}, vs float64 reference ${vsReference.toExponential(2)}`;
}

for (const model of MODELS) {
  for (const dtype of VARIANTS) {
    test(`${model} ${dtype}: CPU backend scores equal the native CLI's on the bundle, compute_score and iterative`, async (t) => {
      const { name, path } = bundles.get(`${model}-${dtype}`);
      const page = await openTestPage(context, server.url);
      const run = await runCases(page, `${server.url}${path}`, model, 'cpu');
      assert.equal(run.device, 'cpu');
      assert.equal(run.storedDtype, dtype);
      assert.ok(run.out.length >= 20, `${run.out.length} cases`);
      t.diagnostic(`${model} ${dtype} wasm CPU: ${compare(`${model} ${dtype} cpu`, name, dtype, run.out)}`);
      await page.close();
    });
  }
}

for (const dtype of VARIANTS) {
  test(`zh-tiny ${dtype}: WebGPU scores equal the native CLI's on the bundle`, async (t) => {
    const model = 'zh-tiny';
    const { name, path } = bundles.get(`${model}-${dtype}`);
    const page = await openTestPage(context, server.url);
    const hasAdapter = await page.evaluate(async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter()));
    if (!hasAdapter) {
      t.skip('no WebGPU adapter in this Chromium');
      return;
    }
    const run = await runCases(page, `${server.url}${path}`, model, 'webgpu', { cases: WEBGPU_CASES });
    assert.equal(run.device, 'webgpu');
    assert.equal(run.storedDtype, dtype);
    assert.equal(run.out.length, WEBGPU_CASES.length);
    t.diagnostic(`${model} ${dtype} WebGPU: ${compare(`${model} ${dtype} webgpu`, name, dtype, run.out)}`);
    await page.close();
  });
}
