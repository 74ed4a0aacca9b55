# Shared settings of the wasm build (sourced by web/build.sh). Keep them stable: any change
# rebuilds burn and cubecl for wasm32 (~9 minutes on 2 cores).
export LCR_WASM_TARGET_DIR="${LCR_WASM_TARGET_DIR:-$HOME/.cache/listconranker-target-wasm}"
export LCR_WASM_FEATURES="wasm"
# getrandom 0.3 (through tokenizers) needs the backend chosen by cfg on wasm32. simd128: the CPU
# backend's kernels use 128-bit SIMD (1.2-1.3x faster scoring in Chromium; every browser with
# WebGPU has wasm SIMD).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128'

# The threaded CPU build (pkg/threads/): wasm atomics and shared memory need the standard library
# rebuilt with them (`-Z build-std`, nightly with rust-src). Its own target dir: other flags.
export LCR_WASM_THREADS_TARGET_DIR="${LCR_WASM_THREADS_TARGET_DIR:-$HOME/.cache/listconranker-target-wasm-threads}"
export LCR_WASM_THREADS_FEATURES="wasm-threads"
# The nightly this was built and tested with; a `nightly` toolchain already installed is used
# when it has rust-src (set LCR_NIGHTLY to choose another).
export LCR_NIGHTLY_PINNED="nightly-2026-05-19"
# Since late 2025 rustc no longer turns `atomics` into a shared, imported memory by itself: the
# linker is told (shared memory, imported so every thread's instance gets the same one, and the
# thread-local storage symbols wasm-bindgen initialises per thread). 4 GiB: the most a wasm32
# memory can have; a shared memory must declare its maximum up front (the full-size model in f32
# needs 1.5 GiB on the CPU backend).
export LCR_WASM_THREADS_RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base'
