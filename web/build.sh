#!/usr/bin/env bash
# Builds the npm package into pkg/: the crate compiled to wasm32 twice (burn's WebGPU and flex CPU
# backends on one thread; flex on rayon threads in pkg/threads/), wasm-bindgen's glue, the JS API
# and worker from web/, index.d.ts, package.json.
#   bash web/build.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source web/env.sh

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must match the wasm-bindgen crate in Cargo.lock exactly.
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
    echo "installing wasm-bindgen-cli $bindgen_version" >&2
    cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

cargo build --release --lib --manifest-path crate/Cargo.toml \
    --target wasm32-unknown-unknown --no-default-features --features "$LCR_WASM_FEATURES" \
    --target-dir "$LCR_WASM_TARGET_DIR"

# The threaded build: a nightly toolchain with rust-src (the standard library is rebuilt with
# atomics).
nightly="${LCR_NIGHTLY:-nightly}"
if ! rustup run "$nightly" rustc -V >/dev/null 2>&1; then
    nightly="$LCR_NIGHTLY_PINNED"
    rustup toolchain install "$nightly" --profile minimal --component rust-src >&2
fi
if ! rustup component list --toolchain "$nightly" --installed | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain "$nightly" >&2
fi
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$LCR_WASM_THREADS_RUSTFLAGS" \
cargo "+$nightly" build --release --lib --manifest-path crate/Cargo.toml \
    --target wasm32-unknown-unknown --no-default-features --features "$LCR_WASM_THREADS_FEATURES" \
    -Z build-std=panic_abort,std --target-dir "$LCR_WASM_THREADS_TARGET_DIR"

rm -rf pkg
mkdir -p pkg
wasm-bindgen --target web --out-dir pkg --out-name listconranker \
    "$LCR_WASM_TARGET_DIR/wasm32-unknown-unknown/release/listconranker.wasm"
wasm-bindgen --target web --out-dir pkg/threads --out-name listconranker \
    "$LCR_WASM_THREADS_TARGET_DIR/wasm32-unknown-unknown/release/listconranker.wasm"
cp web/index.js web/worker.js web/cache.js web/index.d.ts web/README.md pkg/

version="$(awk -F'"' '/^version = / { print $2; exit }' crate/Cargo.toml)"
cat > pkg/package.json <<JSON
{
  "name": "listconranker",
  "version": "$version",
  "description": "ListConRanker text reranker in the browser: WebGPU or wasm CPU, in a Web Worker",
  "license": "MIT",
  "type": "module",
  "main": "./index.js",
  "module": "./index.js",
  "types": "./index.d.ts",
  "exports": {
    ".": {
      "types": "./index.d.ts",
      "default": "./index.js"
    },
    "./package.json": "./package.json"
  },
  "files": [
    "index.js",
    "index.d.ts",
    "worker.js",
    "cache.js",
    "listconranker.js",
    "listconranker.d.ts",
    "listconranker_bg.wasm",
    "listconranker_bg.wasm.d.ts",
    "threads/",
    "README.md"
  ],
  "sideEffects": false,
  "keywords": ["reranker", "rerank", "webgpu", "wasm", "listconranker", "search"]
}
JSON
raw=$(stat -c %s pkg/listconranker_bg.wasm)
gz=$(gzip -9 -c pkg/listconranker_bg.wasm | wc -c)
echo "pkg/listconranker_bg.wasm: $raw bytes ($gz gzip -9)" >&2
raw=$(stat -c %s pkg/threads/listconranker_bg.wasm)
gz=$(gzip -9 -c pkg/threads/listconranker_bg.wasm | wc -c)
echo "pkg/threads/listconranker_bg.wasm: $raw bytes ($gz gzip -9)" >&2
