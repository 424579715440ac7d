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


def gradient(width, height, channels, depth=8):
    """A smooth test pattern (compresses to a few hundred bytes)."""
    y, x = np.mgrid[0:height, 0:width]
    top = 255 if depth == 8 else 65535
    planes = [(x * top // max(width - 1, 1)), (y * top // max(height - 1, 1)), ((x + y) * top // max(width + height - 2, 1)),
              np.full_like(x, top * 3 // 4)]
    return np.stack(planes[:channels], axis=-1).astype(np.uint8 if depth == 8 else np.uint16)


def png_chunk(kind, payload):
    import zlib
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_seeds(out):
    import io
    import zlib
    from PIL import Image

    def save(name, image, **options):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **options)
        (out / name).write_bytes(buffer.getvalue())
        return buffer.getvalue()

    save("gray8.png", Image.fromarray(gradient(9, 7, 1)[:, :, 0], "L"))
    save("gray_alpha8.png", Image.fromarray(gradient(9, 7, 2), "LA"))
    rgb = save("rgb8.png", Image.fromarray(gradient(9, 7, 3), "RGB"))
    save("rgba8.png", Image.fromarray(gradient(9, 7, 4), "RGBA"))
    palette = Image.fromarray(gradient(9, 7, 3), "RGB").convert("P", palette=Image.ADAPTIVE, colors=16)
    save("palette.png", palette)
    save("palette_trns.png", palette, transparency=3)
    save("gray1.png", Image.fromarray(gradient(9, 7, 1)[:, :, 0] > 128))
    save("gray16.png", Image.fromarray(gradient(9, 7, 1, depth=16)[:, :, 0]))
    save("one_pixel.png", Image.new("RGB", (1, 1), (10, 20, 30)))
    # Written by hand (Pillow cannot): 16-bit RGB, and Adam7-interlaced 8-bit and 16-bit RGB.
    adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    for name, depth, interlace in [("rgb16.png", 16, 0), ("rgb8_interlaced.png", 8, 1), ("rgb16_interlaced.png", 16, 1)]:
        pixels = gradient(9, 7, 3, depth=depth).astype(">u2" if depth == 16 else "u1")
        passes = [pixels[y0::dy, x0::dx] for x0, y0, dx, dy in adam7] if interlace else [pixels]
        raw = b"".join(b"\x00" + row.tobytes() for part in passes if part.size for row in part)
        ihdr = struct.pack(">IIBBBBB", 9, 7, depth, 2, 0, 0, interlace)
        data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
        (out / name).write_bytes(data)
    # Edge cases: corrupt CRC, truncated, zero width, absurd size, no IDAT.
    broken = bytearray(rgb)
    broken[29] ^= 0xFF  # inside the IHDR CRC
    (out / "bad_crc.png").write_bytes(bytes(broken))
    (out / "truncated.png").write_bytes(rgb[: len(rgb) // 2])
    signature = b"\x89PNG\r\n\x1a\n"
    (out / "zero_width.png").write_bytes(signature + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 7, 8, 2, 0, 0, 0)) + png_chunk(b"IEND", b""))
    (out / "huge.png").write_bytes(signature + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + png_chunk(b"IEND", b""))
    (out / "no_idat.png").write_bytes(signature + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 3, 8, 2, 0, 0, 0)) + png_chunk(b"IEND", b""))


