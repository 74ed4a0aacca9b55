// Bundle delivery in Chromium: sha256 checks, the IndexedDB cache (second load without shard
// requests, offline, resume after a broken transfer, old versions replaced), and faults served
// on purpose by a small Node server (a connection dropped mid-shard, a flipped byte, a quota too
// small to hold the bundle), and quantized bundles whose files verify but do not make a model.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundles, here, launch, openTestPage, quantizedBundle } from './harness.js';
import { dropTensor, faultServer } from './faults.js';

let server;
let context;
let page;
let url;
const BUNDLE = '/tests/browser/.bundles/zh-tiny/';
const LIST = [['皮蛋是寒性的食物吗', '皮蛋性凉', '咖啡因', '营养']];

before(async () => {
  bundles();
  server = await faultServer();
  context = await launch();
  page = await openTestPage(context, server.url);
  url = `${server.url}${BUNDLE}`;
});

after(async () => {
  await context?.close();
  await server?.close();
});

beforeEach(async () => {
  server.reset();
  await page.evaluate(() => window.lcr.ListConRanker.clearCache());
});

/** Loads `u` in the page: {ok, code, message, phases, fromCache, cached, persisted, storedDtype,
 *  downloaded, total, ms, scores}. */
function load(u, options = {}) {
  return page.evaluate(async ({ u, options }) => {
    const phases = [];
    const started = performance.now();
    try {
      const ranker = await window.lcr.ListConRanker.load(u, {
        device: 'cpu',
        ...options,
        onProgress: (e) => phases.push(`${e.phase}:${e.file}`),
      });
      const scores = await ranker.computeScore(window.LIST);
      const out = {
        ok: true, phases, scores, fromCache: ranker.fromCache, cached: ranker.cached,
        persisted: ranker.persisted, storedDtype: ranker.storedDtype,
        downloaded: ranker.downloadedBytes, total: ranker.totalBytes, ms: performance.now() - started,
      };
      await ranker.dispose();
      return out;
    } catch (e) {
      return { ok: false, code: e.code, message: e.message, phases };
    }
  }, { u, options });
}

/** The IndexedDB records in the page: {versions: [key], shards: [key]}. */
function records() {
  return page.evaluate(() => new Promise((ok, fail) => {
    const open = indexedDB.open('listconranker-bundles');
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(['versions', 'shards'], 'readonly');
      const v = tx.objectStore('versions').getAllKeys();
      const s = tx.objectStore('shards').getAllKeys();
      tx.oncomplete = () => {
        db.close();
        ok({ versions: v.result, shards: s.result });
      };
    };
  }));
}

const shardRequests = () => server.requests.filter((p) => p.startsWith(BUNDLE) && !p.endsWith('manifest.json'));

test('first load downloads and verifies, the second reads only from IndexedDB, also offline', async () => {
  await page.evaluate((list) => { window.LIST = list; }, LIST);
  assert.equal(await page.evaluate((u) => window.lcr.ListConRanker.isCached(u), url), false);
  const first = await load(url);
  assert.ok(first.ok, first.message);
  assert.equal(first.fromCache, false);
  assert.equal(first.downloaded, first.total);
  assert.equal(first.cached, true);
  assert.equal(first.storedDtype, 'f32', 'the fixture bundle is converted in f32');
  // Cached: the browser says whether its storage is persistent (navigator.storage.persisted()).
  assert.equal(typeof first.persisted, 'boolean', `persisted: ${first.persisted}`);
  for (const phase of ['download:embeddings.safetensors', 'verify:embeddings.safetensors', 'upload:embeddings.safetensors']) {
    assert.ok(first.phases.includes(phase), `${phase} in ${first.phases.join(' ')}`);
  }
  assert.equal(shardRequests().length, 4);
  assert.equal(await page.evaluate((u) => window.lcr.ListConRanker.isCached(u), url), true);
  assert.equal(await page.evaluate((u) => window.lcr.ListConRanker.isCached(`${u}manifest.json`), url), true);

  server.reset();
  const second = await load(url);
  assert.ok(second.ok, second.message);
  assert.equal(second.fromCache, true);
  assert.equal(second.downloaded, 0);
  assert.deepEqual(shardRequests(), [], 'no shard is requested the second time');
  assert.ok(second.phases.includes('cache-read:head.safetensors'));
  assert.ok(!second.phases.some((p) => p.startsWith('download:')));
  assert.deepEqual(second.scores, first.scores);

  // Offline: the manifest cannot be fetched either; the cached version is used.
  server.reset();
  server.offline = '/tests/browser/.bundles/';
  const offline = await load(url);
  assert.ok(offline.ok, offline.message);
  assert.deepEqual(offline.scores, first.scores);
  // A bundle never loaded, offline: MODEL_FETCH_FAILED.
  const never = await load(`${server.url}/tests/browser/.bundles/en-3layer/`);
  assert.equal(never.code, 'MODEL_FETCH_FAILED');
  server.offline = false;
});

