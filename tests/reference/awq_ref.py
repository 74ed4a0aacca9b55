"""Activation-aware per-input scaling (AWQ, Lin et al. 2023) for the encoder's Linear weights, alone
and combined with GPTQ and the per-block scale search, in the bundles' block format; and mixed
q4 / q8 allocations with their size on the released model.

    "$VENV/bin/python" tests/reference/awq_ref.py --self-test
    "$VENV/bin/python" tests/reference/awq_ref.py --model CHECKPOINT --eval lists.jsonl \
        [--limit 40] [--calib 256] [--policies "q4;q4-awq;q4-awq-gptq-mse"] [--threads 1] [--json OUT]
    "$VENV/bin/python" tests/reference/awq_ref.py --sizes "q4;q4-awq-gptq-mse,ffn=q8"

The stored format (a proposal; quantize_ref.py's blocks plus one vector): a Linear weight W [out,
in] stored "with AWQ" holds the block-quantized values and f16 block scales of W x diag(s), as
today, plus `<key>.inv_scale`, F16 [in], holding 1 / s; the loader dequantizes as today and
multiplies column c by inv_scale[c]. s = mean|x|^alpha over the calibration inputs x of the
Linear (per input channel, non-padding tokens), normalised by sqrt(max * min) (AWQ's), floored
at 1e-4 x its max; the quantizer uses s = 1 / f16(1 / s) so that what is stored is exactly what
was quantized. alpha is searched on a grid of `--awq-grid` values in [0, 1] per Linear for the
least output error on the calibration inputs, tr(D H D^T) with D = W - dequantized, H = X^T X
(the block quantizer used in the search is round to nearest, with the scale search if the method
has it; `awqfull` runs the method itself, GPTQ included, at every grid point). With GPTQ, the
scaled weights W s are quantized against the scaled Hessian diag(1/s) H diag(1/s) (the inputs of
W s are x / s). alpha = 0 is plain round to nearest / GPTQ, so the search never does worse on
the calibration data.

Policies (`;` between policies): a default method for every encoder Linear, then overrides
`GROUP[@LAYERS]=METHOD` separated by `,`; GROUP is qkv, o, attn (qkv + o), fi (FFN in,
intermediate.dense), fo (FFN out, output.dense), ffn (fi + fo) or all; LAYERS like 0+5 or 0-2;
`emb=q4` stores the word table as round-to-nearest q4 (default q8, as the q4 scheme). METHOD is
`-` separated: q4 | q8 | f16 first, then any of awq, awqfull, gptq, mse (gptq_ref's block scale
search, 11 shrinkings of the absmax, weighted by H's diagonal), b64 / b128 (blocks of 64 / 128
inputs instead of 32). Every other tensor is as the q4 scheme stores it (list head q8 in blocks
of 32, the rest f16). Calibration (gptq_ref.calibration_texts: docstrings of modules the lists
do not use, none of the lists' texts) and the metrics are gptq_ref.py's / quant_layers.py's;
the encoder is quantized layer by layer, each Linear on the inputs of the encoder as stored so
far.

Bytes on the released model (`released_bytes`): BERT-large encoder (24 layers, hidden 1024, FFN
4096, vocab 21,128, 512 positions), list head D 1792, F 2048, 2 list layers, q8; q4 0.5 byte a
value + 2 bytes a block, q8 1 + 2 / block, f16 2; an AWQ weight adds 2 bytes an input; plus
0.8 MB of other files (`OTHER_FILES`), so that the current q4 and q8 schemes count 254.0 and
404.9 MB (the README's 254 and 405 MB). A layer selection on the 6-layer
MiniLM maps to the same share of the 24 layers (layer n -> layers 4n..4n+3).

Measured on the MiniLM ranker (make_minilm_ranker.py), 256 calibration texts (17,908 tokens),
PyTorch float32 on one thread, the first 40 of docstring_lists.py's 200 lists (2,380 passages)
unless said; tau / top-1 against the float32 model; "layer error" is the mean over the 36 Linears
of tr(D H D^T) / tr(W H W^T); bytes on the released model as above; time: calibration +
quantization of the 36 Linears (two runs shared the 2-core machine with a compile job).

    policy                                  tau mean  worst  top-1  pooled  cos tau  layer err  MB     time
    q4 (round to nearest, the scheme now)   0.8098  0.7025  67.5 %  0.297  0.8592  7.4e-3   254.0  100 s
    q4-awq                                  0.8357  0.7466  75.0 %  0.244  0.8763  6.0e-3   254.4  114 s
    q4-awq-mse                              0.8459  0.7839  72.5 %  0.232  0.8878  5.2e-3   254.4  110 s
    q4-gptq-mse (as gptq_ref.py measured)   0.8684  0.8308  80.0 %  0.167  0.9075  2.5e-3   254.0  138 s
    q4-awq-gptq                             0.8819  0.7783  77.5 %  0.161  0.9076  2.5e-3   254.4  144 s
    q4-awq-gptq-mse                         0.8808  0.8276  75.0 %  0.152  0.9160  2.3e-3   254.4  151 s
    q4-awqfull-gptq-mse (--awq-grid 6)      0.8756  0.8014  75.0 %  0.154  0.9153  2.3e-3   254.4  154 s
    q4-awq-gptq-mse-b128                    0.8476  0.7833  77.5 %  0.183  0.8997  3.3e-3   240.2  114 s
    q4-awq-gptq-mse,emb=q4                  0.8750  0.8111  70.0 %  0.161  0.9108  2.3e-3   243.6  119 s
    q4-awq-gptq-mse,o=q8                    0.8873  0.8387  75.0 %  0.138  0.9234  1.8e-3   266.9   80 s
    q4-awq-gptq-mse,qkv=q8                  0.8929  0.8422  72.5 %  0.126  0.9257  9.1e-4   292.0  105 s
    q4-awq-gptq-mse,attn=q8                 0.9115  0.8719  87.5 %  0.108  0.9377  4.1e-4   304.5   90 s
    q4-awq-gptq-mse,fi=q8                   0.9001  0.8478  82.5 %  0.128  0.9312  2.0e-3   304.7   84 s
    q4-awq-gptq-mse,fo=q8                   0.8952  0.8587  82.5 %  0.141  0.9231  2.2e-3   304.5  167 s
    q4-awq-gptq-mse,o=q8,fi=q8              0.9130  0.8714  82.5 %  0.110  0.9385  1.5e-3   317.2  155 s
    q4-awq-gptq-mse,attn=q8,fi@0-2=q8       0.9228  0.8859  77.5 %  0.089  0.9480  2.9e-4   329.7   78 s
    q4-awq-gptq-mse,attn=q8,fi@3-5=q8       0.9315  0.8984  85.0 %  0.087  0.9462  2.5e-4   329.7   69 s
    q4-awq-gptq-mse,qkv=q8,fi=q8            0.9196  0.8621  85.0 %  0.092  0.9475  6.3e-4   342.3   77 s
    q4-awq-gptq-mse,ffn=q8                  0.9181  0.8759  85.0 %  0.112  0.9389  1.9e-3   354.8  124 s
    q4-awq-gptq-mse,attn=q8,fo=q8 (FFN in q4)  0.9214  0.8424  82.5 %  0.090  0.9482  3.0e-4   354.7   87 s
    q4-awq-gptq-mse,attn=q8,fi=q8 (FFN out q4) 0.9476  0.9199  97.5 %  0.063  0.9608  1.3e-4   354.8   90 s
    q4-gptq-mse,attn=q8,fi=q8 (no AWQ)      0.9437  0.9212  87.5 %  0.064  0.9635  1.4e-4   354.6   57 s
    q4,attn=q8,fi=q8 (round to nearest)     0.9126  0.8617  90.0 %  0.134  0.9398  5.4e-4   354.6   43 s
    q4-awq-gptq-mse,attn=q8,fi=q8,emb=q4    0.9268  0.8901  92.5 %  0.083  0.9448  1.3e-4   344.0  122 s
    all 200 lists (12,019 passages):
    q4-awq-gptq-mse                         0.8793  0.7838  77.0 %  0.153  0.9103  2.3e-3   254.4   85 s
    q4-awq-gptq-mse,attn=q8,fi=q8           0.9464  0.8864  94.0 %  0.064  0.9602  1.3e-4   354.8   63 s
    q4-gptq-mse,attn=q8,fi=q8 (no AWQ)      0.9438  0.8526  92.0 %  0.065  0.9603  1.4e-4   354.6  115 s

AWQ (alpha by round-to-nearest error, mostly 0.1-0.5; 0.5-0.8 for the value weights) lowers the
round-to-nearest layer error by a fifth and raises tau by 0.03, but on top of GPTQ it adds little
(layer error 2.5e-3 -> 2.3e-3, mostly the value weights; searching alpha with GPTQ itself did no
better); the differences between the AWQ and plain GPTQ rows are within what 40 lists resolve.
Of the allocations tried, only one meets both q4 targets: every encoder Linear q8 except the FFN
output weights (output.dense), which are q4 by GPTQ with the scale search, with or without AWQ:
354.6 MB on the released model (354.8 with AWQ), against the 240 MB asked for and 405 MB for q8.
Within 240 MB (the whole encoder at 4 bits with blocks of 128, or the word table at q4 too), tau
stays at 0.85-0.88.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gptq_ref as gq  # noqa: E402
import quantize_ref as qr  # noqa: E402

GROUPS = {
    "qkv": ["attention.self.query", "attention.self.key", "attention.self.value"],
    "o": ["attention.output.dense"],
    "fi": ["intermediate.dense"],
    "fo": ["output.dense"],
}
GROUPS["attn"] = GROUPS["qkv"] + GROUPS["o"]
GROUPS["ffn"] = GROUPS["fi"] + GROUPS["fo"]
GROUPS["all"] = GROUPS["attn"] + GROUPS["ffn"]


# ----------------------------------------------------------------------------- policies
def parse_method(text: str) -> dict:
    parts = text.split("-")
    assert parts[0] in ("q4", "q8", "f16"), text
    m = {"bits": {"q4": 4, "q8": 8, "f16": 16}[parts[0]], "awq": False, "awqfull": False, "gptq": False,
         "mse": False, "block": 32}
    for p in parts[1:]:
        if p in ("awq", "gptq", "mse"):
            m[p] = True
        elif p == "awqfull":
            m["awq"] = m["awqfull"] = True
        elif re.fullmatch(r"b\d+", p):
            m["block"] = int(p[1:])
        else:
            raise ValueError(f"unknown method part {p!r} in {text!r}")
    if m["bits"] == 16:
        assert not (m["awq"] or m["gptq"] or m["mse"]), text
    return m


def parse_layers(text: str, layers: int) -> set[int]:
    out = set()
    for part in text.split("+"):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    assert all(0 <= n < layers for n in out), text
    return out


def parse_policy(policy: str, layers: int) -> tuple[dict, str]:
    """({(layer, linear name): method}, word table storage 'q8' | 'q4')."""
    items = [p.strip() for p in policy.split(",")]
    default = parse_method(items[0])
    plan = {(n, name): default for n in range(layers) for name in GROUPS["all"]}
    emb = "q8"
    for item in items[1:]:
        sel, _, method = item.partition("=")
        if sel == "emb":
            assert method in ("q4", "q8"), item
            emb = method
            continue
        group, _, lsel = sel.partition("@")
        chosen = parse_layers(lsel, layers) if lsel else set(range(layers))
        m = parse_method(method)
        for n in chosen:
            for name in GROUPS[group]:
                plan[(n, name)] = m
    return plan, emb


# ----------------------------------------------------------------------------- sizes
# Tokenizer, config and manifest files and the safetensors headers: what the README's 254 MB (q4)
# and 405 MB (q8) hold beyond the tensors counted here.
OTHER_FILES = 0.8e6
RELEASED = dict(layers=24, hidden=1024, ffn=4096, vocab=21128, positions=512, D=1792, F=2048, list_layers=2)


def method_bytes(m: dict, rows: int, cols: int) -> float:
    n = rows * cols
    if m["bits"] == 16:
        return 2.0 * n
    value = 0.5 if m["bits"] == 4 else 1.0
    return n * value + 2.0 * n / m["block"] + (2.0 * cols if m["awq"] else 0.0)


def released_bytes(policy: str, minilm_layers: int = 6) -> float:
    """Bundle bytes of the released model's tensors under `policy` (tensor data only)."""
    r = RELEASED
    plan, emb = parse_policy(policy, minilm_layers)
    h, f, per = r["hidden"], r["ffn"], r["layers"] // minilm_layers
    shapes = {"attention.self.query": (h, h), "attention.self.key": (h, h), "attention.self.value": (h, h),
              "attention.output.dense": (h, h), "intermediate.dense": (f, h), "output.dense": (h, f)}
    total = 0.0
    for (n, name), m in plan.items():
        total += per * method_bytes(m, *shapes[name])
    q8 = parse_method("q8")
    total += method_bytes(parse_method(emb), r["vocab"], h)
    d, ff = r["D"], r["F"]
    head = [(d, h)] + r["list_layers"] * [(3 * d, d), (d, d), (ff, d), (d, ff)] + [(d, 2 * d), (d, 2 * d), (1, 2 * d)]
    total += sum(method_bytes(q8, a, b) for a, b in head)
    # f16: positions, token types, embedding LayerNorm; per encoder layer biases (4h + f + h) and
    # two LayerNorms; the head's biases, LayerNorms and query embedding.
    f16 = r["positions"] * h + 2 * h + 2 * h
    f16 += r["layers"] * (4 * h + f + h + 4 * h)
    f16 += d + r["list_layers"] * (3 * d + d + ff + d + 4 * d) + 2 * d + 2 * d + 1 + 2 * d + 2 * d
    return total + 2.0 * f16 + OTHER_FILES


