"""Benchmarks the PyTorch reference (compute_score or iterative_inference) on a workload.

    python tests/reference/bench_reference.py --model tests/fixtures/models/zh-tiny \\
        --workload WORKLOAD.json --dtype f32 --device cpu [--iterative] \\
        [--warmup 1] [--repeat 3] [--max-length 512] [--threads N] --json OUT.json

WORKLOAD.json: {"lists": [[query, passage, ...], ...]}. Lists are scored one at a time (one
compute_score([list]) or iterative_inference(list) call each); the workload is run `warmup`
times untimed, then `repeat` times timed. Reports texts/s (queries + passages), lists/s and the
per-list latency percentiles. torch uses its default number of threads (all cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import listconranker_ref as ref  # noqa: E402

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (split layout)")
    ap.add_argument("--workload", required=True, help='JSON file {"lists": [[query, passage, ...], ...]}')
    ap.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iterative", action="store_true", help="iterative_inference instead of compute_score")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own, all cores)")
    ap.add_argument("--json", required=True, help="output file")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    lists = json.loads(Path(args.workload).read_text(encoding="utf-8"))["lists"]
    if not lists:
        raise SystemExit("empty workload")
    model = ref.load(args.model, DTYPES[args.dtype], args.device)

    def run_one(lst):
        if args.iterative:
            return model.iterative_inference(lst, args.max_length)
        return model.compute_score([lst], args.max_length)[0]

    for _ in range(args.warmup):
        for lst in lists:
            run_one(lst)
    latencies = []
    start = time.perf_counter()
    for _ in range(args.repeat):
        for lst in lists:
            t0 = time.perf_counter()
            run_one(lst)  # returns Python floats: the device has finished
            latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start

    n_texts = sum(len(lst) for lst in lists)
    lat_ms = np.array(latencies) * 1e3
    result = {
        "implementation": "pytorch-reference",
        "model": args.model,
        "mode": "iterative_inference" if args.iterative else "compute_score",
        "dtype": args.dtype,
        "device": args.device,
        "max_length": args.max_length,
        "threads": torch.get_num_threads(),
        "lists": len(lists),
        "texts": n_texts,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "total_s": total,
        "texts_per_s": n_texts * args.repeat / total,
        "lists_per_s": len(lists) * args.repeat / total,
        "latency_ms": {
            "p50": float(np.percentile(lat_ms, 50)),
            "p95": float(np.percentile(lat_ms, 95)),
            "mean": float(lat_ms.mean()),
            "max": float(lat_ms.max()),
        },
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
