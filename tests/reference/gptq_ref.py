"""GPTQ (Frantar et al. 2022) for the encoder's Linear weights, in the bundles' stored q4 / q8 format:
the independent NumPy / PyTorch reference for a GPTQ `convert`.

    "$VENV/bin/python" tests/reference/gptq_ref.py --self-test
    "$VENV/bin/python" tests/reference/gptq_ref.py --model CHECKPOINT --eval lists.jsonl \
        [--limit 10] [--calib 256] [--calib-seed 1] [--policies "rtn;gptq;gptq-ffn-q8"] \
        [--threads 1] [--json OUT]
    "$VENV/bin/python" tests/reference/gptq_ref.py --write-calib calib.txt [--eval lists.jsonl] \
        [--calib 256] [--calib-seed 1]      (calibration text for `convert --calibration`)

The format is exactly quantize_ref.py's: symmetric integer values (q4: -7..7, q8: -127..127) in
blocks of `block` (32) consecutive inputs of a row, one float16 scale per block; a value decodes
as value x scale. Round to nearest (`quantize_ref.quantize_groups`) picks each block's scale as
absmax / qmax of the float weights and rounds every weight on its own. `gptq_quantize` keeps the
format and picks the values by GPTQ: the inputs (columns) are quantized in their stored order,
one at a time; the error of each column, weighted by the inverse Hessian's Cholesky factor, is
pushed onto the columns not yet quantized (lazy: within the block at once, onto the later blocks
after each block), so that the layer's output on the calibration inputs X (H = X^T X) moves as
little as possible. A block's scale is absmax / qmax of its weights as updated when the block is
reached (rounded to float16 as quantize_ref does); the weights of a block can still move after
its scale is fixed, their values are then clipped to +-qmax. The division and rounding of a
value run in float32 as quantize_ref's do, so a diagonal Hessian (no error feedback) gives
quantize_ref's values and scales bit for bit (`--self-test` checks it). Dampening: `damp` x the
mean of H's diagonal is added to the diagonal; an input never active in the calibration data
(H[i, i] == 0) gets H[i, i] = 1 and keeps its weights (the GPTQ code zeroes them). No act-order:
act-order quantizes the columns by decreasing H[i, i], and a group of 32 would then gather inputs
scattered over the row, which the format (blocks of consecutive inputs) cannot store; so the
columns go in their stored order.

`--model` runs the whole procedure on a checkpoint (the PyTorch reference, float32) and compares
the storage policies with quant_layers.py's machinery (every other tensor as the q4 scheme
stores it: word table and list head q8 in blocks of 32, the rest float16):

- calibration text: docstrings of standard library modules that docstring_lists.py does not use
  (`CALIB_MODULES`), minus every text of the `--eval` file (all its lists, not only `--limit`),
  `--calib` of them drawn with `--calib-seed`, each truncated to `--calib-max-length` tokens;
- layer by layer, and within a layer in the order q/k/v (one Hessian, they share their input),
  attention output, FFN in, FFN out: the inputs of the next Linear are recomputed with every
  Linear before it already quantized (the encoder as stored so far), their Hessian is summed
  over every non-padding token (float64), and the Linear is quantized;
- policies: `rtn` (the current q4 scheme), `gptq` (GPTQ q4 for the six Linears of every layer),
  `gptq-ffn-q8` (GPTQ q4 attention, round-to-nearest q8 FFN: the scheme's q8 in blocks of 32),
  `gptq-ffn-gptq8` (GPTQ q4 attention, GPTQ q8 FFN); `-mse` after `gptq` (`gptq-mse`,
  `gptq-mse-ffn-q8`, ...): GPTQ with the scale search of `gptq_quantize(scale_search=11)`;
- per policy: max / mean |score - f32 score|, Kendall's tau-b per list (mean, worst), top-1
  agreement, the pooled features' relative error and the encoder's cosine-ranking tau, as
  quant_layers.py reports them, on the first `--limit` lists; and the calibration +
  quantization time.

Measured on the MiniLM ranker (make_minilm_ranker.py), 256 calibration texts (17,908 tokens),
first 40 of docstring_lists.py's 200 lists, mean tau / top-1 against f32: round to nearest q4
0.810 / 68 %; GPTQ q4 0.868 / 72 %; GPTQ q4 with the scale search 0.868 / 80 %; GPTQ q4
attention with round-to-nearest q8 FFN 0.898 / 78 %, with the scale search 0.912 / 88 % (GPTQ
q8 FFN instead: 0.906 / 82 %). None
reaches the q4 targets (0.93, 90 %).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import json
import random
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quantize_ref as qr  # noqa: E402


# ----------------------------------------------------------------------------- the quantizer
def gptq_quantize(weight: np.ndarray, hessian: np.ndarray, block: int = 32, bits: int = 4,
                  damp: float = 0.01, scale_search: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ of `weight` [out, in] (float64) against `hessian` [in, in] (X^T X of the layer's
    inputs, float64; any positive scale): (values int8 [out, in] in -qmax..qmax, scales float16
    [out, in // block]), qmax = 2^(bits-1) - 1 (q4: 7, q8: 127). Decodes as
    values x repeat(scales, block) along the row, as quantize_ref's blocks do.

    scale_search 0 (the default): a block's scale is absmax / qmax of its updated weights.
    scale_search n > 0 (an option, same format): the scale is the best of absmax x (1 - 0.03 k) /
    qmax, k < n, for the block's weights as updated, by round-to-nearest squared error weighted
    by H's diagonal (GPTQ's --mse-style clipping)."""
    w = np.array(weight, dtype=np.float64, copy=True)
    h = np.array(hessian, dtype=np.float64, copy=True)
    rows, cols = w.shape
    assert h.shape == (cols, cols), (h.shape, w.shape)
    assert cols % block == 0, f"{cols} inputs are not a multiple of the block {block}"
    qmax = 2 ** (bits - 1) - 1
    diag = np.arange(cols)
    dead = h[diag, diag] == 0
    h[dead, :] = 0
    h[:, dead] = 0
    h[dead, dead] = 1
    h[diag, diag] += damp * np.mean(h[diag, diag])
    # Upper Cholesky factor U of H^-1 (H^-1 = U^T U): row i holds the error feedback of column i.
    hinv = np.linalg.inv(h)
    hinv = (hinv + hinv.T) / 2
    u = np.linalg.cholesky(hinv).T
    values = np.zeros((rows, cols), dtype=np.int8)
    scales = np.zeros((rows, cols // block), dtype=np.float16)
    for g0 in range(0, cols, block):
        g1 = g0 + block
        wb = w[:, g0:g1].copy()
        err = np.zeros_like(wb)
        ub = u[g0:g1, g0:g1]
        # The block's scale from its weights as updated so far, as quantize_ref rounds it.
        absmax = np.abs(wb.astype(np.float32)).max(axis=1)
        scale = (absmax / np.float32(qmax)).astype(np.float32).astype(np.float16)
        if scale_search:
            wb32 = wb.astype(np.float32)
            weight_h = h[diag[g0:g1], diag[g0:g1]]
            best = np.full(rows, np.inf)
            for k in range(scale_search):
                cand = (absmax * np.float32(1 - 0.03 * k) / np.float32(qmax)).astype(np.float32).astype(np.float16)
                st = cand.astype(np.float32)[:, None]
                with np.errstate(divide="ignore", invalid="ignore"):
                    qc = np.clip(np.where(st == 0, np.float32(0), np.rint(wb32 / st)), -qmax, qmax)
                cost = (((wb - qc * st) ** 2) * weight_h).sum(axis=1)
                better = cost < best
                best[better] = cost[better]
                scale[better] = cand[better]
        scales[:, g0 // block] = scale
        step = scale.astype(np.float32)
        for j in range(block):
            col = wb[:, j].astype(np.float32)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(step == 0, np.float32(0), np.rint(col / step))
            q = np.clip(q, -qmax, qmax)
            values[:, g0 + j] = q.astype(np.int8)
            e = (wb[:, j] - q.astype(np.float64) * step.astype(np.float64)) / ub[j, j]
            wb[:, j + 1:] -= np.outer(e, ub[j, j + 1:])
            err[:, j] = e
        w[:, g1:] -= err @ u[g0:g1, g1:]
    return values, scales


def dequantize(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """float32 weights of (values, scales) in blocks (quantize_ref's decoding)."""
    return qr.dequantize_q8(values, scales)


def pack_q4(values: np.ndarray) -> np.ndarray:
    """q4 values (-7..7) as the bundle's bytes: two per byte, value + 8, low nibble first
    (quantize_ref.quantize_q4's packing)."""
    nibbles = (values.astype(np.int16) + 8).astype(np.uint8)
    return nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)


def output_error(weight: np.ndarray, deq: np.ndarray, hessian: np.ndarray) -> float:
    """tr((W - Q) H (W - Q)^T) / tr(W H W^T): the layer's relative squared output error on the
    calibration inputs."""
    d = weight - deq
    return float(np.einsum("ij,jk,ik->", d, hessian, d) / np.einsum("ij,jk,ik->", weight, hessian, weight))


def self_test() -> None:
    rng = np.random.default_rng(0)
    # A diagonal Hessian: no error feedback, so round to nearest bit for bit (q4 and q8).
    for bits, qmax, (rows, cols) in ((4, 7, (48, 256)), (8, 127, (40, 96))):
        w = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 0.2, (rows, 1))).astype(np.float32)
        w[3, :32] = 0  # an all-zero block: scale 0, values 0
        h = np.diag(rng.uniform(0.5, 2.0, cols))
        values, scales = gptq_quantize(w.astype(np.float64), h, 32, bits)
        want_v, want_s = qr.quantize_groups(w, 32, qmax)
        assert np.array_equal(values, want_v) and np.array_equal(scales.view(np.uint16), want_s.view(np.uint16)), bits
        if bits == 4:
            packed, _ = qr.quantize_q4(w, 32)
            assert np.array_equal(pack_q4(values), packed)
        print(f"diagonal Hessian, q{bits}: values and scales equal quantize_ref's bit for bit")
    # Correlated inputs: GPTQ's output error must be well below round to nearest's.
    rows, cols, n = 64, 256, 4096
    mix = rng.standard_normal((cols, cols)) / np.sqrt(cols)
    x = rng.standard_normal((n, cols)) @ (np.eye(cols) + 2 * mix)
    x[:, 7] = 0  # a dead input
    h = x.T @ x
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    for bits, qmax in ((4, 7), (8, 127)):
        values, scales = gptq_quantize(w.astype(np.float64), h, 32, bits)
        assert values.min() >= -qmax and values.max() <= qmax
        gptq_err = output_error(w.astype(np.float64), dequantize(values, scales), h)
        rtn_err = output_error(w.astype(np.float64), dequantize(*qr.quantize_groups(w, 32, qmax)), h)
        print(f"correlated inputs, q{bits}: relative output error GPTQ {gptq_err:.3e}, round to nearest {rtn_err:.3e}")
        assert gptq_err < 0.7 * rtn_err
    print("self-test passed")


# ----------------------------------------------------------------------------- calibration text
# Standard library modules docstring_lists.py does not draw from.
CALIB_MODULES = [
    "bdb", "cmd", "code", "codeop", "compileall", "cProfile", "ctypes", "email.charset", "email.feedparser",
    "email.generator", "email.header", "email.headerregistry", "email.parser", "email.policy",
    "http.cookiejar", "http.server", "importlib.metadata", "importlib.resources", "json.decoder",
    "json.encoder", "logging.config", "logging.handlers", "modulefinder", "multiprocessing.pool",
    "multiprocessing.managers", "pdb", "pickletools", "profile", "pstats", "py_compile", "pyclbr", "pydoc",
    "runpy", "smtpd", "socketserver", "tkinter", "tkinter.ttk", "turtle", "unittest.mock", "urllib.robotparser",
    "wsgiref.handlers", "wsgiref.headers", "wsgiref.simple_server", "xml.dom.pulldom", "xml.sax",
    "xml.sax.handler", "xml.sax.saxutils", "xml.sax.xmlreader", "xmlrpc.client", "xmlrpc.server",
    "zipapp", "zipimport", "zoneinfo", "asyncio.streams", "asyncio.subprocess", "concurrent.futures.process",
    "string.templatelib", "tomllib", "venv", "webbrowser", "ensurepip", "filecmp", "nntplib", "telnetlib",
]


def calibration_texts(count: int, seed: int, exclude: set[str]) -> list[str]:
    """`count` docstrings (docstring_lists.py's rules: public functions, classes, methods and
    properties, >= 60 characters, each text once) of CALIB_MODULES, none in `exclude`."""
    import docstring_lists as dl

    texts, seen = [], set(exclude)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name in CALIB_MODULES:
            try:
                module = importlib.import_module(module_name)
            except Exception:
                continue
            for attr in sorted(vars(module)):
                obj = vars(module)[attr]
                if attr.startswith("_") or not (inspect.isclass(obj) or inspect.isroutine(obj)):
                    continue
                objs = [obj]
                if inspect.isclass(obj):
                    for member in sorted(vars(obj)):
                        value = vars(obj)[member]
                        if isinstance(value, (staticmethod, classmethod)):
                            value = value.__func__
                        if not member.startswith("_") and (inspect.isroutine(value) or isinstance(value, property)):
                            objs.append(value)
                for o in objs:
                    doc = dl._doc(o)
                    if doc is not None and doc not in seen:
                        seen.add(doc)
                        texts.append(doc)
    rng = random.Random(seed)
    rng.shuffle(texts)
    assert len(texts) >= count, f"only {len(texts)} calibration texts"
    return texts[:count]


# ----------------------------------------------------------------------------- the encoder pass
LINEARS = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense"]
# Quantized together (one Hessian: q/k/v read the same input), in this order.
STEPS = [["attention.self.query", "attention.self.key", "attention.self.value"], ["attention.output.dense"],
         ["intermediate.dense"], ["output.dense"]]


def module(root, dotted: str):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def storage_policy(policy: str, name: str) -> str:
    """'gptq4', 'gptq8', 'rtn4' or 'rtn8' for Linear `name` of a layer under `policy`."""
    ffn = name in ("intermediate.dense", "output.dense")
    policy = policy.replace("-mse", "")
    return {"rtn": "rtn4", "gptq": "gptq4", "gptq-ffn-q8": "rtn8" if ffn else "gptq4",
            "gptq-ffn-gptq8": "gptq8" if ffn else "gptq4"}[policy]


def first_layer_inputs(model, texts: list[str], max_length: int, batch: int):
    """Runs the encoder on `texts` (sorted by length, `batch` at a time) up to its first layer:
    ([[hidden states, the layer's other positional arguments, its keyword arguments] per batch],
    [real-token mask per batch]), what the layer-by-layer passes start from."""
    import torch

    bert = model.bert
    ids = model.tokenize(texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    captured, masks = [], []

    class Stop(Exception):
        pass

    def grab(_mod, args, kwargs):
        captured.append((args, kwargs))
        raise Stop

    handle = bert.encoder.layer[0].register_forward_pre_hook(grab, with_kwargs=True)
    with torch.no_grad():
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            longest = max(len(ids[i]) for i in idx)
            input_ids = torch.zeros(len(idx), longest, dtype=torch.long)
            mask = torch.zeros(len(idx), longest, dtype=torch.long)
            for r, i in enumerate(idx):
                input_ids[r, :len(ids[i])] = torch.tensor(ids[i])
                mask[r, :len(ids[i])] = 1
            try:
                bert(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))
            except Stop:
                pass
            masks.append(mask.bool())
    handle.remove()

    states = []
    for args, kwargs in captured:
        if args:
            states.append([args[0], args[1:], kwargs])
        else:
            kwargs = dict(kwargs)
            states.append([kwargs.pop("hidden_states"), (), kwargs])
    return states, masks


def run_layer(layer, hidden, rest, kw):
    """One encoder layer on captured inputs: its output hidden states."""
    out = layer(hidden, *rest, **kw)
    return out[0] if isinstance(out, (tuple, list)) else out


def quantize_encoder(model, texts: list[str], policy: str, block: int, max_length: int, damp: float,
                     batch: int = 16) -> dict[str, np.ndarray]:
    """{canonical key: float32 weights as stored} for every encoder Linear weight; the model's
    encoder weights are replaced as it goes (sequential GPTQ)."""
    import torch

    bert = model.bert
    states, masks = first_layer_inputs(model, texts, max_length, batch)

    stored = {}
    for n, layer in enumerate(bert.encoder.layer):
        for step in STEPS:
            kinds = {name: storage_policy(policy, name) for name in step}
            h = None
            if any(k.startswith("gptq") for k in kinds.values()):
                target = module(layer, step[0])
                acc = {}

                def hook(_mod, inputs, _acc=acc):
                    x = inputs[0][_acc["mask"]].to(torch.float32)
                    xtx = (x.T @ x).double()
                    _acc["h"] = xtx if "h" not in _acc else _acc["h"] + xtx

                handle = target.register_forward_pre_hook(hook)
                with torch.no_grad():
                    for (hidden, rest, kw), mask in zip(states, masks):
                        acc["mask"] = mask
                        run_layer(layer, hidden, rest, kw)
                handle.remove()
                h = acc["h"].numpy()
            for name in step:
                lin = module(layer, name)
                w = lin.weight.detach().double().numpy()
                kind = kinds[name]
                qmax = 7 if kind.endswith("4") else 127
                if kind.startswith("gptq"):
                    values, scales = gptq_quantize(w, h, block, 4 if qmax == 7 else 8, damp,
                                                   scale_search=11 if "-mse" in policy else 0)
                else:
                    values, scales = qr.quantize_groups(w.astype(np.float32), block, qmax)
                deq = dequantize(values, scales)
                stored[f"bert.encoder.layer.{n}.{name}.weight"] = deq
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(deq).to(lin.weight.dtype))
        with torch.no_grad():
            for s in states:
                s[0] = run_layer(layer, *s)
    return stored


