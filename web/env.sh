# Shared settings of the wasm build (sourced by web/build.sh). Keep them stable: any change
# rebuilds burn and cubecl for wasm32 (~9 minutes on 2 cores).
export LCR_WASM_TARGET_DIR="${LCR_WASM_TARGET_DIR:-$HOME/.cache/listconranker-target-wasm}"
export LCR_WASM_FEATURES="wasm"
# getrandom 0.3 (through tokenizers) needs the backend chosen by cfg on wasm32.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="wasm_js"'
