"""How far float16 and quantized bundles move a model's scores and orderings, measured against
the float32 scores of the same model on the same lists.

    "$VENV/bin/python" tests/reference/quant_quality.py --model CHECKPOINT --input lists.jsonl \
        --work DIR [--dtypes f16,q8,q4] [--block 32] [--limit N] [--max-length 512] \
        [--f16-compute] [--jobs 2] [--eval DATA.jsonl] [--binary PATH] [--json OUT] \
        [--calibration CALIB.txt]

Converts CHECKPOINT into one bundle per dtype with the `listconranker` binary (`convert`; with
`--calibration`, the dtype `q4-gptq` is `convert --dtype q4 --calibration CALIB.txt`, GPTQ-chosen
4-bit weights, and is added to the dtypes),
scores the input (JSON Lines, `["query", "passage", ...]`; e.g. from docstring_lists.py) with
the checkpoint in float32 and with each bundle (`score`, computed in float32), and compares each
dtype's scores with the float32 ones. `--f16-compute` adds a row for the float32 checkpoint
computed in float16 (`score --dtype f16`). `--eval DATA` also runs `listconranker eval --both`
on each (MAP and MRR@10, with and without iterative inference). Bundles and score files are kept in `--work` and
reused when the model, input and options are the same (delete the directory to redo them).
`--jobs` runs that many scoring processes at once (the CPU backend uses about one core per
process on small batches).

Per dtype: max and mean |score - f32 score| over every passage; Kendall's tau-b between the
f32 and the dtype's scores of each list (mean and worst list); top-1 agreement (the lists whose
best passage is the same); top-5 overlap (the mean share of the f32 top 5 found in the dtype's
top 5); the bytes of the bundle's weight shards. Also the f32 scores' spread within a list (median over lists of the
standard deviation), which the |score| errors should be read against. Prints a Markdown table
on stdout and writes the figures as JSON to `--json`.

Targets (issue 13): q8 mean tau >= 0.98 and top-1 >= 97 %; q4 mean tau >= 0.93 and top-1 >= 90 %.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/listconranker-target")) / "release/listconranker"
TARGETS = {"q8": (0.98, 0.97), "q4": (0.93, 0.90), "q4-gptq": (0.93, 0.90)}


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two score vectors (ties in either count as neither concordant nor
    discordant, with the tau-b normalisation); 1.0 when both are constant."""
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), 1)
    dx, dy = dx[iu], dy[iu]
    s = float(np.sum(dx * dy))
    nx, ny = float(np.count_nonzero(dx)), float(np.count_nonzero(dy))
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return s / np.sqrt(nx * ny)


def top_k(scores: np.ndarray, k: int) -> list[int]:
    # Stable: ties keep input order.
    return list(np.argsort(-scores, kind="stable")[:k])


def compare(base: list[list[float]], other: list[list[float]]) -> dict:
    assert len(base) == len(other), (len(base), len(other))
    diffs, taus, top1, top5 = [], [], [], []
    for b, o in zip(base, other):
        b, o = np.asarray(b, np.float64), np.asarray(o, np.float64)
        assert b.shape == o.shape
        diffs.append(np.abs(b - o))
        taus.append(kendall_tau_b(b, o))
        top1.append(top_k(b, 1) == top_k(o, 1))
        k = min(5, len(b))
        top5.append(len(set(top_k(b, k)) & set(top_k(o, k))) / k)
    d = np.concatenate(diffs)
    worst = int(np.argmin(taus))
    return {
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
        "tau_mean": float(np.mean(taus)),
        "tau_min": float(np.min(taus)),
        "tau_min_list": worst,
        "top1": float(np.mean(top1)),
        "top5_overlap": float(np.mean(top5)),
        "lists": len(base),
        "passages": int(d.size),
    }


def spread(base: list[list[float]]) -> dict:
    stds = [float(np.std(b)) for b in base if len(b) > 1]
    ranges = [float(np.max(b) - np.min(b)) for b in base]
    return {"std_median": float(np.median(stds)), "range_median": float(np.median(ranges))}


