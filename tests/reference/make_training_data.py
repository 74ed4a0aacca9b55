"""A reranking data set built offline from real text, for training and testing a ListConRanker:
an inverse-cloze task over the Python standard library's docstrings (docstring_lists.corpus()).

    python tests/reference/make_training_data.py --out DIR [--seed 7] [--negatives 19]

Writes DIR/train.jsonl, DIR/valid.jsonl and DIR/test.jsonl in the C-MTEB reranking format
(`{"query", "positive": [...], "negative": [...]}`, what `listconranker train` and `eval` read)
and DIR/stats.json.

- Documents: every docstring of the corpus whose first line is a sentence of at least 25
  characters and whose rest is at least 60 characters.
- Query: the docstring's first line (its summary sentence). Positive: the rest of the docstring,
  the summary removed, so that the query does not occur in its passage (inverse cloze).
- Negatives: the passages of other documents of the same split, half the BM25-hardest for the
  query (Okapi BM25, k1 1.2, b 0.75, over the split's passages), half drawn at random.
- Split by module (70 / 15 / 15 % of the modules, drawn from the seed): no module, and so no
  near-duplicate docstring of one, is in two splits.

Deterministic for one Python version (the docstrings are the interpreter's own).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docstring_lists  # noqa: E402

MIN_QUERY_CHARS = 25
MIN_PASSAGE_CHARS = 60
TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class Bm25:
    """Okapi BM25 over a fixed list of passages."""

    def __init__(self, passages: list[str], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.docs = [Counter(tokens(p)) for p in passages]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df = Counter(t for d in self.docs for t in d)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def score(self, query: str, i: int) -> float:
        doc, length = self.docs[i], self.lengths[i]
        total = 0.0
        for t in tokens(query):
            f = doc.get(t, 0)
            if f:
                total += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
        return total

    def scores(self, query: str) -> list[float]:
        return [self.score(query, i) for i in range(len(self.docs))]


def documents() -> list[dict]:
    docs = []
    for e in docstring_lists.corpus():
        first, _, rest = e["doc"].partition("\n")
        first, rest = first.strip(), rest.strip()
        if len(first) >= MIN_QUERY_CHARS and len(rest) >= MIN_PASSAGE_CHARS:
            docs.append({"module": e["module"], "query": first, "passage": rest})
    return docs


def split_rows(docs: list[dict], rng: random.Random, negatives: int) -> list[dict]:
    passages = [d["passage"] for d in docs]
    bm25 = Bm25(passages)
    rows = []
    for i, d in enumerate(docs):
        scores = bm25.scores(d["query"])
        order = sorted((j for j in range(len(docs)) if passages[j] != d["passage"]), key=lambda j: -scores[j])
        hard = order[: negatives // 2]
        rest = [j for j in order[negatives // 2 :]]
        easy = rng.sample(rest, min(len(rest), negatives - len(hard)))
        rows.append({"query": d["query"], "positive": [d["passage"]], "negative": [passages[j] for j in hard + easy]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--negatives", type=int, default=19)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    docs = documents()
    modules = sorted({d["module"] for d in docs})
    rng.shuffle(modules)
    n = len(modules)
    cut1, cut2 = round(0.70 * n), round(0.85 * n)
    split_of = {m: ("train" if i < cut1 else "valid" if i < cut2 else "test") for i, m in enumerate(modules)}
    args.out.mkdir(parents=True, exist_ok=True)
    stats = {"python": sys.version.split()[0], "seed": args.seed, "negatives": args.negatives}
    for split in ["train", "valid", "test"]:
        part = [d for d in docs if split_of[d["module"]] == split]
        rows = split_rows(part, random.Random(f"{args.seed}-{split}"), args.negatives)
        with open(args.out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        stats[split] = {"queries": len(rows), "modules": sum(1 for m in modules if split_of[m] == split)}
        print(f"{split}: {len(rows)} queries from {stats[split]['modules']} modules", file=sys.stderr)
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")


if __name__ == "__main__":
    main()
