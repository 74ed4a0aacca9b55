"""Which tensors' quantization moves the scores: the PyTorch reference with one group of weights
at a time replaced by its dequantized q8 / q4 (or float16) values, the rest float32.

    "$VENV/bin/python" tests/reference/quant_layers.py --model CHECKPOINT --input lists.jsonl \
        [--limit 20] [--block 32] [--groups "all" | "NAME;NAME;..."] [--threads N] [--json OUT]

The quantizers are quantize_ref.py's (bit for bit the bundle writer's), and the reference is
listconranker_ref.py, so the "whole scheme" rows reproduce what `score` gives on the bundles.
Texts are encoded once per variant (every distinct text of the lists, grouped by length);
variants that leave the encoder alone reuse the float32 pooled features. Per row: max / mean
|score - f32 score|, Kendall's tau-b per list (mean, worst), top-1 agreement; and for the
encoder, the pooled features' relative error (mean over texts of |pooled - pooled_f32| /
|pooled_f32|) and the tau of the encoder's own cosine ranking (query vs passages, as a sentence
embedder ranks), which does not depend on the untrained list head.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listconranker_ref as ref  # noqa: E402
import quantize_ref as qr  # noqa: E402
from quant_quality import kendall_tau_b, top_k  # noqa: E402

ENC = r"bert\.encoder\.layer\.\d+\."
GROUPS = {
    # name: (regex over canonical keys, how)
    "word embeddings q8": (r"bert\.embeddings\.word_embeddings\.weight$", "q8"),
    "other tensors f16": (None, "f16-rest"),
    "encoder q/k/v q8": (ENC + r"attention\.self\.(query|key|value)\.weight$", "q8"),
    "encoder attn out q8": (ENC + r"attention\.output\.dense\.weight$", "q8"),
    "encoder FFN in q8": (ENC + r"intermediate\.dense\.weight$", "q8"),
    "encoder FFN out q8": (ENC + r"output\.dense\.weight$", "q8"),
    "encoder q/k/v q4": (ENC + r"attention\.self\.(query|key|value)\.weight$", "q4"),
    "encoder attn out q4": (ENC + r"attention\.output\.dense\.weight$", "q4"),
    "encoder FFN in q4": (ENC + r"intermediate\.dense\.weight$", "q4"),
    "encoder FFN out q4": (ENC + r"output\.dense\.weight$", "q4"),
    "linear_in_embedding q8": (r"linear_in_embedding\.weight$", "q8"),
    "list attention in/out q8": (r"list_transformer\.layers\.\d+\.self_attn\.(in_proj_weight|out_proj\.weight)$", "q8"),
    "list FFN q8": (r"list_transformer\.layers\.\d+\.linear[12]\.weight$", "q8"),
    "score heads q8": (r"linear_score[123]\.weight$", "q8"),
    "score heads f16": (r"linear_score[123]\.weight$", "f16"),
    "whole q8 scheme": (None, "scheme-q8"),
    "whole q4 scheme": (None, "scheme-q4-all"),
    # Candidate policies: the scheme with the tensors the regex matches stored as given.
    "q8 scheme, encoder FFN out f16": (ENC + r"output\.dense\.weight$", "scheme-q8:f16"),
    "q8 scheme, encoder FFN out f16 in layers 0-2": (r"bert\.encoder\.layer\.[0-2]\.output\.dense\.weight$", "scheme-q8:f16"),
    "q4 scheme, encoder FFN q8 (attention q4)": (ENC + r"(intermediate|output)\.dense\.weight$", "scheme-q4-all:q8"),
    "q4 scheme, encoder FFN out q8": (ENC + r"output\.dense\.weight$", "scheme-q4-all:q8"),
    # int8 with one f16 scale per block of 32 inputs, for every tensor the q8 / q4 schemes store
    # as q8 (what the format's q8 became; the same as the whole schemes with --block 32).
    "q8 scheme, int8 in blocks of 32": (r".", "scheme-q8:q8b32"),
    "q4 scheme, its q8 tensors in blocks of 32": (r".", "scheme-q4-all:q8b32"),
}


def per_layer_groups(layers: int) -> dict:
    """One group per encoder layer: its six Linear weights as q4; its FFN output weight as q8."""
    out = {}
    for n in range(layers):
        out[f"encoder layer {n} q4"] = (rf"bert\.encoder\.layer\.{n}\.", "q4")
    for n in range(layers):
        out[f"encoder layer {n} FFN out q8"] = (rf"bert\.encoder\.layer\.{n}\.output\.dense\.weight$", "q8")
    return out


def canonical_params(model: ref.ListConRankerRef) -> dict[str, torch.nn.Parameter]:
    """Canonical bundle key -> the reference model's parameter."""
    out = {}
    for k, p in model.bert.named_parameters():
        out["bert." + k] = p
    for k, p in model.linear_in_embedding.named_parameters():
        out["linear_in_embedding." + k] = p
    for k, p in model.list_transformer.named_parameters():
        if not k.startswith("list_transformer_layer."):
            out[k] = p
    return out


def stored_value(w: np.ndarray, how: str, block: int) -> np.ndarray:
    if how == "f16":
        return w.astype(np.float16).astype(np.float32)
    if how == "q8":
        levels, scales = qr.quantize_q8(w, block)
        return qr.dequantize_q8(levels, scales)
    if how == "q8b32":
        levels, scales = qr.quantize_groups(w, 32, 127)
        return levels.astype(np.float32) * np.repeat(scales.astype(np.float32), 32, axis=1)
    if how == "q4":
        packed, scales = qr.quantize_q4(w, block)
        return qr.dequantize_q4(packed, scales, block)
    assert how == "f32"
    return w