def read_scores(path: Path) -> list[list[float]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def bundle_bytes(bundle: Path) -> int:
    """Bytes of the weight shards (the tokenizer and manifest left out)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    return sum(int(f["bytes"]) for f in manifest["files"] if f["path"].endswith(".safetensors"))


def run(cmd: list[str], log: Path) -> float:
    started = time.time()
    with open(log, "w") as err:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({done.returncode}); see {log}")
    return time.time() - started, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--dtypes", default="f16,q8,q4")
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--limit", type=int, help="score only the first N lists")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--f16-compute", action="store_true", help="add the f32 checkpoint computed in f16")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--binary", type=Path, default=DEFAULT_BINARY)
    ap.add_argument("--eval", type=Path, action="append", default=[],
                    help="also run `eval --both` on this C-MTEB-format data file (repeatable): MAP and MRR@10 per dtype")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--title", help="the table's first column header (default: the model's name)")
    ap.add_argument("--calibration", type=Path,
                    help="calibration text for the q4-gptq dtype (gptq_ref.py --write-calib)")
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    lines = [line for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        lines = lines[: args.limit]
    input_path = work / "input.jsonl"
    text = "".join(line + "\n" for line in lines)
    if not input_path.exists() or input_path.read_text(encoding="utf-8") != text:
        input_path.write_text(text, encoding="utf-8")
    # Score files are named after what made them, so that a changed input or option redoes them.
    stamp = hashlib.sha256(
        (text + str(args.max_length) + str(args.model.resolve())).encode()
    ).hexdigest()[:10]
    dtypes = [d for d in args.dtypes.split(",") if d]
    if args.calibration and "q4-gptq" not in dtypes:
        dtypes.append("q4-gptq")
    if "q4-gptq" in dtypes and not args.calibration:
        ap.error("q4-gptq needs --calibration")
    quantized = ("q8", "q4", "q4-gptq")

    # Bundles (sequential: convert is quick and memory-bound).
    bundles = {}
    for dtype in dtypes:
        bundle = work / (f"bundle-{dtype}" + (f"-b{args.block}" if dtype in quantized else ""))
        sources = [*args.model.iterdir(), *([args.calibration] if dtype == "q4-gptq" else [])]
        if not (bundle / "manifest.json").exists() or (bundle / "manifest.json").stat().st_mtime < \
                max(p.stat().st_mtime for p in sources):
            cmd = [str(args.binary), "convert", "--model", str(args.model), "--out", str(bundle),
                   "--dtype", dtype.split("-")[0]]
            if dtype in quantized:
                cmd += ["--block", str(args.block)]
            if dtype == "q4-gptq":
                cmd += ["--calibration", str(args.calibration)]
            seconds, _ = run(cmd, work / f"convert-{dtype}.log")
            print(f"converted {dtype} in {seconds:.0f} s", file=sys.stderr)
        bundles[dtype] = bundle

    # Scoring runs: name -> (model, compute dtype).
    runs = {"f32": (args.model, "f32")}
    for dtype, bundle in bundles.items():
        runs[dtype] = (bundle, "f32")
    if args.f16_compute:
        runs["f32 checkpoint, f16 compute"] = (args.model, "f16")

    def score(name: str) -> tuple[str, list[list[float]], float | None]:
        model, compute = runs[name]
        safe = name.replace(" ", "_").replace(",", "")
        suffix = f"-b{args.block}" if name in quantized else ""
        out = work / f"scores-{safe}{suffix}-{stamp}.jsonl"
        seconds = None
        if not out.exists() or out.stat().st_mtime < (model / ("manifest.json" if (model / "manifest.json").exists() else "config.json")).stat().st_mtime:
            cmd = [str(args.binary), "score", "--model", str(model), "--input", str(input_path),
                   "--dtype", compute, "--max-length", str(args.max_length)]
            seconds, stdout = run(cmd, work / f"score-{safe}.log")
            out.write_bytes(stdout)
            print(f"scored {name} in {seconds:.0f} s", file=sys.stderr)
        return name, read_scores(out), seconds

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = {name: (scores, seconds) for name, scores, seconds in pool.map(score, list(runs))}

    base = results["f32"][0]
    assert len(base) == len(lines), f"{len(base)} score lines for {len(lines)} lists"
    report = {
        "model": str(args.model),
        "input": str(args.input),
        "lists": len(base),
        "passages": sum(len(b) for b in base),
        "max_length": args.max_length,
        "block": args.block,
        "f32_spread": spread(base),
        "rows": {},
    }
    for name in runs:
        if name == "f32":
            continue
        row = compare(base, results[name][0])
        if name in bundles:
            row["bundle_bytes"] = bundle_bytes(bundles[name])
        target = TARGETS.get(name)
        if target:
            row["target"] = {"tau_mean": target[0], "top1": target[1]}
            row["target_met"] = row["tau_mean"] >= target[0] and row["top1"] >= target[1]
        report["rows"][name] = row

    if args.eval:
        report["eval"] = {}
        for name, (model, compute) in runs.items():
            safe = name.replace(" ", "_").replace(",", "")
            out = work / f"eval-{safe}.json"
            cmd = [str(args.binary), "eval", "--model", str(model), "--dtype", compute, "--both",
                   "--max-length", str(args.max_length), "--json", str(out)]
            for data in args.eval:
                cmd += ["--data", str(data)]
            run(cmd, work / f"eval-{safe}.log")
            report["eval"][name] = [
                {k: r[k] for k in ("data", "mode", "queries", "map", "mrr_10")}
                for r in json.loads(out.read_text())["results"]
            ]

    title = args.title or args.model.name
    print(f"{title}: {report['lists']} lists, {report['passages']} passages, f32 score spread within a list: "
          f"median std {report['f32_spread']['std_median']:.2e}, median range {report['f32_spread']['range_median']:.2e}")
    print()
    print("| dtype | weights MB | max abs diff | mean abs diff | tau mean | tau worst | top-1 | top-5 overlap | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in report["rows"].items():
        size = f"{row['bundle_bytes'] / 1e6:.2f}" if "bundle_bytes" in row else "-"
        target = ("met" if row["target_met"] else "MISSED") if "target_met" in row else "-"
        print(f"| {name} | {size} | {row['max_abs_diff']:.1e} | {row['mean_abs_diff']:.1e} | {row['tau_mean']:.4f} | "
              f"{row['tau_min']:.4f} | {100 * row['top1']:.1f} % | {100 * row['top5_overlap']:.1f} % | {target} |")
    if args.eval:
        print()
        print("| dtype | data | MAP | MRR@10 | MAP, iterative | MRR@10, iterative |")
        print("|---|---|---|---|---|---|")
        for name, results in report["eval"].items():
            by = {(Path(r["data"]).name, r["mode"]): r for r in results}
            for data in dict.fromkeys(Path(r["data"]).name for r in results):
                plain, it = by[(data, "plain")], by[(data, "iterative")]
                print(f"| {name} | {data} | {plain['map']:.2f} | {plain['mrr_10']:.2f} | {it['map']:.2f} | {it['mrr_10']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
