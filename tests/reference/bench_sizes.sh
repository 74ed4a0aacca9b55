#!/usr/bin/env bash
# listconranker against the PyTorch reference at three model sizes, on this machine, back to
# back: `listconranker bench --reference` for compute_score (20-passage lists) and for
# iterative inference (one list of 100 passages), CPU, f32.
#
#   bash tests/reference/bench_sizes.sh [OUT_DIR]        (default tests/.synthetic/bench-sizes)
#
# Sizes (models written under tests/.synthetic once and reused):
#   minilm  the real all-MiniLM-L6-v2 encoder (384 x 6 layers) + a seeded list head
#           (tests/reference/make_minilm_ranker.py)
#   base    a BERT-base-width encoder (768 wide, 6 layers, 16 heads, FFN 3072) under the
#           release's list head (D 1792, F 2048, 2 layers), random (make_synthetic.py --preset base6)
#   full    the released model's sizes, 401 M random parameters (make_synthetic.py --preset full;
#           the one tests/run.sh makes is reused when present)
# LCR_BENCH_SIZES picks some ("minilm base"); LCR_BENCH_LISTS sets the compute_score lists per
# size (default: 8 minilm, 4 base, 2 full). Prints one Markdown table; every run's JSON is kept
# in OUT_DIR. The full size takes ~20 minutes on a 2-core machine (most of it the reference).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/listconranker-target}"
venv="$(bash tests/reference/setup.sh | tail -n 1)"
python="$venv/bin/python"
out="${1:-tests/.synthetic/bench-sizes}"
mkdir -p "$out" tests/.synthetic
cargo build --release -q --bin listconranker
bin="$CARGO_TARGET_DIR/release/listconranker"

model_for() {
    case "$1" in
        minilm)
            local dir=tests/.synthetic/minilm-ranker
            [ -f "$dir/list_transformer.pt" ] || "$python" tests/reference/make_minilm_ranker.py --out "$dir" >&2
            echo "$dir" ;;
        base)
            local dir=tests/.synthetic/bench-base6
            [ -f "$dir/model.safetensors" ] || "$python" tests/reference/make_synthetic.py --preset base6 --out "$dir" >&2
            echo "$dir" ;;
        full)
            local made
            made="$(ls -d tests/.synthetic/full-* 2>/dev/null | grep -v '\.json$' | head -n 1 || true)"
            if [ -n "$made" ] && [ -f "$made/model.safetensors" ]; then
                echo "$made"
            else
                local dir=tests/.synthetic/bench-full
                [ -f "$dir/model.safetensors" ] || "$python" tests/reference/make_synthetic.py --preset full --out "$dir" >&2
                echo "$dir"
            fi ;;
        *) echo "unknown size $1" >&2; exit 2 ;;
    esac
}

default_lists() {
    case "$1" in minilm) echo 8 ;; base) echo 4 ;; full) echo 2 ;; esac
}

rows=()
for size in ${LCR_BENCH_SIZES:-minilm base full}; do
    model="$(model_for "$size")"
    lists="${LCR_BENCH_LISTS:-$(default_lists "$size")}"
    echo "== $size ($model): compute_score, $lists lists x 20 passages" >&2
    "$bin" bench --model "$model" --lists "$lists" --passages 20 --repeat 2 \
        --reference "$python" --json "$out/$size-compute.json" >&2
    echo "== $size: iterative inference, 1 list x 100 passages" >&2
    "$bin" bench --model "$model" --lists 1 --passages 100 --iterative --warmup 0 --repeat 1 \
        --reference "$python" --json "$out/$size-iterative.json" >&2
    for mode in compute iterative; do
        rows+=("$("$python" - "$out/$size-$mode.json" "$size" "$mode" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ours, ref = r["listconranker"], r["reference"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {ours['texts_per_s']:.2f} texts/s | "
      f"{ref['texts_per_s']:.2f} texts/s | {r['speedup']:.2f}x |")
EOF
)")
    done
done
echo "| size | workload | listconranker | PyTorch | ratio |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
