#!/usr/bin/env bash
# Runs every test of the project: Rust unit, golden, CLI and real-weights tests on the CPU
# backend and on wgpu (Mesa's software Vulkan when there is no GPU), after installing what
# they need (idempotent; apt packages only when running as root).
#   bash tests/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/listconranker-target}"

# System packages: Python's venv for the reference, Mesa's Vulkan drivers for wgpu without a GPU.
apt_packages=(python3-venv mesa-vulkan-drivers libvulkan1)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: missing packages ${missing[*]} (install them as root)" >&2
    fi
fi

# The reference venv holds the real all-MiniLM-L6-v2 weights used by the encoder check.
venv="$(bash tests/reference/setup.sh | tail -n 1)"
export LCR_VENV="$venv"
# In CI the Rust tests that need the venv (the real-weights encoder check, the reference's
# scores of empty strings) must run, not skip.
if [ -n "${CI:-}" ]; then
    export LCR_REQUIRE_VENV=1
fi

# The full-size synthetic model (the release's shapes, 401 M random parameters, 1.6 GB; never
# committed): convert, load and memory tests at the real sizes (crate/tests/full_size.rs,
# tests/browser/full-size.test.js). Written once per version of the scripts that make it (~1 min).
# LCR_SKIP_FULL=1 skips those tests.
if [ -z "${LCR_SKIP_FULL:-}" ]; then
    key="$(cat tests/reference/make_synthetic.py tests/reference/make_fixtures.py \
        tests/reference/listconranker_ref.py | sha256sum | cut -c1-12)"
    full="$PWD/tests/.synthetic/full-$key"
    if [ ! -f "$full.expected.json" ]; then
        rm -rf tests/.synthetic
        "$venv/bin/python" tests/reference/make_synthetic.py --preset full --out "$full" \
            --expected "$full.expected.json.tmp"
        mv "$full.expected.json.tmp" "$full.expected.json"
    fi
    export LCR_FULL_MODEL="$full"
    if [ -n "${CI:-}" ]; then
        export LCR_REQUIRE_FULL=1
    fi
fi

# wgpu on a machine without a GPU: Mesa's lavapipe.
lvp=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$lvp" ] && ! ls /dev/dri/render* >/dev/null 2>&1; then
    export VK_ICD_FILENAMES="$lvp"
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR="$(mktemp -d)"
    export XDG_RUNTIME_DIR
fi
# In CI every device the Rust tests try must load, not skip: wgpu in f32 and f16 (lavapipe
# above when there is no GPU) and f16 on the CPU backend. Without it, a DEVICE_UNAVAILABLE
# load prints `skipped: ...` and the test returns.
if [ -n "${CI:-}" ]; then
    export LCR_REQUIRE_DEVICES=1
fi

cargo test --release --workspace 2>&1

# Fuzzing (formats/fuzz, cargo-fuzz on the nightly toolchain): each target of the burn-free
# readers for a bounded time, from the committed seeds; a crash fails the run and leaves its
# input under formats/fuzz/artifacts/. The instrumented build holds no burn (the formats crate
# does not depend on it). LCR_SKIP_FUZZ=1 skips this part; LCR_FUZZ_SECONDS sets the time per
# target (default 20; the CI budget holds the instrumented build plus 2 minutes of fuzzing).
if [ -z "${LCR_SKIP_FUZZ:-}" ]; then
    # The nightly the threaded browser build is pinned to (web/env.sh), or `nightly` where it
    # is installed, as web/build.sh chooses: one nightly for both.
    source web/env.sh
    nightly="${LCR_NIGHTLY:-nightly}"
    if ! rustup run "$nightly" rustc -V >/dev/null 2>&1; then
        nightly="$LCR_NIGHTLY_PINNED"
        rustup run "$nightly" rustc -V >/dev/null 2>&1 \
            || rustup toolchain install "$nightly" --profile minimal >&2
    fi
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.2 --locked
    (
        cd formats/fuzz
        # Its own target directory (instrumented artifacts must not mix with the workspace's),
        # kept under ~/.cache like the others so that a later run reuses the build.
        export CARGO_TARGET_DIR="$HOME/.cache/listconranker-target-fuzz"
        # Fuzz from a scratch copy of the seeds, so that the committed corpus stays the seeds.
        work="$(mktemp -d)"
        trap 'rm -rf "$work"' EXIT
        for target in $(cargo "+$nightly" fuzz list); do
            mkdir -p "$work/$target"
            cp corpus/"$target"/* "$work/$target/"
            log="$work/$target.log"
            # One thread in `tokenizers`: a panic on a worker thread aborts before libFuzzer
            # can save the input that caused it.
            if ! TOKENIZERS_PARALLELISM=false cargo "+$nightly" fuzz run "$target" "$work/$target" -- \
                -max_total_time="${LCR_FUZZ_SECONDS:-20}" -seed=1 -rss_limit_mb=4096 \
                -print_final_stats=1 >"$log" 2>&1; then
                grep -m 2 -A 2 "panicked at" "$log" || true
                tail -n 40 "$log"
                echo "fuzz target $target crashed: its input is under formats/fuzz/artifacts/$target/" >&2
                exit 1
            fi
            echo "fuzz $target: $(grep -m1 stat::number_of_executed_units "$log" | awk '{print $2}') executions, no crash"
        done
    )
fi

# The browser: build the npm package (wasm32, web/build.sh) and run the real-Chromium tests
# (headless Debian chromium driven by playwright-core; the demo page; a Vite app importing the
# packed package). LCR_SKIP_BROWSER=1 skips this part.
if [ -z "${LCR_SKIP_BROWSER:-}" ]; then
    # A CJK font, so that the demo's screenshot shows its Chinese passages.
    if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
        else
            echo "warning: chromium or fonts-wqy-microhei is missing (install them as root)" >&2
        fi
    fi
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
    # The package's JavaScript (web/*.js) checked against its types (index.d.ts, protocol.js's
    # JSDoc) by TypeScript; it needs no wasm build, so a type error fails the run before it.
    (cd tests/browser && npm run --silent typecheck)
    bash web/build.sh
    cargo build --release --bin listconranker --manifest-path crate/Cargo.toml
    LCR_BIN="$CARGO_TARGET_DIR/release/listconranker" \
        node --test --test-reporter=spec --test-concurrency=1 tests/browser/*.test.js 2>&1
fi
