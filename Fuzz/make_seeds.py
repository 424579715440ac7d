"""Writes the seed corpora of the fuzz targets under Fuzz/<Target>/corpus/ (committed).

Run with the reference venv: .venv-ref/bin/python Fuzz/make_seeds.py [Target...]
Seeds are small valid inputs plus a few edge cases; libFuzzer mutates from them.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent


def safetensors_bytes(tensors, metadata=None, header_extra=None):
    """Hand-rolled writer (name -> (dtype, shape, raw bytes)) so seeds can also be malformed."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    payload = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        payload += raw
    if header_extra:
        header.update(header_extra)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + payload


def f32(array):
    return ("F32", array.shape, array.astype("<f4").tobytes())


def model_state(rng, dtype="F32"):
    """The fuzz model of Fuzz/SafeTensors/main.swift: Conv2d 3->4 k3, BatchNorm2d 4, Dropout, Conv2d 4->2 k1."""
    shapes = {
        "0.weight": (4, 3, 3, 3), "0.bias": (4,), "1.weight": (4,), "1.bias": (4,),
        "1.running_mean": (4,), "1.running_var": (4,), "3.weight": (2, 4, 1, 1),
    }
    state = {}
    for name, shape in shapes.items():
        values = rng.standard_normal(shape).astype(np.float32)
        if dtype == "F32":
            state[name] = f32(values)
        elif dtype == "F16":
            state[name] = ("F16", shape, values.astype("<f2").tobytes())
        else:  # BF16: the top 16 bits of the float32
            bits = values.astype("<f4").view("<u4") >> 16
            state[name] = ("BF16", shape, bits.astype("<u2").tobytes())
    state["1.num_batches_tracked"] = ("I64", (), struct.pack("<q", 12))
    return state


TINY_CONFIG = {
    "encoder_widths": [16, 32, 64, 128], "decoder_output_width": 8, "lre_width": 64, "lre_depth": 2,
    "lre_heads": 2, "scf_attention_width": 32, "scf_heads": 1, "scf_squeeze_floor": 8, "kernel_size": 3,
    "kernel_levels": 3, "kernel_group_channels": 16, "input_size": 256, "output_blend": "mask",
}


def safetensors_seeds(out):
    rng = np.random.default_rng(0)
    meta = {"format": "pt", "gknet.config": json.dumps(TINY_CONFIG, sort_keys=True), "gknet.step": "12"}
    for dtype in ["F32", "F16", "BF16"]:
        (out / f"model_{dtype.lower()}.safetensors").write_bytes(safetensors_bytes(model_state(rng, dtype), meta))

    # A training checkpoint: model + Adam buffers + the gknet.training record.
    state = model_state(rng)
    parameters = ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight"]
    for name in parameters:
        shape = state[name][1]
        state[f"__optimizer__.exp_avg.{name}"] = f32(rng.standard_normal(shape) * 0.01)
        state[f"__optimizer__.exp_avg_sq.{name}"] = f32(np.abs(rng.standard_normal(shape)) * 1e-4)
    record = {
        "step": 5, "optimizer": "Adam", "optimizer_steps": {name: 5 for name in parameters},
        "learning_rate": 0.001, "schedule_position": 5,
        "generators": {"data": "1234567890123456789"}, "module_generators": {"2": "42"},
    }
    training_meta = dict(meta, **{"gknet.training": json.dumps(record, sort_keys=True), "gknet.step": "5"})
    (out / "training_adam.safetensors").write_bytes(safetensors_bytes(state, training_meta))

    # Edge cases: empty table, metadata only, scalar and zero-size tensors, odd dtype, truncation.
    (out / "empty.safetensors").write_bytes(safetensors_bytes({}))
    (out / "metadata_only.safetensors").write_bytes(safetensors_bytes({}, {"format": "pt"}))
    (out / "scalar_and_empty.safetensors").write_bytes(safetensors_bytes({
        "s": f32(np.array(1.5, dtype=np.float32)), "z": ("F32", (0, 3), b""),
        "i": ("I64", (2,), struct.pack("<qq", -(2**40), 2**62))}))
    (out / "unknown_dtype.safetensors").write_bytes(safetensors_bytes({"u": ("U8", (4,), b"\x01\x02\x03\x04")}))
    whole = safetensors_bytes(model_state(rng), meta)
    (out / "truncated.safetensors").write_bytes(whole[: len(whole) - 10])
    (out / "short.safetensors").write_bytes(b"\x10\x00\x00")


SEEDS = {"SafeTensors": safetensors_seeds}

if __name__ == "__main__":
    for target in sys.argv[1:] or SEEDS:
        corpus = ROOT / target / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        SEEDS[target](corpus)
        print(f"{target}: {len(list(corpus.iterdir()))} seeds in {corpus.relative_to(ROOT.parent)}")
