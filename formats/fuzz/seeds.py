#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (corpus/<target>/seed-*) from the test fixtures.

Run from anywhere: python3 formats/fuzz/seeds.py. Standard library only. The seeds stay small
(the largest is the en-3layer list transformer pickle, 77 KB): the safetensors seeds and the
tokenizer.json seed are cut-down rebuilds of the zh-tiny fixtures, not copies.
"""
import json
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent.parent
MODELS = ROOT / "tests" / "fixtures" / "models"
CORPUS = FUZZ / "corpus"


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / f"seed-{name}").write_bytes(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def main():
    # pickle: the list part's PyTorch files of both fixtures (zip format).
    for model in ("en-3layer", "zh-tiny"):
        write("pickle", f"{model}-linear_in_embedding.pt", (MODELS / model / "linear_in_embedding.pt").read_bytes())
    write("pickle", "en-3layer-list_transformer.pt", (MODELS / "en-3layer" / "list_transformer.pt").read_bytes())

    # safetensors: the zh-tiny file's small tensors, as stored, and some in other dtypes.
    source = (MODELS / "zh-tiny" / "model.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", source[:8])
    header = json.loads(source[8 : 8 + length])
    data = source[8 + length :]
    small = []
    for name, info in header.items():
        if name == "__metadata__" or name.startswith("embeddings.word") or name.startswith("embeddings.position"):
            continue
        start, end = info["data_offsets"]
        if end - start <= 2048 and name.startswith(("embeddings.", "encoder.layer.0.")):
            small.append((name, info["dtype"], info["shape"], data[start:end]))
    write("safetensors", "zh-tiny-small", safetensors(small, {"format": "pt"}))
    write("safetensors", "dtypes", safetensors([
        ("f16", "F16", [2, 2], struct.pack("<4e", 1.0, -2.0, 0.5, 65504.0)),
        ("bf16", "BF16", [2], bytes([0x80, 0x3F, 0x00, 0xC0])),
        ("f64", "F64", [1], struct.pack("<d", 3.25)),
        ("i64", "I64", [1], struct.pack("<q", 7)),
        ("scalar", "F32", [], struct.pack("<f", 1.5)),
    ]))

    # safetensors: a quantized bundle shard: a q8 weight (I8 values, one F16 scale per block) and
    # a q4 weight (U8 pairs of 4-bit values, one F16 scale per block of 8), as `convert` writes.
    write("safetensors", "quantized", safetensors([
        ("q8.weight", "I8", [2, 4], bytes([1, 127, 0x81, 0, 5, 6, 7, 8])),
        ("q8.weight.scale", "F16", [2, 1], struct.pack("<2e", 0.01, 0.5)),
        ("q4.weight", "U8", [2, 4], bytes([0x8F, 0x19, 0x88, 0x77, 0x12, 0x34, 0x56, 0x78])),
        ("q4.weight.scale", "F16", [2, 1], struct.pack("<2e", 0.25, 1.0)),
        ("bias", "F16", [2], struct.pack("<2e", 0.0, 1.0)),
    ]))

    # manifest: a bundle manifest as `convert` writes it.
    config = json.loads((MODELS / "zh-tiny" / "config.json").read_text())
    manifest = {
        "format": "listconranker-bundle",
        "version": 1,
        "dtype": "f16",
        "config": config,
        "tokenizer": "tokenizer.json",
        "files": [
            {"path": "embeddings.safetensors", "bytes": 1234, "sha256": "0" * 64,
             "tensors": ["bert.embeddings.word_embeddings.weight"]},
            {"path": "encoder-00-01.safetensors", "bytes": 99, "sha256": "a" * 64,
             "tensors": ["bert.encoder.layer.0.attention.self.query.weight"]},
            {"path": "head.safetensors", "bytes": 5, "sha256": "b" * 64, "tensors": ["linear_score3.weight"]},
            {"path": "tokenizer.json", "bytes": 4321, "sha256": "c" * 64},
        ],
    }
    write("manifest", "bundle.json", json.dumps(manifest, indent=1))
    manifest.update(version=2, dtype="q4",
                    quantization={"scheme": "q4", "block_size": 32, "quantized_from": "f32"})
    write("manifest", "bundle-q4.json", json.dumps(manifest, indent=1))

    # config: both fixtures' config.json.
    for model in ("en-3layer", "zh-tiny"):
        write("config", f"{model}.json", (MODELS / model / "config.json").read_bytes())

    # list_line: the example input's lines and the shapes around them.
    for number, line in enumerate((ROOT / "tests" / "fixtures" / "example.jsonl").read_bytes().splitlines()):
        write("list_line", f"example-{number + 1}", line)
    write("list_line", "short-array", '["q", "p1", "p2"]')
    write("list_line", "short-object", '{"query": "q", "passages": ["p"]}')
    write("list_line", "no-passage", '["q"]')

    # tokenizer: byte 0 then a tokenizer.json (zh-tiny's, its vocabulary cut to 300 tokens),
    # or byte 1 then text for the fixture WordPiece tokenizer.
    tokenizer = json.loads((MODELS / "zh-tiny" / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    tokenizer["model"]["vocab"] = dict(sorted(vocab.items(), key=lambda kv: kv[1])[:300])
    write("tokenizer", "json-zh-tiny-cut", b"\x00" + json.dumps(tokenizer, ensure_ascii=False).encode())
    write("tokenizer", "text-english", b"\x01" + b"What is the capital of France? Paris, naturally.")
    write("tokenizer", "text-chinese", b"\x01" + "皮蛋是寒性的食物吗".encode())
    write("tokenizer", "text-mixed", b"\x01" + "Ünïcode\u00a0  tabs\tand [SEP] [CLS] ##ing émoji 😀".encode())


if __name__ == "__main__":
    main()
