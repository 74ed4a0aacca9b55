#!/usr/bin/env bash
# Builds the npm package into pkg/: the crate compiled to wasm32 twice (burn's WebGPU and flex CPU
# backends on one thread; flex on rayon threads in pkg/threads/), wasm-bindgen's glue, the JS API,
# its worker and protocol from web/, index.d.ts, package.json (web/package.json, whose version must
# be the crate's).
#   bash web/build.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source web/env.sh

# The package's version is the crate's: checked before the long build, not after.
version="$(awk -F'"' '/^version = / { print $2; exit }' crate/Cargo.toml)"
pkg_version="$(awk -F'"' '/^[[:space:]]*"version"[[:space:]]*:/ { print $4; exit }' web/package.json)"
if [ "$pkg_version" != "$version" ]; then
    echo "web/package.json has version \"$pkg_version\" but crate/Cargo.toml has \"$version\": make them equal" >&2
    exit 1
fi

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
cp web/index.js web/worker.js web/cache.js web/gpu.js web/protocol.js web/index.d.ts web/README.md \
    web/package.json pkg/
raw=$(stat -c %s pkg/listconranker_bg.wasm)
gz=$(gzip -9 -c pkg/listconranker_bg.wasm | wc -c)
echo "pkg/listconranker_bg.wasm: $raw bytes ($gz gzip -9)" >&2
raw=$(stat -c %s pkg/threads/listconranker_bg.wasm)
gz=$(gzip -9 -c pkg/threads/listconranker_bg.wasm | wc -c)
echo "pkg/threads/listconranker_bg.wasm: $raw bytes ($gz gzip -9)" >&2
