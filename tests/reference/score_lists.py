"""Scores lists of texts with the PyTorch reference, in float64 by default: the expected scores
of golden tests built at test time (e.g. the all-MiniLM-L6-v2 ranker on docstring lists).

    python tests/reference/score_lists.py --model DIR --input lists.jsonl --out scores.json

Input: JSON Lines, one list per line, `[query, passage, ...]`. Output: a JSON array of arrays,
one score per passage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import listconranker_ref as ref  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = ref.load(args.model, getattr(torch, args.dtype))
    lists = [json.loads(line) for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
    with torch.no_grad():
        scores = [model.compute_score([lst], max_length=args.max_length)[0] for lst in lists]
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(scores), encoding="utf-8")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