# ----------------------------------------------------------------------------- the quantizers
def rtn(w: np.ndarray, qmax: int, block: int, hdiag: np.ndarray | None = None, search: int = 0) -> np.ndarray:
    """Dequantized round to nearest of float `w` [out, in] in blocks (quantize_ref's values and
    scales when search == 0); with search > 0, each block's scale is the best of absmax x (1 -
    0.03 k) / qmax, k < search, by squared error weighted by hdiag (gptq_ref's scale search)."""
    w32 = np.asarray(w, dtype=np.float32)
    if not search:
        return gq.dequantize(*qr.quantize_groups(w32, block, qmax))
    rows, cols = w32.shape
    g = w32.reshape(rows, cols // block, block)
    hw = hdiag.reshape(cols // block, block)[None]
    absmax = np.abs(g).max(axis=2)
    best_cost = np.full(absmax.shape, np.inf)
    best = np.zeros_like(g)
    for k in range(search):
        st = (absmax * np.float32(1 - 0.03 * k) / np.float32(qmax)).astype(np.float16).astype(np.float32)[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.clip(np.where(st == 0, np.float32(0), np.rint(g / st)), -qmax, qmax) * st
        cost = (((g.astype(np.float64) - q) ** 2) * hw).sum(axis=2)
        better = cost < best_cost
        best_cost[better] = cost[better]
        best[better] = q[better]
    return best.reshape(rows, cols)


def quantize_plain(w: np.ndarray, h: np.ndarray, m: dict) -> np.ndarray:
    """Dequantized weights of `w` (float64) by method m without AWQ."""
    if m["bits"] == 16:
        return w.astype(np.float16).astype(np.float64)
    qmax = 7 if m["bits"] == 4 else 127
    if m["gptq"]:
        values, scales = gq.gptq_quantize(w, h, m["block"], m["bits"], scale_search=11 if m["mse"] else 0)
        return gq.dequantize(values, scales).astype(np.float64)
    return rtn(w, qmax, m["block"], np.diag(h).copy(), 11 if m["mse"] else 0).astype(np.float64)


def rel_error(w: np.ndarray, deq: np.ndarray, h: np.ndarray) -> float:
    d = w - deq
    return float(np.sum((d @ h) * d) / np.sum((w @ h) * w))


def awq_factors(absmean: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(s as the quantizer uses it, 1/s as stored, float16)."""
    a = np.maximum(absmean, 1e-4 * absmean.max())
    s = a ** alpha
    s = s / np.sqrt(s.max() * s.min())
    inv = (1.0 / s).astype(np.float16)
    return 1.0 / inv.astype(np.float64), inv


def quantize_linear(w: np.ndarray, h: np.ndarray, absmean: np.ndarray, m: dict, grid: int) -> tuple[np.ndarray, dict]:
    """(dequantized weights as the loader would hold them, info)."""
    if not m["awq"]:
        deq = quantize_plain(w, h, m)
        return deq, {"alpha": None, "err": rel_error(w, deq, h)}
    search_m = m if m["awqfull"] else {**m, "gptq": False}
    best = None
    for alpha in np.linspace(0.0, 1.0, grid):
        s, inv = awq_factors(absmean, alpha)
        hs = h / s[:, None] / s[None, :]
        deq = quantize_plain(w * s[None, :], hs, search_m) * inv.astype(np.float64)[None, :]
        err = rel_error(w, deq, h)
        if best is None or err < best[0]:
            best = (err, alpha, deq)
    err, alpha, deq = best
    if m["gptq"] and not m["awqfull"]:
        s, inv = awq_factors(absmean, alpha)
        hs = h / s[:, None] / s[None, :]
        deq = quantize_plain(w * s[None, :], hs, m) * inv.astype(np.float64)[None, :]
        err = rel_error(w, deq, h)
    return deq, {"alpha": float(alpha), "err": err}


def self_test() -> None:
    rng = np.random.default_rng(0)
    rows, cols, n = 64, 256, 4096
    x = rng.standard_normal((n, cols)) * np.exp(rng.standard_normal(cols))  # uneven channel magnitudes
    x[:, :4] *= 20  # a few outlier channels
    h = x.T @ x
    absmean = np.abs(x).mean(axis=0)
    w = rng.standard_normal((rows, cols)) * 0.05
    # AWQ with the grid containing 0 never loses to round to nearest on the calibration data.
    plain = rel_error(w, quantize_plain(w, h, parse_method("q4")), h)
    deq, info = quantize_linear(w, h, absmean, parse_method("q4-awq"), 11)
    assert info["err"] <= plain + 1e-12, (info, plain)
    # alpha = 0 gives s = 1 exactly: the stored values equal quantize_ref's.
    s, inv = awq_factors(absmean, 0.0)
    assert np.all(s == 1.0) and np.all(inv == 1.0)
    # Without search the rtn helper is quantize_ref's decoding.
    w32 = w.astype(np.float32)
    assert np.array_equal(rtn(w32, 7, 32), qr.dequantize_q4(*qr.quantize_q4(w32, 32), 32))
    g = rel_error(w, quantize_plain(w, h, parse_method("q4-gptq")), h)
    ag = quantize_linear(w, h, absmean, parse_method("q4-awq-gptq"), 11)[1]["err"]
    print(f"outlier inputs, q4 relative output error: rtn {plain:.3e}, awq {info['err']:.3e} (alpha "
          f"{info['alpha']:.1f}), gptq {g:.3e}, awq+gptq {ag:.3e}")
    assert info["err"] < 0.8 * plain
    q4 = released_bytes("q4")
    assert abs(q4 / 1e6 - 254.0) < 0.1, q4
    print(f"released model, q4 scheme: {q4 / 1e6:.1f} MB")
    print("self-test passed")


# ----------------------------------------------------------------------------- the encoder pass
def quantize_encoder(model, texts: list[str], plan: dict, max_length: int, grid: int, batch: int = 16):
    """({canonical key: float64 weights as the loader would hold them}, {key: info}); the model's
    encoder weights are replaced as it goes (each Linear quantized on the inputs of the encoder as
    stored so far)."""
    import torch

    bert = model.bert
    states, masks = gq.first_layer_inputs(model, texts, max_length, batch)

    stored, infos = {}, {}
    for n, layer in enumerate(bert.encoder.layer):
        for step in gq.STEPS:
            acc = {}

            def hook(_mod, inputs, _acc=acc):
                x = inputs[0][_acc["mask"]].to(torch.float32)
                xtx = (x.T @ x).double()
                ab = x.abs().sum(dim=0).double()
                if "h" in _acc:
                    _acc["h"] += xtx
                    _acc["abs"] += ab
                    _acc["n"] += x.shape[0]
                else:
                    _acc.update(h=xtx, abs=ab, n=x.shape[0])

            handle = gq.module(layer, step[0]).register_forward_pre_hook(hook)
            with torch.no_grad():
                for (hidden, rest, kw), mask in zip(states, masks):
                    acc["mask"] = mask
                    gq.run_layer(layer, hidden, rest, kw)
            handle.remove()
            h = acc["h"].numpy()
            absmean = (acc["abs"] / acc["n"]).numpy()
            for name in step:
                lin = gq.module(layer, name)
                w = lin.weight.detach().double().numpy()
                deq, info = quantize_linear(w, h, absmean, plan[(n, name)], grid)
                key = f"bert.encoder.layer.{n}.{name}.weight"
                stored[key], infos[key] = deq, info
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(deq).to(lin.weight.dtype))
        with torch.no_grad():
            for s in states:
                s[0] = gq.run_layer(layer, *s)
    return stored, infos


# ----------------------------------------------------------------------------- evaluation
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--sizes", help="print the released model's bytes of these policies and exit")
    ap.add_argument("--model")
    ap.add_argument("--eval", type=Path, help="lists (JSON Lines); every text of the file is kept out of calibration")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--skip", type=int, default=0, help="evaluate lists skip..skip+limit")
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--calib-seed", type=int, default=1)
    ap.add_argument("--calib-max-length", type=int, default=512)
    ap.add_argument("--awq-grid", type=int, default=11)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--policies", default="q4;q4-awq;q4-awq-gptq-mse")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="appends one JSON line per policy")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    policies = [p.strip() for p in (args.sizes or args.policies).split(";") if p.strip()]
    if args.sizes:
        base_q4 = released_bytes("q4")
        for p in policies:
            b = released_bytes(p)
            print(f"{p}: {b / 1e6:.1f} MB ({(b - base_q4) / 1e6:+.1f} MB vs the q4 scheme)")
        return
    if not (args.model and args.eval):
        ap.error("--model and --eval (or --self-test, --sizes)")
    import torch

    import listconranker_ref as ref
    import quant_layers as ql

    torch.set_num_threads(args.threads)
    all_lists = [json.loads(l) for l in args.eval.read_text(encoding="utf-8").splitlines() if l.strip()]
    lines = all_lists[args.skip:args.skip + args.limit]
    texts = sorted({t for lst in lines for t in lst})
    calib = gq.calibration_texts(args.calib, args.calib_seed, {t for lst in all_lists for t in lst})
    base = ref.load(args.model, torch.float32)
    layers = base.bert.config.num_hidden_layers
    print(f"calibration: {len(calib)} texts; evaluation: lists {args.skip}..{args.skip + len(lines) - 1}, "
          f"{sum(len(l) - 1 for l in lines)} passages, {len(texts)} distinct texts", flush=True)
    t0 = time.perf_counter()
    pooled0 = ql.encode_all(base, texts, args.max_length)
    print(f"f32 encode: {time.perf_counter() - t0:.0f} s", flush=True)
    scores0 = ql.scores_from_pooled(base, lines, pooled0)
    cos0 = ql.cosine_rankings(lines, pooled0)
    scheme, _ = ql.variant(base, None, "scheme-q4", 32)  # every other tensor as the q4 scheme stores it
    print()
    print("| policy | tau mean | tau worst | top-1 | pooled rel. error | encoder cosine tau | mean layer error "
          "| released bytes | quantize time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for policy in policies:
        plan, emb = parse_policy(policy, layers)
        work = copy.deepcopy(base)
        t0 = time.perf_counter()
        stored, infos = quantize_encoder(work, calib, plan, args.calib_max_length, args.awq_grid)
        seconds = time.perf_counter() - t0
        model = copy.deepcopy(scheme)
        params = ql.canonical_params(model)
        with torch.no_grad():
            for key, deq in stored.items():
                params[key].copy_(torch.from_numpy(deq).to(params[key].dtype))
            if emb == "q4":
                w = ql.canonical_params(base)[qr.WORD_TABLE].detach().numpy().astype(np.float32)
                params[qr.WORD_TABLE].copy_(torch.from_numpy(ql.stored_value(w, "q4", 32)))
        pooled = ql.encode_all(model, texts, args.max_length)
        row = ql.compare(scores0, ql.scores_from_pooled(model, lines, pooled))
        row["pooled_rel_error"] = float(np.mean([float((pooled[t] - pooled0[t]).norm() / pooled0[t].norm()) for t in texts]))
        row["cosine_tau_mean"] = ql.compare(cos0, ql.cosine_rankings(lines, pooled))["tau_mean"]
        row["quantize_seconds"] = seconds
        row["released_bytes"] = released_bytes(policy, layers)
        row["layer_error_mean"] = float(np.mean([i["err"] for i in infos.values()]))
        row["alphas"] = {k: i["alpha"] for k, i in infos.items()}
        row["errors"] = {k: i["err"] for k, i in infos.items()}
        print(f"| {policy} | {row['tau_mean']:.4f} | {row['tau_min']:.4f} | {100 * row['top1']:.1f} % | "
              f"{row['pooled_rel_error']:.3f} | {row['cosine_tau_mean']:.4f} | {row['layer_error_mean']:.2e} | "
              f"{row['released_bytes'] / 1e6:.1f} MB | {seconds:.0f} s |", flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps({"policy": policy, "lists": len(lines), "skip": args.skip, **row}) + "\n")


if __name__ == "__main__":
    main()
