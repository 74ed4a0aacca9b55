# Shared settings of the wasm build (sourced by web/build.sh). Keep them stable: any change
# rebuilds burn and cubecl for wasm32 (~9 minutes on 2 cores).
export LCR_WASM_TARGET_DIR="${LCR_WASM_TARGET_DIR:-$HOME/.cache/listconranker-target-wasm}"
export LCR_WASM_FEATURES="wasm"
# getrandom 0.3 (through tokenizers) needs the backend chosen by cfg on wasm32. simd128: the CPU
# backend's kernels use 128-bit SIMD (1.2-1.3x faster scoring in Chromium; every browser with
# WebGPU has wasm SIMD).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128'
