// A model trained by `listconranker train` scores the same in Chromium (from its web bundle) as
// the native CLI scores its checkpoint and that bundle. The checkpoint against the PyTorch
// reference is crate/tests/train.rs; together: Chromium = CLI = PyTorch for a trained model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { bundle, here, launch, maxAbsDiff, nativeBin, nativeScores, openTestPage, root, runCases, serve } from './harness.js';

/** Browser and CLI run the same f32 weights: measured at most 3.6e-7. */
const TOLERANCE = 1e-5;
const MODEL = 'zh-tiny';
const NAME = 'trained-zh-tiny';
const checkpoint = join(here, '.bundles', `${NAME}-checkpoint`);

let server;
let context;
let path;

before(async () => {
  // Trained afresh on every run (a bundle left from an earlier run would test that run's model).
  rmSync(checkpoint, { recursive: true, force: true });
  rmSync(join(here, '.bundles', NAME), { recursive: true, force: true });
  const data = join(root, 'tests/fixtures/eval/cmteb-mini.jsonl');
  const run = spawnSync(nativeBin(), [
    'train', '--model', join(root, 'tests/fixtures/models', MODEL), '--data', data, '--valid', data,
    '--out', checkpoint, '--epochs', '2', '--batch-size', '4', '--lr', '1e-2', '--passages-per-query', '5',
    '--seed', '5',
  ], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const log = run.stderr;
  // Only an epoch that beats the starting head on validation is written; otherwise the
  // checkpoint would be the untrained model and this test would not test a trained one.
  assert.match(log, /best so far: written/, `no epoch was written:\n${log}`);
  path = bundle(NAME, checkpoint);
  server = await serve();
  context = await launch();
});

after(async () => {
  await context?.close();
  server?.close();
});

test('a trained checkpoint scores the same in Chromium (its bundle) as in the CLI', async (t) => {
  const page = await openTestPage(context, server.url);
  const run = await runCases(page, `${server.url}${path}`, MODEL, 'cpu');
  await page.close();
  assert.equal(run.device, 'cpu');
  assert.ok(run.out.length >= 20, `${run.out.length} cases`);
  let vsBundle = 0;
  let vsCheckpoint = 0;
  let moved = 0;
  for (const c of run.out) {
    const bundleDiff = maxAbsDiff(c.got, nativeScores(NAME, c.case));
    const checkpointDiff = maxAbsDiff(c.got, nativeScores(checkpoint, c.case));
    assert.ok(bundleDiff <= TOLERANCE, `${c.name}: max |diff| vs the CLI on the bundle ${bundleDiff}`);
    assert.ok(checkpointDiff <= TOLERANCE, `${c.name}: max |diff| vs the CLI on the checkpoint ${checkpointDiff}`);
    vsBundle = Math.max(vsBundle, bundleDiff);
    vsCheckpoint = Math.max(vsCheckpoint, checkpointDiff);
    // The fixture's expected scores are the untrained model's.
    moved = Math.max(moved, maxAbsDiff(c.got, c.want));
  }
  assert.ok(moved > 1e-3, `training moved no score (max |diff| from the untrained model ${moved})`);
  t.diagnostic(`max |diff| vs the CLI on the bundle ${vsBundle.toExponential(2)}, on the checkpoint `
    + `${vsCheckpoint.toExponential(2)}; scores moved by training up to ${moved.toExponential(2)}`);
});