def jpeg_seeds(out):
    import io
    from PIL import Image

    def save(name, image, **options):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", **options)
        (out / name).write_bytes(buffer.getvalue())
        return buffer.getvalue()

    rgb = Image.fromarray(gradient(17, 9, 3), "RGB")
    baseline = save("rgb444.jpg", rgb, quality=90, subsampling=0)
    save("rgb420.jpg", rgb, quality=75, subsampling=2)
    save("rgb422.jpg", rgb, quality=75, subsampling=1)
    save("progressive.jpg", rgb, quality=80, progressive=True)
    save("gray.jpg", rgb.convert("L"), quality=80)
    save("cmyk.jpg", rgb.convert("CMYK"), quality=80)
    for orientation in [3, 6, 8]:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save(f"exif_orientation{orientation}.jpg", rgb, quality=80, exif=exif.tobytes())
    save("one_pixel.jpg", Image.new("RGB", (1, 1), (200, 100, 50)))
    # Edge cases: truncated, damaged entropy data, cut inside the header, no SOF.
    (out / "truncated.jpg").write_bytes(baseline[: len(baseline) * 2 // 3])
    damaged = bytearray(baseline)
    for i in range(len(damaged) - 40, len(damaged) - 4, 5):
        damaged[i] ^= 0x5A
    (out / "damaged.jpg").write_bytes(bytes(damaged))
    (out / "header_only.jpg").write_bytes(baseline[:40])
    (out / "soi_eoi.jpg").write_bytes(b"\xff\xd8\xff\xd9")


def dataset_seeds(out):
    """First byte: layout (b % 3) and split ((b / 3) % 2), see Fuzz/DatasetList/main.swift."""
    seeds = {
        "combined_train.txt": "0HSub/composite_images/a_1_1.jpg\nHSub/composite_images/a_1_2.png\nHOther/composite_images/x_1_1.png\n",
        "combined_crlf_blank.txt": "3\r\nHSub/composite_images/a_1_1\r\n\r\n  HSub/composite_images/c_3_1.jpg  \r\n",
        "combined_mismatch.txt": "0HSub/composite_images/b_2_1.jpg\n",
        "combined_missing.txt": "0HSub/composite_images/z_9_1.jpg\n",
        "combined_bad_path.txt": "0a_1_1.jpg\nHSub/masks/a_1.png\n",
        "subset_train.txt": "1a_1_1.jpg\na_1_2.png\nb_2_1.jpg\nc_3_1.jpg\n",
        "subset_bad_name.txt": "1a_1.jpg\na__1.jpg\n_1_1.jpg\n",
        "subset_path.txt": "1HSub/composite_images/a_1_1.jpg\n",
        "all_subsets_test.txt": "5a_1_2\n",
        "all_subsets_train.txt": "2a_1_1.JPG\n",
        "empty.txt": "0",
    }
    for name, text in seeds.items():
        (out / name).write_bytes(text.encode())


def training_config_seeds(out):
    """The committed configs, every key once, the model override, and typical mistakes."""
    for path in sorted((ROOT.parent / "configs").glob("*.json")):
        (out / path.name).write_bytes(path.read_bytes())
    every_key = {
        "preset": "small", "input_size": 128, "batch_size": 2, "learning_rate": 0.001, "beta1": 0.9, "beta2": 0.999,
        "epsilon": 1e-8, "weight_decay": 0.01, "gradient_clip_norm": 1.0, "schedule": "multi-step", "warmup_steps": 0,
        "minimum_learning_rate": 0.0, "milestones": [0.5, 0.75], "gamma": 0.5, "steps": 0, "epochs": 3,
        "crop_scale_minimum": 0.25, "crop_scale_maximum": 1.0, "horizontal_flip": False, "loss_minimum_area": 100,
        "seed": 18446744073709551615, "threads": 2, "validation_split": "train", "validation_dataset": "data/val",
        "validation_interval": 0, "validation_limit": 10, "checkpoint_interval": 1, "log_interval": 1,
    }
    (out / "every_key.json").write_text(json.dumps(every_key, indent=1))
    (out / "model_override.json").write_text(json.dumps({"model": dict(TINY_CONFIG, use_scf=False, scf_top_k=4,
                                                                       image_mean=[0.5, 0.5, 0.5]), "schedule": "constant", "steps": 10}))
    mistakes = {
        "unknown_key.json": '{"learning_rat": 0.1}',
        "wrong_type.json": '{"batch_size": "8"}',
        "bad_enum.json": '{"schedule": "linear"}',
        "not_object.json": '[1, 2]',
        "empty_object.json": '{}',
        "huge_numbers.json": '{"steps": 9223372036854775807, "warmup_steps": 9223372036854775807, "learning_rate": 1e308}',
        "nested_model_bad.json": '{"model": {"kernel_size": 4, "encoder_widths": [1, 2]}}',
        "null_values.json": '{"validation_dataset": null, "model": null, "seed": null}',
    }
    for name, text in mistakes.items():
        (out / name).write_text(text)


SEEDS = {"SafeTensors": safetensors_seeds, "PNG": png_seeds, "JPEG": jpeg_seeds, "DatasetList": dataset_seeds,
         "TrainingConfig": training_config_seeds}

if __name__ == "__main__":
    for target in sys.argv[1:] or SEEDS:
        corpus = ROOT / target / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        SEEDS[target](corpus)
        print(f"{target}: {len(list(corpus.iterdir()))} seeds in {corpus.relative_to(ROOT.parent)}")
