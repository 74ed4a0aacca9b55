"""Writes damaged copies of fixture checkpoint files for the loader's error tests.

    VENV=$(bash tests/reference/setup.sh) && "$VENV/bin/python" tests/reference/make_broken_fixtures.py

tests/fixtures/broken/list_transformer_missing_key.pt: zh-tiny's list_transformer.pt without
`linear_score1.bias` (a key the model needs), saved by torch.save like the original.
"""

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests/fixtures/models/zh-tiny/list_transformer.pt"
OUT = ROOT / "tests/fixtures/broken"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    state = torch.load(SOURCE, map_location="cpu", weights_only=True)
    del state["linear_score1.bias"]
    torch.save(state, OUT / "list_transformer_missing_key.pt")


if __name__ == "__main__":
    main()
