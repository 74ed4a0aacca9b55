// Shared by the browser tests: a static server on 127.0.0.1 (Python's http.server, repo root),
// headless Debian Chromium through playwright-core, and the fixture models as web bundles.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const outDir = process.env.LCR_BROWSER_OUT || join(here, '.out');
export const MODELS = ['zh-tiny', 'en-3layer'];

/** Serves `dir` on 127.0.0.1 at a free port; resolves to {url, close}. `isolated`: with the
 *  COOP/COEP headers of a cross-origin-isolated page. */
export function serve(dir = root, { isolated = false } = {}) {
  return new Promise((ok, fail) => {
    // www/serve.py: http.server plus the COOP/COEP headers.
    const args = isolated
      ? ['-u', join(root, 'www/serve.py'), '--port', '0']
      : ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1'];
    const child = spawn('python3', args, {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    const onData = (chunk) => {
      text += chunk;
      const m = text.match(/port (\d+)/);
      if (m) {
        child.stdout.off('data', onData);
        ok({ url: `http://127.0.0.1:${m[1]}`, close: () => child.kill() });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', () => {}); // request log
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`http.server exited with ${code}: ${text}`)));
  });
}

/** Headless Chromium. `webgpu: false` leaves out `--enable-unsafe-webgpu`: headless Chromium on
 *  Linux then has `navigator.gpu` but no adapter at all (with the flag and no GPU it has
 *  SwiftShader's software fallback adapter). */
export async function launch({ webgpu = true } = {}) {
  const profile = join(outDir, `profile-${process.pid}-${Date.now()}`);
  mkdirSync(profile, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    args: [
      '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
    ],
    viewport: { width: 1100, height: 900 },
  });
  return context;
}

/** The native CLI (built by tests/run.sh). */
export function nativeBin() {
  return process.env.LCR_BIN
    || join(process.env.CARGO_TARGET_DIR || join(process.env.HOME, '.cache/listconranker-target'), 'release/listconranker');
}

/**
 * Starts the native HTTP server (`listconranker serve --port 0`, loopback) on `model` (a checkpoint
 * or bundle directory) with `args` (e.g. `--cors-origin`, `--api-key`); resolves to
 * {url (ending in '/'), close} once its /health answers 200.
 */
