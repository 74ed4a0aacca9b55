#!/bin/sh
# The container's entry point: `listconranker serve` on every interface, on the model mounted at
# $LISTCONRANKER_MODEL (default /models/model), or, when $LISTCONRANKER_REPO names a Hugging Face
# hub repository (org/name), on that checkpoint fetched at start into the hub cache ($HF_HOME,
# a volume, so a restart does not download it again). Arguments are passed on to `serve`
# (e.g. --device wgpu --dtype f16 --cors-origin https://app.example). Stopped by SIGTERM, which
# lets the requests in flight finish (exec: the server is the container's process 1).
set -eu
# Host and port come from LISTCONRANKER_HOST and PORT (not from the arguments, which must not
# repeat them); the model's name in answers from LISTCONRANKER_NAME, else the repository's.
model="${LISTCONRANKER_MODEL:-/models/model}"
name="${LISTCONRANKER_NAME:-listconranker}"
if [ -n "${LISTCONRANKER_REPO:-}" ]; then
    model="$(listconranker fetch "$LISTCONRANKER_REPO" --revision "${LISTCONRANKER_REVISION:-main}")"
    name="${LISTCONRANKER_NAME:-${LISTCONRANKER_REPO##*/}}"
fi
exec listconranker serve --model "$model" --name "$name" --host "${LISTCONRANKER_HOST:-0.0.0.0}" \
    --port "${PORT:-8080}" "$@"
