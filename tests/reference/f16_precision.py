"""Where f16 compute loses precision: the engine's `score --dtype f16` arithmetic (CPU, burn's
flex backend) emulated in PyTorch, with switches that keep one kind of intermediate in f32.

    "$VENV/bin/python" tests/reference/f16_precision.py --model CHECKPOINT --input lists.jsonl \
        [--limit 40] [--long-lists 4] [--policies "engine;score+logit;list"] [--threads 1] [--json OUT]

What the engine does in f16 (read off crate/src/model/ and burn-flex 0.22.1, gemm-f16 0.19), and
what the emulator therefore does (f32 arithmetic, `round` = a round trip through float16):

- every parameter is f16 (the f32 checkpoint cast at load);
- matmul (`gemm` f16, x86 FMA path): operands widened to f32, products accumulated in f32, the
  result rounded to f16 once; but the depth is cut in blocks of kc (1024 on a 48 KiB 12-way L1
  data cache: K = 1536 -> 2 x 768, 1344 -> 2 x 672) and each block's partial sum goes through
  the f16 output (`dst = f16(f16(dst) + block)`). A one-column output (linear_score1) takes the
  row-major gemv, f32 throughout;
- Linear = matmul then a separate bias add: two roundings (`burn::nn::Linear`, default
  `linear`: `float_matmul` then `float_add`);
- elementwise adds (embedding sums, tag add, residuals) round to f16;
- LayerNorm: widened to f32 (`burn-nn` `accumulation_dtype`, flex `layer_norm_f32`), rounded;
- GELU (erf), sigmoid: per element in f32 from the f16 input, rounded; relu exact;
- attention (`burn::tensor::module::attention`, flex `dispatch_attention_dtype`): q, k, v widened
  to f32, scores, scale, mask, softmax and the product with v all in f32, the context rounded
  once; the list query row's context is v's row 0 (exact);
- mean pooling in f32 over the f16 last hidden state, then the pooled features are cast to f16
  (`ListConRankerModel::encode`), the projection, list transformer and heads run in f16, and the
  scores are read back from the f16 sigmoid output.

Each policy keeps the named sites in f32 (see SITES; a label may be given as 'label=policy');
`engine` keeps none, `all` rounds nothing (= an f16 bundle computed in f32), `f32` is f32
weights and activations. Every row is compared against the float64 reference (listconranker_ref.py):
max / mean |score - f64 score| over passages, Kendall's tau-b per list (mean, worst), top-1
agreement, and the pooled features' relative error (mean over texts of
|pooled - pooled_f64| / |pooled_f64|, pooled before the cast to f16). `emulator f64` (no
rounding, f64 weights) checks that the emulator's forward is the reference's.

With `--long-lists N`, N more lists are built from the longest docstrings of the corpus of
docstring_lists.py (passages of at least `--long-min-tokens` tokens, truncated at 512) and
reported in a second table.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listconranker_ref as ref  # noqa: E402
import quant_layers as ql  # noqa: E402
from quant_layers import compare  # noqa: E402

# Sites a policy may keep in f32 (a policy is a '+'-joined list of these; 'enc:SITE' / 'list:SITE'
# keep a site in the encoder / in the part after pooling only).
SITES = {
    "emb": "embedding sums (words + token type + position; the list's tag add)",
    "qkv": "Q/K/V projection outputs (matmul and bias add)",
    "attn": "attention context (the op's one f16 rounding)",
    "dense": "output projections before the residual (attention output dense, FFN output, "
             "list out_proj / linear2)",
    "resid": "residual adds (sum into LayerNorm)",
    "bias": "matmul + bias fused: one rounding per Linear instead of two",
    "ffn": "FFN intermediate (linear output and GELU output, the next matmul's input)",
    "ln": "LayerNorm outputs",
    "kchunk": "gemm partial sums between depth blocks",
    "pooled": "pooled features (no cast to f16 before the projection)",
    "heads": "score2 / score3 outputs (a, b)",
    "logit": "linear_score1 output (matmul and bias add)",
    "score": "sigmoid output (the scores read back)",
    "encoder": "every activation of the encoder",
    "list": "every activation after pooling (projection, list transformer, heads)",
    "all": "every activation (f16 weights computed in f32)",
}
# (label, policy): `f32` = f32 weights, nothing rounded; `engine` = nothing kept.
DEFAULT_POLICIES = [
    ("emulator f64 (structure check)", "f64"),
    ("f32 compute", "f32"),
    ("f16 weights computed in f32 (= f16 bundle)", "all"),
    ("f16 compute (engine)", "engine"),
    # one site kept in f32, everywhere it occurs
    ("+ embedding sums", "emb"),
    ("+ Q/K/V outputs", "qkv"),
    ("+ attention context", "attn"),
    ("+ output dense (before residual)", "dense"),
    ("+ residual adds", "resid"),
    ("+ bias fused into matmul", "bias"),
    ("+ FFN intermediate / GELU", "ffn"),
    ("+ LayerNorm outputs", "ln"),
    ("+ gemm partial sums", "kchunk"),
    ("+ pooled features", "pooled"),
    ("+ sigmoid output (scores)", "score"),
    ("+ logit", "logit"),
    ("+ logit, sigmoid", "score+logit"),
    ("+ whole encoder", "encoder"),
    ("+ whole list part (projection, list transformer, heads)", "list"),
    # on top of f32 scores: one list-part site
    ("+ logit, sigmoid, a/b heads", "score+logit+heads"),
    ("+ logit, sigmoid, list LN", "score+logit+list:ln"),
    ("+ logit, sigmoid, list residual path", "score+logit+list:dense+list:resid+list:bias"),
    ("+ logit, sigmoid, list FFN", "score+logit+list:ffn"),
    ("+ logit, sigmoid, list Q/K/V + attention", "score+logit+list:qkv+list:attn"),
    ("+ logit, sigmoid, list tag add", "score+logit+list:emb"),
    ("+ logit, sigmoid, whole encoder", "score+logit+encoder"),
]
ENCODER_SITES = ("emb", "qkv", "attn", "dense", "resid", "bias", "ffn", "ln", "kchunk")
MAX_LENGTH = 512
KC_MAX = 1024  # gemm-common kernel_params: kc_0 (64) * next_pow2(L1 assoc 12 / 1) = 1024


def parse_policy(policy: str) -> tuple[str, frozenset]:
    """-> (mode, kept sites); mode 'f64' | 'f32' | 'f16'."""
    if policy in ("f64", "f32"):
        return policy, frozenset(SITES)
    if policy == "engine":
        return "f16", frozenset()
    kept = frozenset(p.strip() for p in policy.split("+") if p.strip())
    unknown = {k for k in kept if k.split(":", 1)[-1] not in SITES or k.split(":", 1)[0] not in (k, "enc", "list")}
    if unknown:
        raise SystemExit(f"unknown sites {sorted(unknown)}; known: {', '.join(SITES)}")
    return "f16", kept


class Emulator:
    """The engine's forward (crate/src/model/) with a configurable f16 rounding policy."""

    def __init__(self, model: ref.ListConRankerRef, policy: str):
        self.mode, self.kept = parse_policy(policy)
        self.dt = torch.float64 if self.mode == "f64" else torch.float32
        self.f16_weights = self.mode == "f16"
        sd = {}
        for k, v in model.bert.state_dict().items():
            sd["bert." + k] = v
        for k, v in model.linear_in_embedding.state_dict().items():
            sd["proj." + k] = v
        for k, v in model.list_transformer.state_dict().items():
            sd["list." + k] = v
        self.p = {k: self._weight(v) for k, v in sd.items() if v.is_floating_point()}
        c = model.bert.config
        self.heads, self.layers, self.eps = c.num_attention_heads, c.num_hidden_layers, c.layer_norm_eps
        lt = model.list_transformer
        self.list_layers = len(lt.list_transformer.layers)
        self.list_heads = lt.list_transformer.layers[0].self_attn.num_heads

    def _weight(self, v: torch.Tensor) -> torch.Tensor:
        v = v.detach()
        if self.f16_weights:
            v = v.to(torch.float16)
        return v.to(self.dt)

    # ------------------------------------------------------------------ rounding helpers
    def keep(self, part: str, *sites: str) -> bool:
        """`part`: 'encoder' or 'list' (a site may be scoped to one: 'enc:ln', 'list:ln')."""
        if self.mode != "f16" or "all" in self.kept or part in self.kept:
            return True
        scope = "enc:" if part == "encoder" else "list:"
        return any(s in self.kept or scope + s in self.kept for s in sites)

    def r(self, x: torch.Tensor, *sites: str) -> torch.Tensor:
        return x if self.keep(*sites) else x.to(torch.float16).to(self.dt)

    def linear(self, x: torch.Tensor, name: str, part: str, *sites: str, gemv: bool = False) -> torch.Tensor:
        """burn Linear: matmul (f32 accumulation, partials rounded per depth block) rounded,
        then + bias rounded. `sites` keep the whole output in f32."""
        w, b = self.p[name + ".weight"], self.p[name + ".bias"]
        if self.keep(part, *sites):
            return x @ w.T + b
        k = x.shape[-1]
        blocks = 1 if (gemv or k <= KC_MAX) else math.ceil(k / KC_MAX)
        kc = math.ceil(k / blocks)
        acc = None
        for start in range(0, k, kc):
            partial = x[..., start : start + kc] @ w[:, start : start + kc].T
            acc = partial if acc is None else acc + partial
            if start + kc < k:  # the block's sum is stored in the f16 output
                acc = self.r(acc, part, "kchunk")
        if self.keep(part, "bias"):
            return self.r(acc + b, part)
        return self.r(self.r(acc, part) + b, part)

    def layer_norm(self, x: torch.Tensor, name: str, eps: float, part: str) -> torch.Tensor:
        y = torch.nn.functional.layer_norm(x, x.shape[-1:], self.p[name + ".weight"], self.p[name + ".bias"], eps)
        return self.r(y, part, "ln")

    def attention(self, q, k, v, heads: int, key_pad: torch.Tensor, part: str, query_row_alone: bool):
        """q, k, v [B, S, H] (already rounded as the policy says); key_pad [B, S] True = pad.
        In f32 (f64 in f64 mode) as flex does; the context is rounded once."""
        bsz, seq, dim = q.shape
        hd = dim // heads
        split = lambda t: t.reshape(bsz, seq, heads, hd).transpose(1, 2)  # noqa: E731
        qh, kh, vh = split(q), split(k), split(v)
        scores = (qh @ kh.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        scores = scores.masked_fill(key_pad[:, None, None, :], float("-inf"))
        ctx = torch.softmax(scores, dim=-1) @ vh
        if query_row_alone:
            ctx[:, :, 0, :] = vh[:, :, 0, :]
        ctx = ctx.transpose(1, 2).reshape(bsz, seq, dim)
        return self.r(ctx, part, "attn")

    def gelu(self, x: torch.Tensor, part: str) -> torch.Tensor:
        return self.r(torch.nn.functional.gelu(x), part, "ffn")

    # ------------------------------------------------------------------ encoder
    @torch.no_grad()
    def encode(self, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """ids [B, S] (0-padded), real [B, S] bool -> pooled [B, hidden] (before any f16 cast)."""
        P, E = self.p, "encoder"
        seq = ids.shape[1]
        e = "bert.embeddings."
        x = self.r(P[e + "word_embeddings.weight"][ids] + P[e + "token_type_embeddings.weight"][0], E, "emb")
        x = self.r(x + P[e + "position_embeddings.weight"][:seq], E, "emb")
        x = self.layer_norm(x, e + "LayerNorm", self.eps, E)
        pad = ~real
        for n in range(self.layers):
            l = f"bert.encoder.layer.{n}."
            q = self.linear(x, l + "attention.self.query", E, "qkv")
            k = self.linear(x, l + "attention.self.key", E, "qkv")
            v = self.linear(x, l + "attention.self.value", E, "qkv")
            ctx = self.attention(q, k, v, self.heads, pad, E, False)
            y = self.linear(ctx, l + "attention.output.dense", E, "dense")
            x = self.layer_norm(self.r(y + x, E, "resid"), l + "attention.output.LayerNorm", self.eps, E)
            inner = self.gelu(self.linear(x, l + "intermediate.dense", E, "ffn"), E)
            y = self.linear(inner, l + "output.dense", E, "dense")
            x = self.layer_norm(self.r(y + x, E, "resid"), l + "output.LayerNorm", self.eps, E)
        # Pooling in f32 (f64 in f64 mode) over the stored hidden state.
        m = real.to(self.dt)[..., None]
        return (x * m).sum(1) / m.sum(1)

    # ------------------------------------------------------------------ list part
    @torch.no_grad()
    def score_list(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled [n+1, hidden] of one list (query first) -> scores [n]."""
        L = "list"
        x = self.r(pooled.to(self.dt), L, "pooled")
        feats = self.linear(x, "proj", L)[None]  # [1, S, D]
        seq = feats.shape[1]
        tags = torch.zeros(seq, dtype=torch.long)
        tags[0] = 1
        qe = "list.query_embedding."
        x = self.r(feats + self.p[qe + "query_embedding.weight"][tags][None], L, "emb")
        x = self.layer_norm(x, qe + "layerNorm", 1e-5, L)
        pad = torch.zeros(1, seq, dtype=torch.bool)
        dim = x.shape[-1]
        for n in range(self.list_layers):
            l = f"list.list_transformer.layers.{n}."
            w, b = self.p[l + "self_attn.in_proj_weight"], self.p[l + "self_attn.in_proj_bias"]
            self.p["_qkv.weight"], self.p["_qkv.bias"] = w, b
            qkv = self.linear(x, "_qkv", L, "qkv")
            q, k, v = qkv[..., :dim], qkv[..., dim : 2 * dim], qkv[..., 2 * dim :]
            ctx = self.attention(q, k, v, self.list_heads, pad, L, True)
            y = self.linear(ctx, l + "self_attn.out_proj", L, "dense")
            x = self.layer_norm(self.r(x + y, L, "resid"), l + "norm1", 1e-5, L)
            inner = self.gelu(self.linear(x, l + "linear1", L, "ffn"), L)
            y = self.linear(inner, l + "linear2", L, "dense")
            x = self.layer_norm(self.r(x + y, L, "resid"), l + "norm2", 1e-5, L)
        n = seq - 1
        pair = lambda t: torch.cat([t[:, :1].expand(-1, n, -1), t[:, 1:]], dim=-1)  # noqa: E731
        a = torch.relu(self.linear(pair(feats), "list.linear_score2", L, "heads"))
        bb = torch.relu(self.linear(pair(x), "list.linear_score3", L, "heads"))
        logits = self.linear(torch.cat([a, bb], dim=-1), "list.linear_score1", L, "logit", gemv=True)
        return self.r(torch.sigmoid(logits), L, "score")[0, :, 0]


# ---------------------------------------------------------------------- driving
def token_ids(model: ref.ListConRankerRef, texts: list[str]) -> dict[str, list[int]]:
    return dict(zip(texts, model.tokenize(texts, MAX_LENGTH)))


def batches(ids: dict[str, list[int]], max_tokens: int = 8192, max_texts: int = 64):
    order = sorted(ids, key=lambda t: len(ids[t]))
    batch: list[str] = []
    for t in order:
        if batch and ((len(batch) + 1) * len(ids[t]) > max_tokens or len(batch) >= max_texts):
            yield batch
            batch = []
        batch.append(t)
    if batch:
        yield batch


@torch.no_grad()
def encode_all(emu: Emulator, ids: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    out = {}
    for batch in batches(ids):
        longest = max(len(ids[t]) for t in batch)
        tok = torch.zeros(len(batch), longest, dtype=torch.long)
        real = torch.zeros(len(batch), longest, dtype=torch.bool)
        for r, t in enumerate(batch):
            tok[r, : len(ids[t])] = torch.tensor(ids[t])
            real[r, : len(ids[t])] = True
        pooled = emu.encode(tok, real)
        for r, t in enumerate(batch):
            out[t] = pooled[r]
    return out


def reference_f64(model: ref.ListConRankerRef, lists) -> tuple[dict, list[np.ndarray]]:
    """The float64 reference's pooled features and scores (quant_layers.py's encoding)."""
    texts = sorted({t for lst in lists for t in lst})
    pooled = ql.encode_all(model, texts, MAX_LENGTH)
    return pooled, ql.scores_from_pooled(model, lists, pooled)


def long_lists(model: ref.ListConRankerRef, count: int, passages: int, min_tokens: int, seed: int) -> list[list[str]]:
    """`count` lists of `passages` long docstrings (>= min_tokens tokens before truncation)."""
    import docstring_lists as dl

    entries = dl.corpus()
    lengths = model.tokenize([e["doc"] for e in entries], max_length=100_000)
    longs = [e for e, t in zip(entries, lengths) if len(t) >= min_tokens]
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        chosen = rng.sample(longs, min(passages, len(longs)))
        query = chosen[0]["doc"].split("\n", 1)[0].strip()
        rng.shuffle(chosen)
        out.append([query] + [e["doc"] for e in chosen])
    return out


def run_set(title: str, model64: ref.ListConRankerRef, model32: ref.ListConRankerRef, lists, policies, rows_out: dict):
    texts = sorted({t for lst in lists for t in lst})
    ids = token_ids(model64, texts)
    n_tok = [len(ids[t]) for t in texts]
    t0 = time.time()
    pooled64, scores64 = reference_f64(model64, lists)
    spread = float(np.median([np.std(s) for s in scores64]))
    print(f"### {title}\n")
    print(f"{len(lists)} lists, {sum(len(l) - 1 for l in lists)} passages, {len(texts)} distinct texts "
          f"({np.mean(n_tok):.0f} tokens on average, {sum(n >= MAX_LENGTH for n in n_tok)} truncated at "
          f"{MAX_LENGTH}); f64 score: median {np.median(np.concatenate(scores64)):.3f}, std within a list "
          f"(median) {spread:.2e}; reference {time.time() - t0:.0f} s\n")
    print("| policy | kept in f32 | max abs diff | mean abs diff | tau mean | tau worst | top-1 | pooled rel. error |")
    print("|---|---|---|---|---|---|---|---|")
    cache: dict = {}
    rows = {}
    for label, policy in policies:
        emu = Emulator(model32 if policy != "f64" else model64, policy)
        # The encoder's result depends only on the mode and on the sites it reads.
        enc_key = (emu.mode, True) if emu.keep("encoder") else (
            emu.mode, tuple(sorted(s for s in ENCODER_SITES if emu.keep("encoder", s))))
        if enc_key not in cache:
            cache[enc_key] = encode_all(emu, ids)
        pooled = cache[enc_key]
        scores = [emu.score_list(torch.stack([pooled[t] for t in lst])).double().numpy() for lst in lists]
        row = compare(scores64, scores)
        rel = [float((pooled[t].double() - pooled64[t]).norm() / pooled64[t].norm()) for t in texts]
        row["pooled_rel_error"] = float(np.mean(rel))
        rows[label] = {"policy": policy, **row}
        print(f"| {label} | {policy} | {row['max_abs_diff']:.1e} | {row['mean_abs_diff']:.1e} | "
              f"{row['tau_mean']:.4f} | {row['tau_min']:.4f} | {100 * row['top1']:.1f} % | "
              f"{row['pooled_rel_error']:.1e} |", flush=True)
    print()
    rows_out[title] = {"lists": len(lists), "score_std_median": spread, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, type=Path, help="JSON Lines of [query, passage, ...]")
    ap.add_argument("--limit", type=int, default=40, help="first N lists of --input")
    ap.add_argument("--policies", default="default",
                    help="'default', or 'label=policy;...' / 'policy;...' (policy: f64, f32, engine, or "
                         "sites joined with '+': " + ", ".join(SITES) + ")")
    ap.add_argument("--long-lists", type=int, default=4, help="extra lists of long docstrings (0: none)")
    ap.add_argument("--long-passages", type=int, default=20)
    ap.add_argument("--long-min-tokens", type=int, default=300)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.policies == "default":
        policies = DEFAULT_POLICIES
    else:
        policies = []
        for item in args.policies.split(";"):
            if item.strip():
                label, _, policy = item.rpartition("=")
                policies.append((label.strip() or policy.strip(), policy.strip()))
        for _, p in policies:
            parse_policy(p)
    lines = [json.loads(l) for l in args.input.read_text(encoding="utf-8").splitlines() if l.strip()][: args.limit]
    model64 = ref.load(args.model, torch.float64)
    model32 = ref.load(args.model, torch.float32)
    rows: dict = {}
    run_set(f"{args.input.name}, first {len(lines)} lists", model64, model32, lines, policies, rows)
    if args.long_lists > 0:
        longs = long_lists(model64, args.long_lists, args.long_passages, args.long_min_tokens, args.seed)
        run_set(f"long docstrings (>= {args.long_min_tokens} tokens, truncated at {MAX_LENGTH})",
                model64, model32, longs, policies, rows)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "sets": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
