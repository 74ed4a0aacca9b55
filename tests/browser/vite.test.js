// A bundler user: a tiny Vite 7 app imports the packed package (npm pack of pkg/), builds, and
// scores in Chromium (the worker and the .wasm resolved by Vite). Served once plainly (one CPU
// thread) and once cross-origin isolated with the package's threads/ copied to the static files
// and passed as threadsUrl (the threaded build).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import { bundles, here, launch, root, serve } from './harness.js';

let app;
let server;
let isolated;
let context;

before(async () => {
  bundles();
  app = mkdtempSync(join(tmpdir(), 'lcr-vite-'));
  // npm pack: exactly the files a registry user gets.
  const tgz = execFileSync('npm', ['pack', join(root, 'pkg'), '--pack-destination', app, '--silent'], { encoding: 'utf8' }).trim().split('\n').pop();
  const dest = join(app, 'node_modules', 'listconranker');
  mkdirSync(dest, { recursive: true });
  execFileSync('tar', ['xzf', join(app, tgz), '-C', dest, '--strip-components=1']);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(join(app, 'index.html'), '<!doctype html><html><head><meta charset="utf-8"></head><body><pre id="out">…</pre><script type="module" src="/main.js"></script></body></html>');
  writeFileSync(join(app, 'main.js'), `
import { ListConRanker } from 'listconranker';
const out = document.getElementById('out');
try {
  const threads = self.crossOriginIsolated ? { threads: 2, threadsUrl: '/lcr-threads/' } : {};
  const ranker = await ListConRanker.load('./model/', { device: 'cpu', ...threads });
  const scores = await ranker.computeScore([['皮蛋是寒性的食物吗', '皮蛋性凉', '咖啡因']]);
  window.result = { device: ranker.device, threads: ranker.threads, threadsNote: ranker.threadsNote, scores };
  out.textContent = JSON.stringify(window.result);
} catch (e) {
  window.result = { error: e.code + ': ' + e.message };
  out.textContent = window.result.error;
}
`);
  await build({ root: app, logLevel: 'warn', build: { outDir: join(app, 'dist'), target: 'es2022' } });
  cpSync(join(here, '.bundles', 'zh-tiny'), join(app, 'dist', 'model'), { recursive: true });
  cpSync(join(dest, 'threads'), join(app, 'dist', 'lcr-threads'), { recursive: true });
  server = await serve(join(app, 'dist'));
  isolated = await serve(join(app, 'dist'), { isolated: true });
  context = await launch();
});

after(async () => {
  await context?.close();
  server?.close();
  isolated?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

async function result(url) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.result, null, { timeout: 60000 });
  const r = await page.evaluate(() => window.result);
  await page.close();
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.device, 'cpu');
  assert.equal(r.scores[0].length, 2);
  for (const s of r.scores[0]) assert.ok(s > 0 && s < 1);
  return r;
}

test('a Vite app importing the packed package builds and scores in Chromium', async () => {
  const plain = await result(`${server.url}/`);
  assert.equal(plain.threads, 1);
  const threaded = await result(`${isolated.url}/`);
  assert.equal(threaded.threads, 2, `threads: ${threaded.threads} (${threaded.threadsNote})`);
  for (let i = 0; i < 2; i++) {
    assert.ok(Math.abs(plain.scores[0][i] - threaded.scores[0][i]) <= 1e-6, `${plain.scores} vs ${threaded.scores}`);
  }
});
