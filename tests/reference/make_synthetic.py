"""Writes a random ListConRanker checkpoint with the real model's sizes, in the original split
layout, for tests and benchmarks of loading, conversion, memory and speed (never committed).

    VENV=$(bash tests/reference/setup.sh)
    "$VENV/bin/python" tests/reference/make_synthetic.py --out /tmp/listconranker-full [--preset full] \
        [--expected /tmp/listconranker-full.expected.json]

Presets (the encoder reads BERT Chinese vocab, 21,128 tokens, from the cn-clip package):
  full  BERT-large (hidden 1024, 24 layers, 16 heads, intermediate 4096), D 1792, F 2048,
        2 list layers: 401 M parameters, 1.6 GB in f32 (the released model's shapes)
  base  BERT-base (768, 12 layers, 12 heads, 3072), D 1536, F 2048, 2 list layers
  small (256, 4 layers, 4 heads, 1024), D 512, F 1024, 2 list layers
The weights are random (seeded), so scores carry no meaning; shapes, files and key names are
those of the release. `--expected` also records the reference's float64 scores on a short
seeded batch and an iterative list of 24 passages (two rounds), in the fixtures' JSON format.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures  # noqa: E402
import listconranker_ref as ref  # noqa: E402

PRESETS = {
    "full": dict(hidden=1024, layers=24, heads=16, intermediate=4096, D=1792, F=2048, L=2),
    "base": dict(hidden=768, layers=12, heads=12, intermediate=3072, D=1536, F=2048, L=2),
    # A BERT-base-width encoder of 6 layers under the release's list head: the "base" size of
    # the CPU benchmarks (tests/reference/bench_sizes.sh).
    "base6": dict(hidden=768, layers=6, heads=16, intermediate=3072, D=1792, F=2048, L=2),
    "small": dict(hidden=256, layers=4, heads=4, intermediate=1024, D=512, F=1024, L=2),
}


def short_text(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(lo, hi)))


# Common Chinese characters: every one is in the BERT Chinese vocab, so no text is all [UNK].
CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月"


def write_expected(model_dir: Path, path: Path, seed: int) -> None:
    """Float64 reference scores on short seeded inputs (short, so that float64 BERT-large on the
    CPU stays fast): compute_score on two lists, iterative inference over 24 passages."""
    rng = random.Random(seed)
    batch = [
        ["皮蛋是寒性的食物吗", "皮蛋性凉,体虚者少吃。", "咖啡因", "营养价值很高的食物"],
        [short_text(rng, 8, 16)] + [short_text(rng, 20, 60) for _ in range(5)],
    ]
    iterative = [short_text(rng, 8, 16)] + [short_text(rng, 10, 30) for _ in range(24)]
    model = ref.load(str(model_dir), torch.float64)
    out = {
        "model": model_dir.name,
        "dtype": "float64",
        "compute_score": [{"name": "short", "max_length": 512, "batch": batch,
                           "scores": model.compute_score(batch, 512)}],
        "iterative": [{"name": "24-passages", "max_length": 512, "list": iterative,
                       "scores": model.iterative_inference(iterative, 512)}],
    }
    make_fixtures.write_json(path, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--expected", type=Path, help="also write the reference's scores on short inputs here")
    args = ap.parse_args()
    spec = dict(PRESETS[args.preset], vocab="cn-clip", weights="model.safetensors", seed=args.seed)
    started = time.time()
    make_fixtures.build_model(f"synthetic-{args.preset}", spec, args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({args.preset}, {size / 1e6:.0f} MB) in {time.time() - started:.0f} s")
    if args.expected:
        started = time.time()
        write_expected(args.out, args.expected, args.seed)
        print(f"wrote {args.expected} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
