#!/usr/bin/env bash
# The MiniLM ListConRanker recipe, end to end and offline: a fresh list head (`--init-head`, the
# similarity start) trained (stage one) on the real all-MiniLM-L6-v2 encoder with an
# inverse-cloze data set built from the Python standard library's docstrings, then measured on
# the held-out test split next to BM25, the encoder's cosine similarity and an untrained random
# head. Not part of the tests (minutes of CPU).
#   bash tests/reference/minilm_recipe.sh [WORK_DIR]   (default tests/.synthetic/minilm-recipe)
# Needs the reference venv (tests/reference/setup.sh) and a release build of the CLI. Writes
# WORK_DIR/{data/, minilm-ranker/ (untrained head), trained/ (the result), report.json}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
work="${1:-tests/.synthetic/minilm-recipe}"
venv="${LCR_VENV:-$HOME/.cache/listconranker-venv}"
py="$venv/bin/python"
bin="${LCR_BIN:-${CARGO_TARGET_DIR:-target}/release/listconranker}"
[ -x "$bin" ] || cargo build --release --bin listconranker --manifest-path crate/Cargo.toml
mkdir -p "$work"
seed="${LCR_RECIPE_SEED:-7}"

[ -f "$work/data/train.jsonl" ] || "$py" tests/reference/make_training_data.py --out "$work/data" --seed "$seed"
encoder_dir="$(cd tests/reference && "$py" -c 'from make_minilm_ranker import minilm_dir; print(minilm_dir())')"
[ -f "$work/minilm-ranker/list_transformer.pt" ] || "$py" tests/reference/make_minilm_ranker.py --out "$work/minilm-ranker"

echo "baselines (BM25, cosine) on the test split" >&2
[ -f "$work/baselines.json" ] || "$py" tests/reference/baselines.py --model "$work/minilm-ranker" --data "$work/data/test.jsonl" > "$work/baselines.json"

echo "untrained random head on the test split" >&2
"$bin" eval --model "$work/minilm-ranker" --data "$work/data/test.jsonl" --no-iterative --json "$work/untrained.json" > /dev/null

echo "the similarity start, untrained, on the test split" >&2
"$bin" train --model "$encoder_dir" --init-head --head-init similarity --data "$work/data/train.jsonl" \
    --valid "$work/data/valid.jsonl" --epochs 0 --seed "$seed" --out "$work/start" > /dev/null
"$bin" eval --model "$work/start" --data "$work/data/test.jsonl" --no-iterative --json "$work/start.json" > /dev/null

echo "training (stage one, a fresh head in the similarity start on the plain encoder)" >&2
started=$(date +%s)
/usr/bin/time -v "$bin" train --model "$encoder_dir" --init-head --head-init similarity \
    --data "$work/data/train.jsonl" --valid "$work/data/valid.jsonl" --epochs "${LCR_RECIPE_EPOCHS:-3}" \
    --batch-size "${LCR_RECIPE_BATCH:-16}" --micro-batch 16 --lr "${LCR_RECIPE_LR:-3e-5}" \
    --passages-per-query 20 --seed "$seed" --out "$work/trained" 2> >(tee "$work/train.log" >&2) > /dev/null
seconds=$(( $(date +%s) - started ))
peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/train.log")

echo "trained head on the test split" >&2
"$bin" eval --model "$work/trained" --data "$work/data/test.jsonl" --no-iterative --json "$work/trained.json" > /dev/null

"$py" - "$work" "$seconds" "$peak_kb" <<'PY'
import json, re, sys
work, seconds, peak_kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = open(f"{work}/train.log", encoding="utf-8").read()
valid = {int(e): float(m) for e, m in re.findall(r"epoch (\d+)\b[^\n]*validation MAP ([0-9.]+)", log)}
b = json.load(open(f"{work}/baselines.json"))
def ours(name):
    r = json.load(open(f"{work}/{name}.json"))["results"][0]
    return {"map": r["map"], "mrr_10": r["mrr_10"]}
report = {"test_queries": b["queries"], "bm25": b["bm25"], "cosine": b["cosine"],
          "untrained_head": ours("untrained"), "similarity_start": ours("start"), "trained": ours("trained"),
          "valid_map_by_epoch": valid, "train_seconds": seconds, "train_peak_rss_mb": round(peak_kb / 1024)}
json.dump(report, open(f"{work}/report.json", "w"), indent=2)
print("| ranker (test split) | MAP | MRR@10 |\n|---|---|---|")
for name, key in [("BM25", "bm25"), ("MiniLM cosine", "cosine"), ("ListConRanker head, random, untrained", "untrained_head"), ("ListConRanker head, similarity start, untrained", "similarity_start"), ("ListConRanker head, trained (stage one)", "trained")]:
    print(f"| {name} | {report[key]['map']:.2f} | {report[key]['mrr_10']:.2f} |")
print(f"\nvalidation MAP by epoch (0: the similarity start): {valid}")
print(f"training: {seconds} s, peak RSS {report['train_peak_rss_mb']} MB")
PY