export function nativeServer(model, args = []) {
  return new Promise((ok, fail) => {
    const child = spawn(nativeBin(), ['serve', '--model', model, '--port', '0', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let text = '';
    let settled = false;
    const close = () => new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        done();
        return;
      }
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
    const onData = async (chunk) => {
      text += chunk;
      // The address ends where the line goes on: a chunk may end inside it.
      const m = text.match(/listening on (http:\/\/\S+)\s/);
      if (!m || settled) return;
      settled = true;
      child.stderr.off('data', onData);
      child.stderr.on('data', () => {});
      const url = `${m[1]}/`;
      // The model loads in the background: /health is 503 (LOADING) until it is ready.
      const deadline = Date.now() + 120000;
      while (Date.now() < deadline) {
        const status = await fetch(`${url}health`).then((r) => r.status, () => 0);
        if (status === 200) {
          ok({ url, close });
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await close();
      fail(new Error(`the native server at ${url} was not ready within 120 s`));
    };
    child.stderr.on('data', onData);
    child.on('error', fail);
    child.on('exit', (code) => {
      if (!settled) fail(new Error(`listconranker serve exited with ${code}: ${text}`));
    });
  });
}

/**
 * The native CLI's scores for the same bundle: one `score` run per case (`batch` lists, or
 * `list` with --iterative). `model`: a bundle's name under tests/browser/.bundles/, or the
 * absolute path of any model directory. Returns the scores in the shape of the case's expected
 * scores.
 */
export function nativeScores(model, testCase) {
  const iterative = !testCase.batch;
  const lists = iterative ? [testCase.list] : testCase.batch;
  const dir = isAbsolute(model) ? model : join(here, '.bundles', model);
  const args = ['score', '--model', dir, '--max-length', String(testCase.max_length)];
  if (iterative) args.push('--iterative');
  const stdout = execFileSync(nativeBin(), args, {
    input: lists.map((l) => JSON.stringify(l)).join('\n') + '\n',
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const rows = stdout.toString().trim().split('\n').map((line) => JSON.parse(line));
  return iterative ? rows[0] : rows;
}

/** Converts the checkpoint `source` (once) into the bundle tests/browser/.bundles/<name>/,
 *  with extra `convert` arguments; returns its path under the server's root. */
export function bundle(name, source, convertArgs = []) {
  const out = join(here, '.bundles', name);
  if (!existsSync(join(out, 'manifest.json'))) {
    execFileSync(nativeBin(), ['convert', '--model', source, '--out', out, ...convertArgs], { stdio: 'inherit' });
  }
  return `/tests/browser/.bundles/${name}/`;
}

/** `convert`'s arguments for each quantized dtype the tests use. The fixtures' hidden sizes (16,
 *  24, 48) are not multiples of the default block (32), which would store every q4 weight as
 *  q8 and every q8 weight with one scale per row: the bundles use blocks of 8. */
export const QUANTIZED = {
  q8: ['--dtype', 'q8', '--block', '8'],
  q4: ['--dtype', 'q4', '--block', '8'],
};

/** The fixture `model` converted (once) to a quantized bundle: {name, path} (its directory name
 *  under tests/browser/.bundles/, its path under the server's root). */
export function quantizedBundle(model, dtype) {
  const name = `${model}-${dtype}${dtype === 'q4' ? '-block8' : ''}`;
  return { name, path: bundle(name, join(root, 'tests/fixtures/models', model), QUANTIZED[dtype]) };
}

/** The JSON header of a safetensors file's bytes (an 8-byte little-endian length, then JSON):
 *  {name: {dtype, shape, data_offsets}}, with `__metadata__` if present; and where the data
 *  starts. */
export function safetensorsHeader(bytes) {
  const start = 8 + Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, start).toString('utf8')), dataStart: start };
}

/** The fixture models converted to bundles under tests/browser/.bundles/<model>/. */
export function bundles() {
  for (const model of MODELS) bundle(model, join(root, 'tests/fixtures/models', model));
  return '/tests/browser/.bundles';
}

export async function expected(model) {
  const { readFile } = await import('node:fs/promises');
  return JSON.parse(await readFile(join(root, 'tests/fixtures/expected', `${model}.json`), 'utf8'));
}

/** Opens the test page (imports pkg/ and exposes it as window.lcr); logs console errors. */
export async function openTestPage(context, base) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`[console ${m.type()}]`, m.text().slice(0, 300));
  });
  await page.goto(`${base}/tests/browser/page.html`);
  await page.waitForFunction(() => window.lcr !== undefined);
  return page;
}

export function maxAbsDiff(got, want) {
  const a = got.flat();
  const b = want.flat();
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Loads the bundle at `url` in the page with `device` (and `loadOptions`) and runs every case of
 *  `model`'s fixtures: returns {device, note, threads, threadsNote, storedDtype,
 *  out: [{name, case, got, want}]}. */
export async function runCases(page, url, model, device, { iterative = true, cases, loadOptions = {} } = {}) {
  const exp = await expected(model);
  const scoreCases = exp.compute_score.filter((c) => !cases || cases.includes(c.name));
  const iterCases = iterative ? exp.iterative.filter((c) => !cases || cases.includes(c.name)) : [];
  return page.evaluate(async ({ url, device, scoreCases, iterCases, loadOptions }) => {
    const ranker = await window.lcr.ListConRanker.load(url, { ...loadOptions, device });
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
    const result = {
      device: ranker.device, note: ranker.deviceNote, threads: ranker.threads, threadsNote: ranker.threadsNote,
      storedDtype: ranker.storedDtype, out,
    };
    await ranker.dispose();
    return result;
  }, { url, device, scoreCases, iterCases, loadOptions });
}
