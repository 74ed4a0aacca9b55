// Measures the browser build in headless Chromium (not a test): time from page load to the
// first score, and compute_score throughput (texts/s) on the CPU (wasm) backend and on WebGPU,
// for a workload shaped like `listconranker bench` (8 lists x 20 passages, Chinese text,
// queries ~10-30 and passages ~60-250 characters, seeded). Prints JSON.
//   node tests/browser/bench.mjs [model] [--devices cpu,webgpu] [--repeat 3]
import { bundles, launch, serve } from './harness.js';

const args = process.argv.slice(2);
const model = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a) && !a.includes(',')) || 'zh-tiny';
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const devices = opt('devices', 'cpu,webgpu').split(',');
const repeat = Number(opt('repeat', '3'));
const lists = Number(opt('lists', '8'));
const passages = Number(opt('passages', '20'));

const base = bundles();
const server = await serve();
const context = await launch();
const results = { model, lists, passages, repeat, chromium: context.browser()?.version() ?? null, devices: {} };
try {
  for (const device of devices) {
    const page = await context.newPage();
    const started = Date.now();
    await page.goto(`${server.url}/tests/browser/page.html`);
    await page.waitForFunction(() => window.lcr !== undefined);
    const r = await page.evaluate(async ({ url, device, lists, passages, repeat }) => {
      const t0 = performance.timeOrigin; // navigation start
      const ranker = await window.lcr.ListConRanker.load(url, { device });
      const loaded = performance.now();
      await ranker.computeScore([['皮蛋是寒性的食物吗', '皮蛋性凉,体虚者少吃。', '咖啡因']]);
      const firstScore = performance.now();
      // SplitMix-like seeded generator of Chinese text.
      let s = 42n;
      const next = () => {
        s = (s + 0x9E3779B97F4A7C15n) & 0xFFFFFFFFFFFFFFFFn;
        let z = s;
        z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & 0xFFFFFFFFFFFFFFFFn;
        z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & 0xFFFFFFFFFFFFFFFFn;
        return Number((z ^ (z >> 31n)) % 1000000n) / 1000000;
      };
      const chars = '的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月';
      const text = (min, max) => Array.from({ length: min + Math.floor(next() * (max - min)) }, () => chars[Math.floor(next() * chars.length)]).join('');
      const batch = Array.from({ length: lists }, () => [text(10, 30), ...Array.from({ length: passages }, () => text(60, 250))]);
      await ranker.computeScore(batch); // warm-up
      const times = [];
      for (let i = 0; i < repeat; i++) {
        const a = performance.now();
        await ranker.computeScore(batch);
        times.push(performance.now() - a);
      }
      const texts = lists * (passages + 1);
      const mean = times.reduce((x, y) => x + y, 0) / times.length;
      const out = {
        device: ranker.device, note: ranker.deviceNote, adapter: ranker.adapter,
        load_ms: ranker.loadMs, page_to_model_ms: loaded, page_to_first_score_ms: firstScore,
        batch_ms: times, texts_per_s: texts / (mean / 1000),
      };
      await ranker.dispose();
      return out;
    }, { url: `${server.url}${base}/${model}/`, device, lists, passages, repeat });
    r.wall_s = (Date.now() - started) / 1000;
    results.devices[device] = r;
    await page.close();
  }
} finally {
  await context.close();
  server.close();
}
console.log(JSON.stringify(results, null, 2));
