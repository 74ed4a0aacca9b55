"""Writes a random ListConRanker checkpoint with the real model's sizes, in the original split
layout, for tests and benchmarks of loading, conversion, memory and speed (never committed).

    VENV=$(bash tests/reference/setup.sh)
    "$VENV/bin/python" tests/reference/make_synthetic.py --out /tmp/listconranker-full [--preset full]

Presets (the encoder reads BERT Chinese vocab, 21,128 tokens, from the cn-clip package):
  full  BERT-large (hidden 1024, 24 layers, 16 heads, intermediate 4096), D 1792, F 2048,
        2 list layers: 401 M parameters, 1.6 GB in f32 (the released model's shapes)
  base  BERT-base (768, 12 layers, 12 heads, 3072), D 1536, F 2048, 2 list layers
  small (256, 4 layers, 4 heads, 1024), D 512, F 1024, 2 list layers
The weights are random (seeded), so scores carry no meaning; shapes, files and key names are
those of the release.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures  # noqa: E402

PRESETS = {
    "full": dict(hidden=1024, layers=24, heads=16, intermediate=4096, D=1792, F=2048, L=2),
    "base": dict(hidden=768, layers=12, heads=12, intermediate=3072, D=1536, F=2048, L=2),
    "small": dict(hidden=256, layers=4, heads=4, intermediate=1024, D=512, F=1024, L=2),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    spec = dict(PRESETS[args.preset], vocab="cn-clip", weights="model.safetensors", seed=args.seed)
    started = time.time()
    make_fixtures.build_model(f"synthetic-{args.preset}", spec, args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({args.preset}, {size / 1e6:.0f} MB) in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
