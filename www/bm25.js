// First-stage retrieval: BM25 over words (English, lower-cased) and character unigrams and
// bigrams (Chinese), the usual cheap way to index Chinese without a word segmenter.

const HAN = /\p{Script=Han}/u;

export function terms(text) {
  const out = [];
  for (const run of text.toLowerCase().match(/\p{Script=Han}+|[\p{L}\p{N}]+/gu) || []) {
    if (HAN.test(run[0])) {
      const chars = [...run];
      for (let i = 0; i < chars.length; i++) {
        out.push(chars[i]);
        if (i + 1 < chars.length) out.push(chars[i] + chars[i + 1]);
      }
    } else if (run.length > 1 || /\d/.test(run)) {
      out.push(run);
    }
  }
  return out;
}

export class BM25 {
  constructor(docs, { k1 = 1.2, b = 0.75 } = {}) {
    this.k1 = k1;
    this.b = b;
    this.docs = docs.map((text) => {
      const tf = new Map();
      const ts = terms(text);
      for (const t of ts) tf.set(t, (tf.get(t) || 0) + 1);
      return { tf, length: ts.length };
    });
    this.avgLength = this.docs.reduce((s, d) => s + d.length, 0) / Math.max(1, this.docs.length);
    this.df = new Map();
    for (const d of this.docs) for (const t of d.tf.keys()) this.df.set(t, (this.df.get(t) || 0) + 1);
  }

  idf(term) {
    const n = this.docs.length;
    const df = this.df.get(term) || 0;
    return Math.log(1 + (n - df + 0.5) / (df + 0.5));
  }

  /** The best `k` documents for `query`: [{index, score}], score > 0 only. */
  search(query, k) {
    const qterms = [...new Set(terms(query))];
    const scored = [];
    this.docs.forEach((d, index) => {
      let score = 0;
      for (const t of qterms) {
        const f = d.tf.get(t);
        if (!f) continue;
        score += this.idf(t) * (f * (this.k1 + 1)) / (f + this.k1 * (1 - this.b + this.b * d.length / this.avgLength));
      }
      if (score > 0) scored.push({ index, score });
    });
    scored.sort((a, b) => b.score - a.score || a.index - b.index);
    return scored.slice(0, k);
  }
}