test('a connection dropped mid-shard fails the load; the next load resumes from the stored shards', async () => {
  await page.evaluate((list) => { window.LIST = list; }, LIST);
  server.faults.set(`${BUNDLE}embeddings.safetensors`, { drop: 1 });
  const broken = await load(url);
  assert.equal(broken.ok, false);
  assert.equal(broken.code, 'MODEL_FETCH_FAILED', broken.message);
  assert.match(broken.message, /embeddings\.safetensors/);
  assert.equal(await page.evaluate((u) => window.lcr.ListConRanker.isCached(u), url), false, 'an interrupted download is not complete');
  const partial = await records();
  assert.deepEqual(partial.versions, []);
  assert.equal(partial.shards.length, 1, `only tokenizer.json is stored: ${partial.shards}`);

  server.reset();
  const resumed = await load(url);
  assert.ok(resumed.ok, resumed.message);
  assert.ok(resumed.phases.includes('cache-read:tokenizer.json'));
  assert.deepEqual(shardRequests(), [
    `${BUNDLE}embeddings.safetensors`, `${BUNDLE}encoder-00-01.safetensors`, `${BUNDLE}head.safetensors`,
  ]);
  assert.equal(resumed.downloaded, resumed.total - readFileSync(join(here, '.bundles/zh-tiny/tokenizer.json')).length);
  assert.equal(await page.evaluate((u) => window.lcr.ListConRanker.isCached(u), url), true);
});

test('a flipped byte is fetched again once, then fails with MODEL_INVALID', async () => {
  await page.evaluate((list) => { window.LIST = list; }, LIST);
  const head = `${BUNDLE}head.safetensors`;
  server.faults.set(head, { flip: 1 });
  const healed = await load(url);
  assert.ok(healed.ok, healed.message);
  assert.equal(shardRequests().filter((p) => p === head).length, 2);

  await page.evaluate(() => window.lcr.ListConRanker.clearCache());
  server.reset();
  server.faults.set(head, { flip: Infinity });
  const r = await load(url);
  assert.equal(r.ok, false);
  assert.equal(r.code, 'MODEL_INVALID');
  assert.match(r.message, /head\.safetensors: sha256 differs/);
  assert.equal(shardRequests().filter((p) => p === head).length, 2);
  assert.equal(await page.evaluate((u) => window.lcr.ListConRanker.isCached(u), url), false);
  assert.ok(!(await records()).shards.some((k) => k.endsWith('/head.safetensors')));
});

test('a storage quota too small gives QUOTA_EXCEEDED and writes nothing; best-effort loads uncached', async () => {
  await page.evaluate((list) => { window.LIST = list; }, LIST);
  // Chromium's CDP quota override does not reach navigator.storage.estimate(): the server patches it.
  server.quota = 100_000;
  {
    const r = await load(url);
    assert.equal(r.ok, false);
    assert.equal(r.code, 'QUOTA_EXCEEDED', r.message);
    assert.deepEqual(await records(), { versions: [], shards: [] });
    assert.deepEqual(shardRequests(), [], 'nothing is downloaded either');
    const best = await load(url, { cache: 'best-effort' });
    assert.ok(best.ok, best.message);
    assert.equal(best.cached, false);
    assert.equal(best.persisted, null, 'not cached: nothing to be persistent');
    assert.deepEqual(await records(), { versions: [], shards: [] });
  }
});

