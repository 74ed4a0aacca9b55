"""NumPy implementation of the q8 / q4 bundle schemes (docs/formats.md), independent of the Rust
writer, and a check that a quantized bundle holds exactly what it computes.

    python quantize_ref.py F32_BUNDLE QUANTIZED_BUNDLE

reads every tensor of the f32 bundle (the source values), quantizes it as the quantized
bundle's manifest says (q8 per row, q4 in blocks; which tensors: see `storage`), and compares
the stored int values and f16 scales bit for bit, and the f16 tensors too. Prints one JSON line
with the counts; exits 1 on the first difference.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

ENCODER_LINEAR = re.compile(
    r"bert\.encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)\.weight$"
)
HEAD_LINEAR = re.compile(
    r"(list_transformer\.layers\.\d+\.(self_attn\.in_proj_weight|self_attn\.out_proj\.weight"
    r"|linear1\.weight|linear2\.weight)|linear_in_embedding\.weight"
    r"|linear_score[123]\.weight)$"
)
WORD_TABLE = "bert.embeddings.word_embeddings.weight"


def storage(key, shape, scheme, block):
    """'q4', 'q8' or 'f16': how a bundle of `scheme` stores `key`."""
    two_d = len(shape) == 2 and shape[0] > 0 and shape[1] > 0
    if scheme == "q4" and ENCODER_LINEAR.match(key) and two_d and shape[1] % block == 0:
        return "q4"
    if (ENCODER_LINEAR.match(key) or HEAD_LINEAR.match(key) or key == WORD_TABLE) and two_d:
        return "q8"
    return "f16"


def quantize_groups(w, group, qmax):
    """Symmetric quantization of float32 `w` [rows, cols] in groups of `group` values of a row:
    (levels int8 [rows, cols], scales float16 [rows, cols // group])."""
    rows, cols = w.shape
    g = w.reshape(rows, cols // group, group)
    absmax = np.abs(g).max(axis=2)
    scales = (absmax / np.float32(qmax)).astype(np.float32).astype(np.float16)
    step = scales.astype(np.float32)[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.where(step == 0, np.float32(0), np.rint(g / step))
    levels = np.clip(levels, -qmax, qmax).astype(np.int8).reshape(rows, cols)
    return levels, scales


def quantize_q8(w):
    levels, scales = quantize_groups(w, w.shape[1], 127)
    return levels, scales.reshape(-1)


def quantize_q4(w, block):
    levels, scales = quantize_groups(w, block, 7)
    nibbles = (levels.astype(np.int16) + 8).astype(np.uint8)
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
    return packed, scales


def dequantize_q4(packed, scales, block):
    low = (packed & 0x0F).astype(np.int16) - 8
    high = (packed >> 4).astype(np.int16) - 8
    levels = np.stack([low, high], axis=2).reshape(packed.shape[0], -1).astype(np.float32)
    step = np.repeat(scales.astype(np.float32), block, axis=1)
    return levels * step


def load_bundle(directory):
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    tensors = {}
    for entry in manifest["files"]:
        if entry.get("tensors"):
            tensors.update(load_file(str(directory / entry["path"])))
    return manifest, tensors


def check(f32_dir, quantized_dir):
    _, source = load_bundle(f32_dir)
    manifest, stored = load_bundle(quantized_dir)
    quantization = manifest["quantization"]
    scheme = quantization["scheme"]
    block = quantization.get("block_size") or 0
    counts = {"q8": 0, "q4": 0, "f16": 0}
    seen = set()
    for key, w in sorted(source.items()):
        kind = storage(key, w.shape, scheme, block)
        counts[kind] += 1
        if kind == "f16":
            expected = {key: w.astype(np.float16)}
        elif kind == "q8":
            values, scales = quantize_q8(w.astype(np.float32))
            expected = {key: values, key + ".scale": scales}
        else:
            values, scales = quantize_q4(w.astype(np.float32), block)
            expected = {key: values, key + ".scale": scales}
            back = dequantize_q4(values, scales, block)
            assert back.shape == w.shape
        for name, want in expected.items():
            seen.add(name)
            got = stored.get(name)
            if got is None or got.dtype != want.dtype or got.shape != want.shape:
                sys.exit(f"{name}: stored {None if got is None else (got.dtype, got.shape)}, "
                         f"expected {(want.dtype, want.shape)}")
            if not np.array_equal(got.view(np.uint8), want.view(np.uint8)):
                diff = int(np.count_nonzero(got.view(np.uint8) != want.view(np.uint8)))
                sys.exit(f"{name}: {diff} bytes differ from the NumPy quantizer")
    extra = sorted(set(stored) - seen)
    if extra:
        sys.exit(f"tensors not in the source: {extra[:5]}")
    print(json.dumps({"scheme": scheme, "block": block, **counts}))


if __name__ == "__main__":
    check(sys.argv[1], sys.argv[2])
