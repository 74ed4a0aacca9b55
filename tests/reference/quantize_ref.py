"""NumPy implementation of the q8 / q4 bundle schemes (docs/formats.md), independent of the Rust
writer and reader.

    python quantize_ref.py F32_BUNDLE QUANTIZED_BUNDLE

reads every tensor of the f32 bundle (the source values), quantizes it as the quantized
bundle's manifest says (q8 and q4 in blocks along each row; which tensors: see `storage`), and compares
the stored int values and f16 scales bit for bit, and the f16 tensors too. Prints one JSON line
with the counts; exits 1 on the first difference.

    python quantize_ref.py --score MODEL_DIR BUNDLE EXPECTED_JSON

scores the compute_score cases of a fixture's expected JSON with the PyTorch reference in
float64, its weights replaced by the bundle's values as NumPy decodes them (`decode_bundle`):
what the Rust engine must compute from that bundle. Prints {case name: scores} as JSON.
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
FFN_OUTPUT = re.compile(r"bert\.encoder\.layer\.\d+\.output\.dense\.weight$")


def storage(key, shape, scheme, block):
    """'q4', 'q8' or 'f16': how a bundle of `scheme` stores `key`. `q4` bundles store the encoder's
    FFN output weights in 4 bits; `q4-all` is the first q4 scheme (every encoder Linear weight in
    4 bits), kept for the measurements of docs/quantization.md that used it."""
    two_d = len(shape) == 2 and shape[0] > 0 and shape[1] > 0
    four_bit = FFN_OUTPUT if scheme == "q4" else ENCODER_LINEAR if scheme == "q4-all" else None
    if four_bit is not None and four_bit.match(key) and two_d and shape[1] % block == 0:
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


def q8_block(cols, block):
    """A q8 weight's block: `block`, or the whole row where `block` does not divide it."""
    return block if cols % block == 0 else cols


def quantize_q8(w, block):
    return quantize_groups(w, q8_block(w.shape[1], block), 127)


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


def dequantize_q8(values, scales):
    block = values.shape[1] // scales.shape[1]
    return values.astype(np.float32) * np.repeat(scales.astype(np.float32), block, axis=1)


def decode_bundle(directory):
    """Every weight of a bundle as float32, quantized ones dequantized."""
    _, stored = load_bundle(directory)
    weights = {}
    for name, values in stored.items():
        if name.endswith(".scale"):
            continue
        if values.dtype == np.int8:
            weights[name] = dequantize_q8(values, stored[name + ".scale"])
        elif values.dtype == np.uint8:
            scales = stored[name + ".scale"]
            block = values.shape[1] * 2 // scales.shape[1]
            weights[name] = dequantize_q4(values, scales, block)
        else:
            weights[name] = values.astype(np.float32)
    return weights


def score_bundle(model_dir, bundle, expected_json):
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import listconranker_ref

    torch.set_num_threads(1)
    model = listconranker_ref.load(model_dir, torch.float64)
    weights = decode_bundle(bundle)
    parts = {"bert.": model.bert, "linear_in_embedding.": model.linear_in_embedding}
    loaded = {module: {} for module in (model.bert, model.linear_in_embedding, model.list_transformer)}
    for name, w in weights.items():
        module, key = model.list_transformer, name
        for prefix, part in parts.items():
            if name.startswith(prefix):
                module, key = part, name[len(prefix):]
        loaded[module][key] = torch.from_numpy(w).to(torch.float64)
    for module, state in loaded.items():
        missing, unexpected = module.load_state_dict(state, strict=False)
        # The list head's unused template layer is not in bundles; everything else must be.
        missing = [k for k in missing if not k.startswith("list_transformer_layer.")]
        if missing or unexpected:
            sys.exit(f"bundle and reference differ: missing {missing[:5]}, unexpected {unexpected[:5]}")
    cases = json.loads(Path(expected_json).read_text())["compute_score"]
    with torch.no_grad():
        out = {c["name"]: model.compute_score(c["batch"], max_length=c["max_length"]) for c in cases}
    print(json.dumps(out))


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
    counts = {"q8": 0, "q4": 0, "f16": 0, "calibrated": 0}
    # Weights chosen by GPTQ (convert --calibration) are not round to nearest: left to gptq_ref.py.
    calibrated = set((quantization.get("calibration") or {}).get("tensors", []))
    seen = set()
    for key, w in sorted(source.items()):
        kind = storage(key, w.shape, scheme, block)
        if key in calibrated:
            assert kind == "q4", key
            counts["calibrated"] += 1
            seen.update([key, key + ".scale"])
            continue
        counts[kind] += 1
        if kind == "f16":
            expected = {key: w.astype(np.float16)}
        elif kind == "q8":
            values, scales = quantize_q8(w.astype(np.float32), block)
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
    if sys.argv[1] == "--score":
        score_bundle(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        check(sys.argv[1], sys.argv[2])
