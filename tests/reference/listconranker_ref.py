"""PyTorch reference implementation of ListConRanker (inference only).

Follows the project's model specification (MODEL.md) number for number:

  1. every text (query and passages) is encoded on its own by a HuggingFace ``BertModel``:
     ``[CLS] text [SEP]``, truncated to ``max_length`` tokens, padded to the longest text of the
     chunk, token_type_ids 0, then mean-pooled over real tokens;
  2. ``linear_in_embedding`` projects hidden -> D;
  3. the ListTransformer: query tag embedding + LayerNorm, L post-norm
     ``nn.TransformerEncoderLayer`` layers with the ListAttention masks (the query row attends
     only to itself, pads are never attended to), then the three score heads
     ``a_i = relu(linear_score2([q0, p_i]))`` (features before the ListTransformer),
     ``b_i = relu(linear_score3([q0', p_i']))`` (after it),
     ``score_i = sigmoid(linear_score1([a_i, b_i]))``;
  4. iterative inference for long lists.

One rule on top of MODEL.md (the Rust port applies it too): within one list, passages with
identical text get exactly the score of their first occurrence.

Usage::

    import torch, listconranker_ref as ref
    model = ref.load("tests/fixtures/models/zh-tiny", torch.float64)
    model.compute_score([["query", "passage 1", "passage 2"]])
    model.iterative_inference(["query"] + passages)
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# Texts are encoded in chunks of this many (as the original inference code does).
ENCODE_CHUNK = 400
# Iterative inference: lists longer than this are reduced round by round.
ITERATIVE_MAX_LIST = 20


class QueryEmbedding(nn.Module):
    """Adds a learned tag (1 = query at position 0, 0 elsewhere) and applies LayerNorm."""

    def __init__(self, dim: int):
        super().__init__()
        self.query_embedding = nn.Embedding(2, dim)
        self.layerNorm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        return self.layerNorm(x + self.query_embedding(tags))


class ListTransformer(nn.Module):
    """The listwise part: QueryEmbedding, L encoder layers with ListAttention masks, heads."""

    def __init__(self, dim: int, nhead: int, dim_feedforward: int, num_layers: int):
        super().__init__()
        self.dim = dim
        self.query_embedding = QueryEmbedding(dim)
        # Template layer (unused at inference; nn.TransformerEncoder deep-copies it).
        self.list_transformer_layer = nn.TransformerEncoderLayer(
            dim,
            nhead,
            dim_feedforward=dim_feedforward,
            dropout=0.1,
            activation=F.gelu,
            batch_first=True,
            norm_first=False,
        )
        self.list_transformer = nn.TransformerEncoder(
            self.list_transformer_layer, num_layers, enable_nested_tensor=False
        )
        self.linear_score3 = nn.Linear(dim * 2, dim)
        self.linear_score2 = nn.Linear(dim * 2, dim)
        self.linear_score1 = nn.Linear(dim * 2, 1)

    @staticmethod
    def masks(lengths: Sequence[int], device=None):
        """ListAttention masks for lists of ``lengths`` (query included), True = blocked.

        Returns (attn_mask [S, S], key_padding_mask [B, S], tags [B, S])."""
        seq = max(lengths)
        attn_mask = torch.zeros(seq, seq, dtype=torch.bool, device=device)
        attn_mask[0, 1:] = True  # the query row attends only to itself
        key_padding_mask = torch.zeros(len(lengths), seq, dtype=torch.bool, device=device)
        for i, n in enumerate(lengths):
            key_padding_mask[i, n:] = True
        tags = torch.zeros(len(lengths), seq, dtype=torch.long, device=device)
        tags[:, 0] = 1
        return attn_mask, key_padding_mask, tags

    def forward(self, feats: torch.Tensor, lengths: Sequence[int], return_debug: bool = False):
        """feats: [B, S, D] padded list features (row 0 = query); lengths: real rows per list.

        Returns the logits [B, S-1] (entries past a list's length are meaningless)."""
        attn_mask, kpm, tags = self.masks(lengths, feats.device)
        x = self.query_embedding(feats, tags)
        debug = {"list_in": x}
        if return_debug:
            layer_outs = []
            h = x
            for layer in self.list_transformer.layers:
                h = layer(h, src_mask=attn_mask, src_key_padding_mask=kpm)
                layer_outs.append(h)
            out = h
            debug["layer_outs"] = layer_outs
        else:
            out = self.list_transformer(x, mask=attn_mask, src_key_padding_mask=kpm)
        n = feats.shape[1] - 1
        q_pre = feats[:, :1, :].expand(-1, n, -1)
        q_post = out[:, :1, :].expand(-1, n, -1)
        a = F.relu(self.linear_score2(torch.cat([q_pre, feats[:, 1:, :]], dim=-1)))
        b = F.relu(self.linear_score3(torch.cat([q_post, out[:, 1:, :]], dim=-1)))
        logits = self.linear_score1(torch.cat([a, b], dim=-1)).squeeze(-1)
        if return_debug:
            debug.update({"list_out": out, "a": a, "b": b, "logits": logits})
            return logits, debug
        return logits


class ListConRankerRef(nn.Module):
    """BertModel encoder + linear_in_embedding + ListTransformer."""

    def __init__(self, bert_config, dim: int, dim_feedforward: int, num_list_layers: int, nhead=None):
        super().__init__()
        from transformers import BertModel

        bert_config._attn_implementation = "eager"
        self.bert = BertModel(bert_config, add_pooling_layer=False)
        self.linear_in_embedding = nn.Linear(bert_config.hidden_size, dim)
        if nhead is None:
            nhead = bert_config.num_attention_heads
        self.list_transformer = ListTransformer(dim, nhead, dim_feedforward, num_list_layers)
        self.tokenizer = None

    @property
    def dtype(self) -> torch.dtype:
        return self.linear_in_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.linear_in_embedding.weight.device

    # ---------------------------------------------------------------- encoder
    def tokenize(self, texts: Sequence[str], max_length: int = 512):
        """Token ids of each text alone: [CLS] text [SEP], truncated to max_length (unpadded)."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        return [list(ids) for ids in enc["input_ids"]]

    @torch.no_grad()
    def encode(self, texts: Sequence[str], max_length: int = 512) -> torch.Tensor:
        """Mean-pooled last hidden state of each text, [len(texts), hidden]."""
        out = []
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = list(texts[start : start + ENCODE_CHUNK])
            enc = self.tokenizer(
                chunk, truncation=True, max_length=max_length, padding="longest", return_tensors="pt"
            )
            input_ids = enc["input_ids"].to(self.device)
            mask = enc["attention_mask"].to(self.device)
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * m).sum(dim=1) / m.sum(dim=1))
        return torch.cat(out, dim=0)

    # ---------------------------------------------------------------- scoring
    @torch.no_grad()
    def _logits(self, batch: Sequence[Sequence[str]], max_length: int = 512, return_debug=False):
        for lst in batch:
            if len(lst) < 2:
                raise ValueError("a list needs a query and at least one passage")
        texts = [t for lst in batch for t in lst]
        pooled = self.encode(texts, max_length)
        projected = self.linear_in_embedding(pooled)
        lengths = [len(lst) for lst in batch]
        seq = max(lengths)
        feats = projected.new_zeros(len(batch), seq, projected.shape[-1])
        offset = 0
        for i, n in enumerate(lengths):
            feats[i, :n] = projected[offset : offset + n]
            offset += n
        res = self.list_transformer(feats, lengths, return_debug=return_debug)
        if return_debug:
            logits, debug = res
            debug.update({"pooled": pooled, "projected": projected})
            return logits, lengths, debug
        return res, lengths

    @torch.no_grad()
    def compute_score(self, batch: Sequence[Sequence[str]], max_length: int = 512) -> list[list[float]]:
        """One score in (0, 1) per passage of every list [query, p1, ..., pn], in input order."""
        logits, lengths = self._logits(batch, max_length)
        probs = torch.sigmoid(logits)
        result = []
        for i, lst in enumerate(batch):
            scores = [float(v) for v in probs[i, : lengths[i] - 1].tolist()]
            first = {}
            for j, text in enumerate(lst[1:]):
                if text in first:
                    scores[j] = scores[first[text]]  # identical passages: identical score
                else:
                    first[text] = j
            result.append(scores)
        return result

    @torch.no_grad()
    def iterative_inference(self, lst: Sequence[str], max_length: int = 512, trace: list | None = None) -> list[float]:
        """MODEL.md section 4. ``trace``, when given, receives one dict per round."""
        query, passages = lst[0], list(lst[1:])
        remaining = list(range(len(passages)))
        final: list[float | None] = [None] * len(passages)
        rnd = 0
        while len(remaining) > ITERATIVE_MAX_LIST:
            s = self.compute_score([[query] + [passages[i] for i in remaining]], max_length)[0]
            order = sorted(range(len(remaining)), key=lambda j: s[j])  # stable ascending
            n = len(remaining)
            k = max(math.ceil(0.2 * n), 10)
            k0 = k
            while k < n and s[order[k]] == s[order[k - 1]]:
                k += 1  # ties leave together
            for j in order[:k]:
                final[remaining[j]] = s[j] + rnd
            if trace is not None:
                trace.append(
                    {"round": rnd, "n": n, "k": k0, "k_extended": k,
                     "sorted": [s[j] for j in order], "remaining": list(remaining), "scores": s}
                )
            remaining = [remaining[j] for j in order[k:]]
            rnd += 1
        if remaining:
            s = self.compute_score([[query] + [passages[i] for i in remaining]], max_length)[0]
            for j, idx in enumerate(remaining):
                final[idx] = s[j] + rnd
            if trace is not None:
                order = sorted(range(len(remaining)), key=lambda j: s[j])
                trace.append(
                    {"round": rnd, "n": len(remaining), "k": None, "k_extended": None,
                     "sorted": [s[j] for j in order], "remaining": list(remaining), "scores": s}
                )
        return [float(v) for v in final]


# -------------------------------------------------------------------- loading
def _strip_bert_state(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k.startswith("bert."):
            k = k[len("bert."):]
        if k.startswith("pooler.") or k == "embeddings.position_ids":
            continue
        out[k] = v
    return out


def load_bert_state(model_dir: str) -> dict:
    st = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(st):
        from safetensors.torch import load_file

        sd = load_file(st)
    else:
        sd = torch.load(os.path.join(model_dir, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    return _strip_bert_state(sd)


def load(model_dir: str, dtype: torch.dtype = torch.float64, device: str = "cpu") -> ListConRankerRef:
    """Loads the split layout: config.json, tokenizer files, model.safetensors or
    pytorch_model.bin (optional ``bert.`` prefix, ``pooler.*`` ignored), linear_in_embedding.pt,
    list_transformer.pt. Sizes are read from the files."""
    from transformers import AutoTokenizer, BertConfig

    config = BertConfig.from_pretrained(model_dir)
    lin = torch.load(os.path.join(model_dir, "linear_in_embedding.pt"), map_location="cpu", weights_only=True)
    lt = torch.load(os.path.join(model_dir, "list_transformer.pt"), map_location="cpu", weights_only=True)
    dim = lin["weight"].shape[0]
    dim_ff = lt["list_transformer.layers.0.linear1.weight"].shape[0]
    num_layers = 1 + max(
        int(k.split(".")[2]) for k in lt if k.startswith("list_transformer.layers.")
    )
    model = ListConRankerRef(config, dim, dim_ff, num_layers)
    model.bert.load_state_dict(load_bert_state(model_dir), strict=True)
    model.linear_in_embedding.load_state_dict(lin, strict=True)
    model.list_transformer.load_state_dict(lt, strict=True)
    model.tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model.to(device=device, dtype=dtype)
    model.eval()
    return model
