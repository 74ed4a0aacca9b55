#!/usr/bin/env bash
# Serves the demo on http://127.0.0.1:${PORT:-8080}/www/ : builds the npm package (pkg/) and the
# demo's model bundles when missing: www/models/zh-tiny (the test fixture: random weights) and,
# once the MiniLM recipe has been run (tests/reference/minilm_recipe.sh), its trained model as
# www/models/minilm-docstrings (f16), which the page then opens by default.
# The page is served cross-origin isolated (www/serve.py), so the CPU backend runs on every core.
#   bash www/serve.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/listconranker-target}"
[ -f pkg/listconranker_bg.wasm ] && [ -f pkg/threads/listconranker_bg.wasm ] || bash web/build.sh
if [ ! -f www/models/zh-tiny/manifest.json ]; then
    cargo run --release --quiet --manifest-path crate/Cargo.toml -- \
        convert --model tests/fixtures/models/zh-tiny --out www/models/zh-tiny
fi
trained=tests/.synthetic/minilm-recipe/trained
# Converted again when the recipe has written a newer model since.
if [ -f "$trained/list_transformer.pt" ] && { [ ! -f www/models/minilm-docstrings/manifest.json ] \
        || [ "$trained/list_transformer.pt" -nt www/models/minilm-docstrings/manifest.json ]; }; then
    rm -rf www/models/minilm-docstrings
    cargo run --release --quiet --manifest-path crate/Cargo.toml -- \
        convert --model "$trained" --out www/models/minilm-docstrings --dtype f16
fi
port="${PORT:-8080}"
echo "demo: http://127.0.0.1:$port/www/"
exec python3 www/serve.py --port "$port" --bind 127.0.0.1