# ----------------------------------------------------------------------------- evaluation
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--eval", type=Path, help="lists (JSON Lines); every text of the file is kept out of calibration")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--calib-seed", type=int, default=1)
    ap.add_argument("--calib-max-length", type=int, default=512)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--policies", default="rtn;gptq;gptq-ffn-q8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--write-calib", type=Path,
                    help="write --calib calibration texts (one per line, newlines as spaces; none of "
                         "--eval's texts when given) for `listconranker convert --calibration` and exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if args.write_calib:
        exclude = set()
        if args.eval:
            exclude = {t for l in args.eval.read_text(encoding="utf-8").splitlines() if l.strip() for t in json.loads(l)}
        calib = calibration_texts(args.calib, args.calib_seed, exclude)
        # BERT's tokenizer treats a newline as any other whitespace: one text per line keeps them.
        lines = [" ".join(t.split()) for t in calib]
        args.write_calib.write_text("".join(f"{t}\n" for t in lines), encoding="utf-8")
        print(f"wrote {len(lines)} calibration texts to {args.write_calib}", file=sys.stderr)
        return
    if not (args.model and args.eval):
        ap.error("--model and --eval (or --self-test)")
    import torch

    import listconranker_ref as ref
    import quant_layers as ql

    torch.set_num_threads(args.threads)
    all_lists = [json.loads(l) for l in args.eval.read_text(encoding="utf-8").splitlines() if l.strip()]
    lines = all_lists[:args.limit]
    texts = sorted({t for lst in lines for t in lst})
    calib = calibration_texts(args.calib, args.calib_seed, {t for lst in all_lists for t in lst})
    base = ref.load(args.model, torch.float32)
    ntok = sum(len(i) for i in base.tokenize(calib, args.calib_max_length))
    print(f"calibration: {len(calib)} texts, {ntok} tokens (disjoint from the {len(all_lists)} lists' texts); "
          f"evaluation: {len(lines)} lists, {sum(len(l) - 1 for l in lines)} passages, {len(texts)} distinct texts",
          flush=True)
    pooled0 = ql.encode_all(base, texts, args.max_length)
    scores0 = ql.scores_from_pooled(base, lines, pooled0)
    cos0 = ql.cosine_rankings(lines, pooled0)
    scheme, _ = ql.variant(base, None, "scheme-q4", args.block)  # every other tensor as stored
    rows = {}
    print()
    print("| encoder Linears | max abs diff | mean abs diff | tau mean | tau worst | top-1 | pooled rel. error "
          "| encoder cosine tau | quantize time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for policy in [p.strip() for p in args.policies.split(";")]:
        work = copy.deepcopy(base)
        t0 = time.perf_counter()
        stored = quantize_encoder(work, calib, policy, args.block, args.calib_max_length, args.damp)
        seconds = time.perf_counter() - t0
        model = copy.deepcopy(scheme)
        params = ql.canonical_params(model)
        with torch.no_grad():
            for key, deq in stored.items():
                params[key].copy_(torch.from_numpy(deq).to(params[key].dtype))
        pooled = ql.encode_all(model, texts, args.max_length)
        row = ql.compare(scores0, ql.scores_from_pooled(model, lines, pooled))
        row["pooled_rel_error"] = float(np.mean([float((pooled[t] - pooled0[t]).norm() / pooled0[t].norm()) for t in texts]))
        row["cosine_tau_mean"] = ql.compare(cos0, ql.cosine_rankings(lines, pooled))["tau_mean"]
        row["quantize_seconds"] = seconds
        rows[policy] = row
        print(f"| {policy} | {row['max_abs_diff']:.1e} | {row['mean_abs_diff']:.1e} | {row['tau_mean']:.4f} | "
              f"{row['tau_min']:.4f} | {100 * row['top1']:.0f} % | {row['pooled_rel_error']:.1e} | "
              f"{row['cosine_tau_mean']:.4f} | {seconds:.1f} s |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "lists": len(lines), "calib_texts": len(calib),
                                         "calib_tokens": ntok, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
