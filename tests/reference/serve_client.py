"""A RAG stack's view of `listconranker serve`: plain `requests` against both rerank API shapes
(text-embeddings-inference's `/rerank`, Cohere / Jina's `/v1/rerank`) and `/v1/score`, with
the answers checked against the PyTorch reference (float64) on the same model.

    python tests/reference/serve_client.py --url http://127.0.0.1:8080 --model DIR [--api-key KEY]

Exits with status 1 and says why when an answer is wrong; prints `ok: ...` otherwise.
`crate/tests/serve.rs` runs it against a server on the zh-tiny fixture.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import requests
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import listconranker_ref as ref  # noqa: E402

QUERY = "什么是机器学习"
DOCUMENTS = [
    "机器学习是人工智能的一个分支。",
    "今天天气很好。",
    "深度学习使用神经网络。",
    "我喜欢吃苹果。",
    "监督学习从标注数据中学习。",
]
TOLERANCE = 1e-5


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--api-key")
    args = ap.parse_args()
    base = args.url.rstrip("/")

    model = ref.load(args.model, torch.float64)
    with torch.no_grad():
        expected = model.compute_score([[QUERY, *DOCUMENTS]])[0]
    order = sorted(range(len(DOCUMENTS)), key=lambda i: -expected[i])

    session = requests.Session()
    if args.api_key:
        session.headers["Authorization"] = f"Bearer {args.api_key}"

    # text-embeddings-inference: a list of {index, score, text}, best first.
    response = session.post(f"{base}/rerank", json={"query": QUERY, "texts": DOCUMENTS, "return_text": True}, timeout=60)
    response.raise_for_status()
    ranks = response.json()
    check([r["index"] for r in ranks] == order, f"/rerank order {[r['index'] for r in ranks]} != {order}")
    for r in ranks:
        check(abs(r["score"] - expected[r["index"]]) <= TOLERANCE, f"/rerank score {r}: reference {expected[r['index']]}")
        check(r["text"] == DOCUMENTS[r["index"]], f"/rerank text {r}")
    raw = session.post(f"{base}/rerank", json={"query": QUERY, "texts": DOCUMENTS, "raw_scores": True}, timeout=60).json()
    best = expected[order[0]]
    check(abs(raw[0]["score"] - math.log(best / (1 - best))) <= 1e-4, f"/rerank raw score {raw[0]}")
    check("text" not in raw[0], "/rerank gave texts it was not asked for")

    # Cohere / Jina: {results: [{index, relevance_score, document}]}, top_n.
    documents = [d if i % 2 == 0 else {"text": d} for i, d in enumerate(DOCUMENTS)]
    response = session.post(
        f"{base}/v1/rerank",
        json={"model": "listconranker", "query": QUERY, "documents": documents, "top_n": 3, "return_documents": True},
        timeout=60,
    )
    response.raise_for_status()
    results = response.json()["results"]
    check([r["index"] for r in results] == order[:3], f"/v1/rerank top 3 {[r['index'] for r in results]} != {order[:3]}")
    for r in results:
        check(abs(r["relevance_score"] - expected[r["index"]]) <= TOLERANCE, f"/v1/rerank score {r}")
        check(r["document"]["text"] == DOCUMENTS[r["index"]], f"/v1/rerank document {r}")

    # This model's own endpoint.
    response = session.post(f"{base}/v1/score", json={"lists": [[QUERY, *DOCUMENTS]]}, timeout=60)
    response.raise_for_status()
    scores = response.json()["scores"][0]
    worst = max(abs(s - e) for s, e in zip(scores, expected, strict=True))
    check(worst <= TOLERANCE, f"/v1/score differs from the reference by {worst}")

    # Errors: the status a client's raise_for_status() sees, and the code in the body.
    response = session.post(f"{base}/v1/rerank", json={"query": QUERY, "documents": []}, timeout=60)
    check(response.status_code == 400, f"empty documents: status {response.status_code}")
    check(response.json().get("code") == "INPUT_INVALID", f"empty documents: {response.text}")
    try:
        response.raise_for_status()
        check(False, "raise_for_status() did not raise on a 400")
    except requests.HTTPError:
        pass
    if args.api_key:
        response = requests.post(f"{base}/v1/score", json={"lists": [[QUERY, "x"]]}, timeout=60)
        check(response.status_code == 401 and response.json().get("code") == "UNAUTHORIZED", f"no key: {response.text}")

    print(f"ok: /rerank, /v1/rerank, /v1/score within {worst:.1e} of the reference")


if __name__ == "__main__":
    main()