def variant(base: ref.ListConRankerRef, pattern: str | None, how: str, block: int) -> tuple[ref.ListConRankerRef, bool]:
    """A copy of `base` with the group's weights as stored; and whether the encoder changed."""
    model = copy.deepcopy(base)
    params = canonical_params(model)
    grouped = set()
    if pattern is not None:
        grouped = {k for k in params if re.match(pattern, k)}
        assert grouped, pattern
    encoder_changed = False
    with torch.no_grad():
        for key, p in params.items():
            w = p.detach().cpu().numpy().astype(np.float32)
            if how.startswith("scheme-"):
                scheme, _, override = how[len("scheme-"):].partition(":")
                kind = qr.storage(key, w.shape, scheme, block)
                if override == "q8b32":
                    kind = "q8b32" if kind == "q8" and w.shape[1] % 32 == 0 else kind
                elif override and key in grouped:
                    kind = override
            elif how == "f16-rest":
                kind = "f16" if qr.storage(key, w.shape, "q8", block) == "f16" else "f32"
            elif key in grouped and (how == "f16" or qr.storage(key, w.shape, "q8", block) != "f16"):
                # q8 / q4 only where a bundle may quantize (2-D weights); f16 anywhere.
                kind = how
            else:
                kind = "f32"
            if kind == "f32":
                continue
            p.copy_(torch.from_numpy(stored_value(w, kind, block)).to(p.dtype))
            encoder_changed |= key.startswith("bert.")
    return model, encoder_changed


@torch.no_grad()
def encode_all(model: ref.ListConRankerRef, texts: list[str], max_length: int, batch: int = 32) -> dict[str, torch.Tensor]:
    ids = model.tokenize(texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    out = {}
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        longest = max(len(ids[i]) for i in idx)
        input_ids = torch.zeros(len(idx), longest, dtype=torch.long)
        mask = torch.zeros(len(idx), longest, dtype=torch.long)
        for r, i in enumerate(idx):
            input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
            mask[r, : len(ids[i])] = 1
        hidden = model.bert(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1)
        for r, i in enumerate(idx):
            out[texts[i]] = pooled[r]
    return out


@torch.no_grad()
def scores_from_pooled(model: ref.ListConRankerRef, lists: list[list[str]], pooled: dict) -> list[np.ndarray]:
    out = []
    for lst in lists:
        feats = model.linear_in_embedding(torch.stack([pooled[t] for t in lst]))[None]
        logits = model.list_transformer(feats, [len(lst)])
        out.append(torch.sigmoid(logits[0]).double().numpy())
    return out


def cosine_rankings(lists: list[list[str]], pooled: dict) -> list[np.ndarray]:
    out = []
    for lst in lists:
        e = torch.stack([pooled[t] for t in lst]).double()
        e = e / e.norm(dim=1, keepdim=True)
        out.append((e[1:] @ e[0]).numpy())
    return out


def compare(base: list[np.ndarray], other: list[np.ndarray]) -> dict:
    d = np.concatenate([np.abs(b - o) for b, o in zip(base, other)])
    taus = [kendall_tau_b(b, o) for b, o in zip(base, other)]
    top1 = [top_k(b, 1) == top_k(o, 1) for b, o in zip(base, other)]
    return {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()), "tau_mean": float(np.mean(taus)),
            "tau_min": float(np.min(taus)), "top1": float(np.mean(top1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--groups", default="all", help="group names separated by semicolons (default: all)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lines = [json.loads(l) for l in args.input.read_text(encoding="utf-8").splitlines() if l.strip()][: args.limit]
    texts = sorted({t for lst in lines for t in lst})
    base = ref.load(args.model, torch.float32)
    pooled0 = encode_all(base, texts, args.max_length)
    scores0 = scores_from_pooled(base, lines, pooled0)
    cos0 = cosine_rankings(lines, pooled0)
    spread = float(np.median([np.std(s) for s in scores0]))
    groups = {**GROUPS, **per_layer_groups(base.bert.config.num_hidden_layers)}
    names = list(groups) if args.groups == "all" else [g.strip() for g in args.groups.split(";")]
    rows = {}
    print(f"{len(lines)} lists, {sum(len(l) - 1 for l in lines)} passages, {len(texts)} distinct texts; "
          f"f32 score std within a list (median) {spread:.2e}")
    print()
    print("| weights as stored | max abs diff | mean abs diff | tau mean | tau worst | top-1 | pooled rel. error | encoder cosine tau |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        pattern, how = groups[name]
        model, encoder_changed = variant(base, pattern, how, args.block)
        pooled = encode_all(model, texts, args.max_length) if encoder_changed else pooled0
        row = compare(scores0, scores_from_pooled(model, lines, pooled))
        if encoder_changed:
            rel = [float((pooled[t] - pooled0[t]).norm() / pooled0[t].norm()) for t in texts]
            row["pooled_rel_error"] = float(np.mean(rel))
            row["cosine_tau_mean"] = compare(cos0, cosine_rankings(lines, pooled))["tau_mean"]
        rows[name] = row
        enc = (f"{row['pooled_rel_error']:.1e} | {row['cosine_tau_mean']:.4f}" if encoder_changed else "- | -")
        print(f"| {name} | {row['max_abs_diff']:.1e} | {row['mean_abs_diff']:.1e} | {row['tau_mean']:.4f} | "
              f"{row['tau_min']:.4f} | {100 * row['top1']:.0f} % | {enc} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "lists": len(lines), "block": args.block,
                                         "f32_std_median": spread, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
