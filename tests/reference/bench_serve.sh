#!/usr/bin/env bash
# Load test of `listconranker serve` on loopback (docs/serve.md, "Load test"): for each model,
#   1. a server with cross-request batching (the defaults, but a queue of 16 jobs): 1, 4 and 16
#      closed-loop clients, then an open-loop overload at twice the best throughput measured,
#      with /health probed every 100 ms;
#   2. a server scoring one request at a time (--max-batch-texts 1): 16 clients;
# and prints one Markdown table with the batching ratio at 16 clients. Requests are
# `POST /v1/rerank` with one query and 20 passages of the seeded benchmark workload.
#
#   bash tests/reference/bench_serve.sh [OUT_DIR]       (default tests/.synthetic/bench-serve)
#
# Models: the zh-tiny fixture and the BERT-base-width synthetic model (768 x 6 layers under the
# release's list head, made once by make_synthetic.py --preset base6); `full` (the released
# model's sizes, 401 M random parameters, as tests/run.sh makes it) is measured when named, with
# 1 and 4 clients for 4x as long and neither overload nor the unbatched server (a 21-text request
# takes it seconds on a CPU). LCR_LOAD_MODELS picks some ("tiny base full"); LCR_LOAD_SECONDS sets
# each closed-loop run's length (default 15 s). Takes ~5 minutes on a 2-core machine (+6 with
# full). Exits non-zero when a request was lost or /health failed to answer during the overload.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/listconranker-target}"
out="${1:-tests/.synthetic/bench-serve}"
mkdir -p "$out" tests/.synthetic
cargo build --release -q --bin listconranker --example serve_load
bin="$CARGO_TARGET_DIR/release/listconranker"
load="$CARGO_TARGET_DIR/release/examples/serve_load"
seconds="${LCR_LOAD_SECONDS:-15}"

model_for() {
    case "$1" in
        tiny) echo tests/fixtures/models/zh-tiny ;;
        base)
            local dir=tests/.synthetic/bench-base6
            if [ ! -f "$dir/model.safetensors" ]; then
                local venv
                venv="$(bash tests/reference/setup.sh | tail -n 1)"
                "$venv/bin/python" tests/reference/make_synthetic.py --preset base6 --out "$dir" >&2
            fi
            echo "$dir" ;;
        full)
            local made
            made="$(ls -d tests/.synthetic/full-* 2>/dev/null | grep -v '\.json$' | head -n 1 || true)"
            if [ -z "$made" ] || [ ! -f "$made/model.safetensors" ]; then
                echo "no full-size model under tests/.synthetic: run tests/run.sh first" >&2
                exit 2
            fi
            echo "$made" ;;
        *) echo "unknown model $1" >&2; exit 2 ;;
    esac
}

# Overload length per model: long enough for a backlog of 16 jobs to build up at 2x.
overload_seconds() {
    case "$1" in tiny) echo "$seconds" ;; base) python3 -c "print(3 * float('$seconds'))" ;; esac
}

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# start_server MODEL LOG ARGS...: a server on a free port, ready; sets $url.
start_server() {
    local model="$1" log="$2"
    shift 2
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$bin" serve --model "$model" --port "$port" "$@" 2>"$log" &
    server_pid=$!
    url="http://127.0.0.1:$port"
    for _ in $(seq 600); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/health" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "the server never became ready:" >&2
    cat "$log" >&2
    exit 1
}

rows=()
status=0
for name in ${LCR_LOAD_MODELS:-tiny base}; do
    model="$(model_for "$name")"
    if [ "$name" = full ]; then
        echo "== $name ($model): batching server, 1 / 4 clients" >&2
        # 4 queued 21-text requests take the full-size model longer than the default 60 s
        # request timeout on a 2-core CPU: the timeout is raised so that the run measures
        # throughput (docs/serve.md says what a replica serves within the default).
        start_server "$model" "$out/$name-batched.log" --max-queue 16 --timeout-s 600
        "$load" --url "$url" --clients 1,4 --seconds "$(python3 -c "print(4 * float('$seconds'))")" \
            --json "$out/$name-batched.json" >&2 || status=1
        stop_server
        rows+=("$(python3 - "$out/$name-batched.json" <<'EOF' || echo "| $name | failed: see $out |"
import json, sys
closed = {r["clients"]: r for r in json.load(open(sys.argv[1]))["runs"]}
cells = [f"{closed[c]['texts_per_s']:.2f} ({closed[c]['p50_ms']:.0f} / {closed[c]['p99_ms']:.0f})" for c in (1, 4)]
print(f"| full | {cells[0]} | {cells[1]} | - | - | - | - |")
EOF
)")
        continue
    fi
    echo "== $name ($model): batching server, 1 / 4 / 16 clients, then 2x overload" >&2
    start_server "$model" "$out/$name-batched.log" --max-queue 16
    "$load" --url "$url" --clients 1,4,16 --seconds "$seconds" --overload 2 \
        --overload-seconds "$(overload_seconds "$name")" --json "$out/$name-batched.json" >&2 || status=1
    stop_server
    echo "== $name: one request at a time, 16 clients" >&2
    start_server "$model" "$out/$name-single.log" --max-queue 16 --max-batch-texts 1
    "$load" --url "$url" --clients 16 --seconds "$seconds" --json "$out/$name-single.json" >&2 || status=1
    stop_server
    rows+=("$(python3 - "$out/$name-batched.json" "$out/$name-single.json" "$name" <<'EOF' || echo "| $name | failed: see $out |"
import json, sys
batched = json.load(open(sys.argv[1]))["runs"]
single = json.load(open(sys.argv[2]))["runs"][0]
closed = {r["clients"]: r for r in batched if r["mode"] == "closed"}
over = next(r for r in batched if r["mode"] == "open")
cells = [f"{closed[c]['texts_per_s']:.1f} ({closed[c]['p50_ms']:.0f} / {closed[c]['p99_ms']:.0f})" for c in (1, 4, 16)]
ratio = closed[16]["texts_per_s"] / single["texts_per_s"]
print(f"| {sys.argv[3]} | " + " | ".join(cells)
      + f" | {single['texts_per_s']:.1f} ({single['p50_ms']:.0f} / {single['p99_ms']:.0f}) | **{ratio:.2f}x** | "
      + f"{over['offered_requests_per_s']:.2f}/s offered: {over['served']} served, {over['shed']} shed, {over['lost']} lost; "
      + f"/health worst {over['health_worst_ms']:.0f} ms, {over['health_failures']} failed |")
EOF
)")
done
echo "texts/s (p50 / p99 ms per request) of 21-text requests:"
echo
echo "| model | 1 client | 4 clients | 16 clients | 16 clients, no batching | batching ratio | 2x overload |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$status"
