"""The baselines a trained ListConRanker is measured against on a C-MTEB-format data file:
BM25 alone and the encoder's cosine similarity (mean-pooled, as the model pools), each ranking
every query's passages; MAP and MRR@10 with MTEB 1.x semantics (what `listconranker eval`
reports), in percent, as JSON on stdout.

    python tests/reference/baselines.py --model DIR --data test.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listconranker_ref as ref  # noqa: E402
import metrics_ref  # noqa: E402
from make_training_data import Bm25  # noqa: E402


def mean_metrics(rows, score_fn) -> dict:
    total = {"ap": 0.0, "mrr_10": 0.0}
    for row in rows:
        passages = row["positive"] + row["negative"]
        relevant = [1] * len(row["positive"]) + [0] * len(row["negative"])
        m = metrics_ref.mteb1(relevant, score_fn(row["query"], passages))
        total["ap"] += m["ap"]
        total["mrr_10"] += m["mrr_10"]
    return {"map": 100 * total["ap"] / len(rows), "mrr_10": 100 * total["mrr_10"] / len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, type=Path)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["positive"] and r["negative"]]
    # BM25's statistics over all of the file's passages, as a search engine indexes its corpus.
    corpus = sorted({p for r in rows for p in r["positive"] + r["negative"]})
    index = {p: i for i, p in enumerate(corpus)}
    bm25 = Bm25(corpus)
    bm25_result = mean_metrics(rows, lambda q, ps: [bm25.score(q, index[p]) for p in ps])
    model = ref.load(args.model, torch.float32)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    def cosine(q, ps):
        feats = model.encode([q] + ps)
        feats = torch.nn.functional.normalize(feats, dim=-1)
        return (feats[1:] @ feats[0]).tolist()

    cosine_result = mean_metrics(rows, cosine)
    json.dump({"queries": len(rows), "bm25": bm25_result, "cosine": cosine_result}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
