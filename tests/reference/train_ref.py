"""PyTorch reference of ListConRanker training steps: Circle loss over each list's scores, one
backward pass, then AdamW steps, for the parity test of the Rust trainer (crate/tests/train.rs).

Reads a JSON case on stdin:

    {"model": DIR, "stage": 1 | 2, "lists": [{"texts": [query, p1, ...], "positive": [bool, ...]}],
     "margin": m, "gamma": g, "lr": lr, "weight_decay": wd, "betas": [b1, b2], "eps": eps,
     "max_grad_norm": clip or null, "steps": N, "max_length": 512}

and writes JSON on stdout:

    {"loss": the loss before any step, "losses": [loss at each step],
     "grads": {key: [values]} of the first backward pass (before clipping),
     "params": {key: [values]} after N steps}

keyed by the checkpoint's names (`linear_in_embedding.weight`, `list_transformer.layers.0.
self_attn.in_proj_weight`, `linear_score1.bias`, ... and in stage two `embeddings.word_embeddings.
weight`, `encoder.layer.0....`), values flattened in PyTorch's layout. Computed in float64 so that
the reference's own rounding is far below the test's tolerance.

Stage one: the encoder is frozen (its pooled features computed once, without gradient), only
`linear_in_embedding`, the list transformer and the score heads train. Stage two: everything.
Dropout is off (the module in eval mode) so that both sides compute the same function; the
published code trains with the list transformer's dropout 0.1, which no two implementations
draw alike.

Circle loss (Sun et al., CVPR 2020) on scores s in (0, 1), per list with positives s_p and
negatives s_n:
    alpha_p = relu(1 + m - s_p), alpha_n = relu(s_n + m)   (no gradient through the alphas)
    loss = softplus(logsumexp(gamma * alpha_n * (s_n - m)) + logsumexp(-gamma * alpha_p * (s_p - 1 + m)))
averaged over the lists.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F

import listconranker_ref as ref


def circle_loss(scores: torch.Tensor, positive: list[bool], margin: float, gamma: float) -> torch.Tensor:
    pos = torch.tensor(positive, dtype=torch.bool)
    s_p, s_n = scores[pos], scores[~pos]
    alpha_p = torch.relu(1 + margin - s_p).detach()
    alpha_n = torch.relu(s_n + margin).detach()
    logit_p = -gamma * alpha_p * (s_p - 1 + margin)
    logit_n = gamma * alpha_n * (s_n - margin)
    return F.softplus(torch.logsumexp(logit_n, 0) + torch.logsumexp(logit_p, 0))


def trained_parameters(model: ref.ListConRankerRef, stage: int) -> dict[str, torch.nn.Parameter]:
    """The parameters a stage trains, by their checkpoint names. The list transformer's template
    layer (`list_transformer_layer.*`, saved by the original but never run) gets no gradient
    and is left out."""
    params = {f"linear_in_embedding.{k}": p for k, p in model.linear_in_embedding.named_parameters()}
    for k, p in model.list_transformer.named_parameters():
        if not k.startswith("list_transformer_layer."):
            params[k] = p
    if stage == 2:
        params.update({k: p for k, p in model.bert.named_parameters()})
    return params


def scores_of(model: ref.ListConRankerRef, lists: list[dict], stage: int, pooled_cache, max_length: int):
    texts = [t for item in lists for t in item["texts"]]
    if stage == 1:
        pooled = pooled_cache
    else:
        pooled = pooled_with_grad(model, texts, max_length)
    projected = model.linear_in_embedding(pooled)
    lengths = [len(item["texts"]) for item in lists]
    seq = max(lengths)
    rows = []
    offset = 0
    for n in lengths:
        part = projected[offset : offset + n]
        rows.append(torch.cat([part, part.new_zeros(seq - n, part.shape[-1])], 0))
        offset += n
    feats = torch.stack(rows, 0)
    logits = model.list_transformer(feats, lengths)
    return torch.sigmoid(logits), lengths


def pooled_with_grad(model: ref.ListConRankerRef, texts: list[str], max_length: int) -> torch.Tensor:
    """`encode` without no_grad: each text padded to the longest, mean-pooled."""
    enc = model.tokenizer(texts, truncation=True, max_length=max_length, padding="longest", return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    hidden = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1)


def loss_of(model, case, pooled_cache):
    scores, lengths = scores_of(model, case["lists"], case["stage"], pooled_cache, case.get("max_length", 512))
    losses = [
        circle_loss(scores[i, : n - 1], item["positive"], case["margin"], case["gamma"])
        for i, (item, n) in enumerate(zip(case["lists"], lengths))
    ]
    return torch.stack(losses).mean()


def main() -> None:
    case = json.load(sys.stdin)
    torch.manual_seed(0)
    model = ref.load(case["model"], torch.float64)
    model.eval()  # dropout off
    stage = case["stage"]
    for p in model.parameters():
        p.requires_grad_(False)
    params = trained_parameters(model, stage)
    for p in params.values():
        p.requires_grad_(True)
    pooled_cache = None
    if stage == 1:
        with torch.no_grad():
            texts = [t for item in case["lists"] for t in item["texts"]]
            pooled_cache = model.encode(texts, case.get("max_length", 512))
    b1, b2 = case["betas"]
    optim = torch.optim.AdamW(
        list(params.values()), lr=case["lr"], betas=(b1, b2), eps=case["eps"], weight_decay=case["weight_decay"]
    )
    grads = None
    losses = []
    for step in range(case["steps"]):
        optim.zero_grad()
        loss = loss_of(model, case, pooled_cache)
        loss.backward()
        losses.append(float(loss.detach()))
        if step == 0:
            grads = {k: p.grad.detach().flatten().tolist() for k, p in params.items() if p.grad is not None}
        if case.get("max_grad_norm") is not None:
            torch.nn.utils.clip_grad_norm_(list(params.values()), case["max_grad_norm"])
        optim.step()
    out = {
        "loss": losses[0],
        "losses": losses,
        "grads": grads,
        "params": {k: p.detach().flatten().tolist() for k, p in params.items()},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
