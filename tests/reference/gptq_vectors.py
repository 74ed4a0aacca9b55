"""Test vectors for the Rust GPTQ (formats/src/gptq.rs): seeded weights and Hessians, and what
gptq_ref.gptq_quantize makes of them.

    "$VENV/bin/python" tests/reference/gptq_vectors.py OUT.safetensors

Writes, per case `<name>`: `<name>.weight` (float32 [rows, cols]), `<name>.hessian` (float64
[cols, cols]: X^T X of correlated inputs, one of them never active), `<name>.values` (int8
levels [rows, cols]) and `<name>.scales` (float16 [rows, cols / 32]); the metadata's `cases`
(JSON) lists each case's name, bits, scale_search and damp. formats/tests/gptq.rs runs it.
"""

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gptq_ref  # noqa: E402

BLOCK = 32


def correlated_hessian(rng, cols, samples, dead):
    """X^T X of `samples` inputs mixed as in gptq_ref.self_test, inputs `dead` always 0."""
    mix = rng.standard_normal((cols, cols)) / np.sqrt(cols)
    x = rng.standard_normal((samples, cols)) @ (np.eye(cols) + 2 * mix)
    x[:, dead] = 0
    return x.T @ x


def main() -> None:
    out = Path(sys.argv[1])
    rng = np.random.default_rng(2024)
    tensors, cases = {}, []
    # (name, rows, cols, bits, scale_search, damp, dead inputs)
    specs = [("q4", 48, 256, 4, 0, 0.01, [7]),
             ("q4_search", 48, 256, 4, 11, 0.01, [7]),
             ("q8", 48, 256, 8, 0, 0.01, [7]),
             ("q4_small", 40, 96, 4, 0, 0.1, [0, 95]),
             ("q8_search", 40, 96, 8, 11, 0.01, [])]
    for name, rows, cols, bits, search, damp, dead in specs:
        h = correlated_hessian(rng, cols, 2048, dead)
        w = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 0.2, (rows, 1))).astype(np.float32)
        w[3, :BLOCK] = 0  # a block all zero until feedback reaches it (the first: never)
        values, scales = gptq_ref.gptq_quantize(w.astype(np.float64), h, BLOCK, bits, damp, search)
        tensors[f"{name}.weight"] = w
        tensors[f"{name}.hessian"] = np.ascontiguousarray(h, dtype=np.float64)
        tensors[f"{name}.values"] = values
        tensors[f"{name}.scales"] = scales
        cases.append({"name": name, "bits": bits, "scale_search": search, "damp": damp})
    save_file(tensors, str(out), metadata={"cases": json.dumps(cases)})


if __name__ == "__main__":
    main()