test('a new version of the bundle replaces the old one only once it is complete', async () => {
  await page.evaluate((list) => { window.LIST = list; }, LIST);
  const dir = join(here, '.bundles', 'cache-versions');
  cpSync(join(here, '.bundles', 'zh-tiny'), dir, { recursive: true });
  const u = `${server.url}/tests/browser/.bundles/cache-versions/`;
  const manifest = readFileSync(join(dir, 'manifest.json'), 'utf8');
  writeFileSync(join(dir, 'manifest.json'), manifest);
  assert.ok((await load(u)).ok);
  const v1 = await records();
  assert.equal(v1.versions.length, 1);
  // Version 2 (another manifest hash); its download breaks: version 1 stays complete.
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(JSON.parse(manifest)));
  server.faults.set('/tests/browser/.bundles/cache-versions/head.safetensors', { drop: 1 });
  assert.equal((await load(u)).code, 'MODEL_FETCH_FAILED');
  assert.deepEqual((await records()).versions, v1.versions);
  server.reset();
  const v2 = await load(u);
  assert.ok(v2.ok, v2.message);
  const after = await records();
  assert.equal(after.versions.length, 1);
  assert.notDeepEqual(after.versions, v1.versions);
  assert.equal(after.shards.length, 4, 'the old version\'s shards are gone');
  await page.evaluate((u) => window.lcr.ListConRanker.clearCache(u), u);
  assert.deepEqual(await records(), { versions: [], shards: [] });
});

test('a quantized bundle without a scale tensor, or of an unknown scheme, fails with MODEL_INVALID and caches nothing', async () => {
  await page.evaluate((list) => { window.LIST = list; }, LIST);
  const source = join(here, '.bundles', quantizedBundle('zh-tiny', 'q4').name);
  const good = await load(`${server.url}/tests/browser/.bundles/${quantizedBundle('zh-tiny', 'q4').name}/`);
  assert.ok(good.ok, good.message);
  assert.equal(good.storedDtype, 'q4');
  await page.evaluate(() => window.lcr.ListConRanker.clearCache());

  // The scale of a 4-bit weight is gone from its shard; the manifest agrees (sizes, sha256 and
  // tensor lists all verify), so only decoding the shard finds it missing. The files before it
  // were verified and stored by then: they go too.
  const noScale = join(here, '.bundles', 'broken-q4-scale');
  cpSync(source, noScale, { recursive: true });
  const scale = 'bert.encoder.layer.1.attention.self.query.weight.scale';
  dropTensor(noScale, 'encoder-00-01.safetensors', scale);
  const missing = await load(`${server.url}/tests/browser/.bundles/broken-q4-scale/`);
  assert.equal(missing.ok, false);
  assert.equal(missing.code, 'MODEL_INVALID', missing.message);
  assert.match(missing.message, /encoder-00-01\.safetensors/);
  assert.ok(missing.message.includes(`\`${scale}\``), missing.message);
  assert.ok(missing.phases.includes('download:encoder-00-01.safetensors'), missing.phases.join(' '));
  assert.deepEqual(await records(), { versions: [], shards: [] });

  // A scheme this package does not know: refused from the manifest, before any file is fetched.
  const unknown = join(here, '.bundles', 'broken-q4-scheme');
  cpSync(source, unknown, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(unknown, 'manifest.json'), 'utf8'));
  manifest.quantization.scheme = 'q3';
  writeFileSync(join(unknown, 'manifest.json'), JSON.stringify(manifest));
  server.reset();
  const scheme = await load(`${server.url}/tests/browser/.bundles/broken-q4-scheme/`);
  assert.equal(scheme.ok, false);
  assert.equal(scheme.code, 'MODEL_INVALID', scheme.message);
  assert.match(scheme.message, /manifest\.json.*scheme `q3`/);
  assert.deepEqual(server.requests.filter((p) => p.startsWith('/tests/browser/.bundles/broken-q4-scheme/')),
    ['/tests/browser/.bundles/broken-q4-scheme/manifest.json']);
  assert.deepEqual(await records(), { versions: [], shards: [] });
});
