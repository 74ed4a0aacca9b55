"""Reference ranking metrics over one query: a 0/1 relevance list and a score list.

Two tie semantics, both used by published C-MTEB reranking figures:

* ``mteb1``: AP = scikit-learn ``average_precision_score(relevant, scores)`` (tied scores form
  one threshold: a tied block counts with the precision at its end); MRR@k from the ranks of a
  stable descending sort (ties keep input order).
* ``mteb2``: AP = pytrec_eval ``map_cut_1000`` with ties broken negatives-first (the
  pessimistic order: among equal scores every non-relevant passage ranks before every relevant
  one); MRR@k from the same negatives-first order.

MRR@k = 1 / rank of the first relevant passage if that rank <= k, else 0.

Hand-checked vectors (also run by ``python metrics_ref.py``):

1. no ties: relevant [1, 0, 0, 1], scores [4, 3, 2, 1]: relevant at ranks 1 and 4,
   AP = (1/1 + 2/4) / 2 = 0.75, MRR@1 = MRR@10 = 1 (both semantics);
2. five tied, two relevant: relevant [1, 0, 0, 1, 0], scores [0.5] * 5:
   mteb1 AP = 2/5 = 0.40 (one threshold), stable order puts a relevant first: MRR@1 = MRR@10 = 1;
   mteb2 ranks the relevant ones 4 and 5: AP = (1/4 + 2/5) / 2 = 0.325, MRR@1 = 0, MRR@10 = 0.25;
3. a relevant passage tied with the top non-relevant one: relevant [1, 0, 0],
   scores [0.9, 0.9, 0.1]: mteb1 AP 0.5, MRR@1 1, MRR@10 1; mteb2 AP 0.5, MRR@1 0, MRR@10 0.5.

``write_fixture(path)`` writes tests/fixtures/metrics.json: these vectors and 1000 seeded random
cases (lengths 2..40, scores drawn from {0, 1/8, ..., 1} so that ties are frequent, at least one
relevant and one non-relevant passage each).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

KS = (1, 5, 10)


def _mrr(order, relevant) -> dict:
    first = next(r for r, i in enumerate(order, start=1) if relevant[i])
    return {f"mrr_{k}": (1.0 / first if first <= k else 0.0) for k in KS}


def mteb1(relevant, scores) -> dict:
    from sklearn.metrics import average_precision_score

    ap = float(average_precision_score(list(relevant), list(scores)))
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable
    return {"ap": ap, **_mrr(order, relevant)}


def _docid(i: int, rel: int) -> str:
    # trec_eval orders equal scores by document id, descending. Relevant ids start with "a",
    # non-relevant ones with "b": among equal scores the non-relevant come first.
    return f"{'a' if rel else 'b'}{i:05d}"


def mteb2(relevant, scores) -> dict:
    import pytrec_eval

    qrel = {"q": {_docid(i, r): int(r) for i, r in enumerate(relevant)}}
    run = {"q": {_docid(i, r): float(s) for i, (r, s) in enumerate(zip(relevant, scores))}}
    res = pytrec_eval.RelevanceEvaluator(qrel, {"map_cut.1000", "recip_rank"}).evaluate(run)["q"]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], relevant[i]))  # negatives first
    out = {"ap": float(res["map_cut_1000"]), **_mrr(order, relevant)}
    # pytrec_eval's own reciprocal rank (no cut-off) must agree with the negatives-first order.
    first = next(r for r, i in enumerate(order, start=1) if relevant[i])
    assert abs(res["recip_rank"] - 1.0 / first) < 1e-12, (relevant, scores, res)
    # ... and so must a plain AP over that order.
    hits, total = 0, 0.0
    for r, i in enumerate(order, start=1):
        if relevant[i]:
            hits += 1
            total += hits / r
    assert abs(out["ap"] - total / hits) < 1e-12, (relevant, scores, out)
    return out


HAND_CASES = [
    {"name": "no_ties", "relevant": [1, 0, 0, 1], "scores": [4.0, 3.0, 2.0, 1.0],
     "mteb1": {"ap": 0.75, "mrr_1": 1.0, "mrr_10": 1.0}, "mteb2": {"ap": 0.75, "mrr_1": 1.0, "mrr_10": 1.0}},
    {"name": "five_tied_two_relevant", "relevant": [1, 0, 0, 1, 0], "scores": [0.5] * 5,
     "mteb1": {"ap": 0.40, "mrr_1": 1.0, "mrr_10": 1.0}, "mteb2": {"ap": 0.325, "mrr_1": 0.0, "mrr_10": 0.25}},
    {"name": "relevant_tied_with_top_negative", "relevant": [1, 0, 0], "scores": [0.9, 0.9, 0.1],
     "mteb1": {"ap": 0.5, "mrr_1": 1.0, "mrr_10": 1.0}, "mteb2": {"ap": 0.5, "mrr_1": 0.0, "mrr_10": 0.5}},
]


def self_test() -> None:
    for case in HAND_CASES:
        for sem, fn in (("mteb1", mteb1), ("mteb2", mteb2)):
            got = fn(case["relevant"], case["scores"])
            for key, want in case[sem].items():
                if abs(got[key] - want) > 1e-12:
                    raise AssertionError(f"{case['name']} {sem} {key}: got {got[key]}, want {want}")


def random_cases(n_cases: int = 1000, seed: int = 20240303) -> list[dict]:
    rng = random.Random(seed)
    values = [k / 8 for k in range(9)]
    cases = []
    for _ in range(n_cases):
        n = rng.randint(2, 40)
        p_rel = rng.choice([0.1, 0.25, 0.5])
        relevant = [1 if rng.random() < p_rel else 0 for _ in range(n)]
        if all(relevant):
            relevant[rng.randrange(n)] = 0
        if not any(relevant):
            relevant[rng.randrange(n)] = 1
        nvals = rng.choice([2, 3, 5, 9])
        pool = rng.sample(values, nvals)
        scores = [rng.choice(pool) for _ in range(n)]
        cases.append({"relevant": relevant, "scores": scores})
    return cases


def write_fixture(path: Path) -> None:
    self_test()
    cases = []
    for c in [dict(relevant=h["relevant"], scores=h["scores"], name=h["name"]) for h in HAND_CASES] + random_cases():
        entry = {}
        if "name" in c:
            entry["name"] = c["name"]
        entry.update({"relevant": c["relevant"], "scores": c["scores"],
                      "mteb1": mteb1(c["relevant"], c["scores"]), "mteb2": mteb2(c["relevant"], c["scores"])})
        cases.append(entry)
    doc = {
        "semantics": {
            "mteb1": "AP: sklearn average_precision_score (tied scores = one threshold); "
                     "MRR@k: ranks of a stable descending sort (ties keep input order)",
            "mteb2": "AP: pytrec_eval map_cut_1000 with ties broken non-relevant first; "
                     "MRR@k: same non-relevant-first order",
            "mrr_k": "1 / rank of the first relevant passage if rank <= k else 0",
        },
        "cases": cases,
    }
    lines = [json.dumps(c, separators=(", ", ": ")) for c in cases]
    head = json.dumps(doc["semantics"], indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"semantics": ' + head + ',\n"cases": [\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    self_test()
    print("metrics self-test passed")
