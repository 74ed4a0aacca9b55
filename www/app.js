import { ListConRanker } from '../pkg/index.js';
import { BM25 } from './bm25.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { ranker: null, corpus: [], bm25: null, firstScoreLogged: false };
const pageStart = performance.now();
window.demo = state; // for tests and curious users

// A main-thread clock: it keeps ticking while the model works in its worker.
let ticks = 0;
setInterval(() => { ticks += 1; $('clock').textContent = `main thread ♥ ${ticks}`; }, 100);

function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

function fmtBytes(n) {
  return n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

async function loadModel() {
  $('search').disabled = true;
  if (state.ranker) {
    await state.ranker.dispose();
    state.ranker = null;
  }
  const modelUrl = $('model').value;
  const device = $('device').value;
  // A listconranker serve URL: 'auto' scores there without hardware WebGPU; 'server' always.
  const server = $('server').value.trim();
  const started = performance.now();
  try {
    let ranker;
    if (device === 'server') {
      if (!server) throw new Error('device "server" needs a server URL (the Server field, or ?server=)');
      setStatus(`Connecting to ${server}…`);
      ranker = await ListConRanker.remote(server);
    } else {
      setStatus(`Loading ${modelUrl} (${device}${server ? `, fallback ${server}` : ''})…`);
      ranker = await ListConRanker.load(modelUrl, {
        device,
        fallback: server || undefined,
        onProgress: ({ phase, loaded, total, file }) => {
          if (phase === 'download' && total) {
            $('progress').value = loaded / total;
            setStatus(`Downloading ${file}: ${fmtBytes(loaded)} of ${fmtBytes(total)}`);
          } else {
            setStatus(`Loading: ${phase}…`);
          }
        },
      });
    }
    state.ranker = ranker;
    $('progress').value = 1;
    const took = ((performance.now() - started) / 1000).toFixed(2);
    const note = ranker.deviceNote ? ` Note: ${ranker.deviceNote}.` : '';
    if (ranker.server) {
      // Scoring remotely: the server's model, device and type (nothing was downloaded here).
      const s = ranker.server;
      state.readyText = `Scoring remotely on the server ${s.url} (model ${s.name}, ${s.device}, ${s.dtype}, ` +
        `listconranker ${s.version}), ready in ${took} s.${note}`;
    } else {
      const where = ranker.adapter ? `, ${ranker.adapter}` : ranker.device === 'cpu' ? `, ${ranker.threads} thread${ranker.threads > 1 ? 's' : ''}` : '';
      // The bundle's stored type when it is not the compute type (an f16, q8 or q4 bundle).
      const stored = ranker.storedDtype !== ranker.dtype ? `, ${ranker.storedDtype} bundle` : '';
      state.readyText = `Model ready on ${ranker.device.toUpperCase()} (${ranker.dtype}${stored}${where})` +
        ` in ${took} s, ${fmtBytes(ranker.totalBytes)}.${note}`;
    }
    setStatus(state.readyText);
    const c = ranker.config;
    const notice = $('notice');
    const trained = modelUrl.includes(TRAINED_MODEL);
    notice.hidden = c.hidden >= 1024 && !trained;
    // The recipe's figures (README, 'The MiniLM recipe'): the page cannot measure them.
    notice.textContent = trained
      ? 'This page runs the small ListConRanker that the project\'s training recipe builds ' +
        '(tests/reference/minilm_recipe.sh): a list head trained on the all-MiniLM-L6-v2 encoder with Python ' +
        'standard-library docstrings. It reads English only (to it the Chinese passages are noise) and ranks ' +
        'documentation-like text best; on its held-out test split it reaches MAP 63.3, against 63.1 ' +
        'for the encoder\'s own cosine similarity and 53.0 for BM25.'
      : ranker.server
      ? `The server runs a tiny test model (hidden size ${c.hidden}, ${c.layers} layers) with random weights: its ` +
        'scores are random-weight scores and the reranked order means nothing. Serve the real checkpoint with ' +
        '`listconranker serve --model DIR`.'
      : `This page is running a tiny test model (hidden size ${c.hidden}, ${c.layers} layers) with random ` +
        'weights: its scores are random-weight scores and the reranked order means nothing. Convert the real ' +
        'checkpoint with `listconranker convert` and open this page with ?model=URL-of-the-bundle.';
    $('search').disabled = false;
  } catch (e) {
    setStatus(`Could not load the model: ${e.code || e.name}: ${e.message}`, true);
  }
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

async function search(query) {
  const t0 = performance.now();
  const hits = state.bm25.search(query, 50);
  const t1 = performance.now();
  const timings = [`BM25: ${hits.length} candidates of ${state.corpus.length} in ${(t1 - t0).toFixed(1)} ms`];
  let ranked = hits.map((h, rank) => ({ ...h, bm25Rank: rank, modelScore: null }));
  if ($('use-model').checked && state.ranker && hits.length > 0) {
    const passages = hits.map((h) => state.corpus[h.index].text);
    const where = state.ranker.server ? `remotely on ${state.ranker.server.url}` : `on ${state.ranker.device}`;
    setStatus(`Reranking ${passages.length} passages ${where}…`);
    const order = await state.ranker.rerank(query, passages, { iterative: true });
    const t2 = performance.now();
    if (!state.firstScoreLogged) {
      state.firstScoreLogged = true;
      state.firstScoreMs = t2 - pageStart;
    }
    ranked = order.map((r) => ({ ...hits[r.index], bm25Rank: r.index, modelScore: r.score }));
    timings.push(`rerank (${state.ranker.device}, iterative): ${(t2 - t1).toFixed(0)} ms`);
    setStatus(`${state.readyText} ${state.ranker.server ? 'Reranked remotely on the server' : `Reranked on ${state.ranker.device.toUpperCase()}`}.`);
  }
  $('timings').textContent = timings.join(' · ');
  $('results').innerHTML = ranked.map((r, rank) => {
    const moved = r.bm25Rank - rank;
    const badge = moved === 0 ? '' : `<span class="moved ${moved < 0 ? 'down' : ''}">${moved > 0 ? '▲' : '▼'}${Math.abs(moved)}</span>`;
    const p = state.corpus[r.index];
    return `<li>${r.modelScore === null ? '' : `<span class="score">${r.modelScore.toFixed(4)}</span> `}` +
      `<span class="bm25">bm25 ${r.score.toFixed(2)}</span> ${badge} <span class="lang">${p.lang}</span> ${escapeHtml(p.text)}</li>`;
  }).join('');
  state.lastResults = ranked;
  return ranked;
}
state.search = search;

// The recipe's trained model (www/serve.sh converts it when it has been built) is the default
// when present; the fixture model with random weights otherwise.
const TRAINED_MODEL = 'models/minilm-docstrings/';

async function defaultModel() {
  try {
    const probe = await fetch(`${TRAINED_MODEL}manifest.json`, { method: 'HEAD' });
    if (probe.ok) return TRAINED_MODEL;
  } catch (_) {
    // No trained model served: the fixture below.
  }
  return 'models/zh-tiny/';
}

async function main() {
  $('model').value = params.get('model') || (await defaultModel());
  if (params.get('device')) $('device').value = params.get('device');
  $('server').value = params.get('server') || '';
  state.corpus = await (await fetch('corpus.json')).json();
  state.bm25 = new BM25(state.corpus.map((p) => p.text));
  $('corpus-size').textContent = `${state.corpus.length} passages in the corpus (www/corpus.json).`;
  $('search-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('search').disabled = true;
    try {
      await search($('query').value);
    } catch (err) {
      setStatus(`Search failed: ${err.code || err.name}: ${err.message}`, true);
    } finally {
      $('search').disabled = !state.ranker;
    }
  });
  $('reload').addEventListener('click', loadModel);
  await loadModel();
  if (params.get('q')) {
    $('query').value = params.get('q');
    $('search-form').requestSubmit();
  }
}
main();
