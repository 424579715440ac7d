#!/usr/bin/env python3
"""The comparison table and curve plot of training runs (docs/results.md, "Choosing the default model").

    python3 Scripts/compare_table.py RUNS_DIR [--names a,b,...] [--identity-fmse 1316.92]
        [--identity-psnr 27.04] [--plot docs/images/compare-fmse.png]

Reads RUNS_DIR/<name>/config.json and log.jsonl of every run (written by `gknet train`) and prints
a Markdown table: head, data, preset, sizes, images seen, training hours (sum of the logged step
times), and the validation fMSE / MSE / PSNR at the last validation, with fMSE as a ratio of the
composite's (identity) and PSNR as a difference. With --plot, draws validation fMSE against images
seen for every run (Pillow only; no matplotlib needed).
"""
import argparse
import json
import pathlib


def read_run(directory: pathlib.Path):
    config = json.loads((directory / "config.json").read_text())
    steps, validations, seconds = [], [], 0.0
    for line in (directory / "log.jsonl").read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if "validation" in entry:
            validations.append((entry["step"], entry["validation"]))
        else:
            steps.append(entry["step"])
            if entry.get("images_per_second", 0) > 0:
                seconds += config["batch_size"] / entry["images_per_second"]
    return config, steps, validations, seconds


def describe(config):
    model = config.get("model") or {}
    head = config.get("output") or model.get("output") or "image"
    preset = config.get("preset", "tiny") if not model else "custom"
    switches = [k for k in ("use_lre", "use_scf", "use_kernel_modulation") if model.get(k) is False]
    if switches:
        preset = "tiny, " + ", ".join(s.replace("use_", "no ") for s in switches)
    data = "fresh" if config.get("synthesis") else "fixed"
    size = config["input_size"]
    low = config.get("low_resolution_size", 0)
    sizes = f"{low} ({config.get('low_resolution_fraction', 0):.0%}) then {size}" if low else f"{size}"
    return head, data, preset, sizes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=pathlib.Path)
    parser.add_argument("--names", default="")
    parser.add_argument("--identity-fmse", type=float, default=1316.92)
    parser.add_argument("--identity-psnr", type=float, default=27.04)
    parser.add_argument("--plot", type=pathlib.Path)
    args = parser.parse_args()
    names = [n for n in args.names.split(",") if n] or sorted(
        p.name for p in args.runs.iterdir() if (p / "log.jsonl").exists())
    rows = []
    print("| run | head | data | preset | size | images seen | hours | fMSE | x composite | MSE | PSNR | dB vs composite |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        config, steps, validations, seconds = read_run(args.runs / name)
        head, data, preset, sizes = describe(config)
        if not validations:
            print(f"| {name} | {head} | {data} | {preset} | {sizes} | {len(steps) * config['batch_size']:,} | "
                  f"{seconds / 3600:.2f} | (no validation yet) | | | | |")
            continue
        step, v = validations[-1]
        rows.append((name, config, validations))
        print(f"| {name} | {head} | {data} | {preset} | {sizes} | {step * config['batch_size']:,} | {seconds / 3600:.2f} | "
              f"{v['fmse']:.1f} | {v['fmse'] / args.identity_fmse:.3f} | {v['mse']:.1f} | {v['psnr']:.2f} | "
              f"{v['psnr'] - args.identity_psnr:+.2f} |")
    if args.plot and rows:
        plot(rows, args.plot, args.identity_fmse)


def plot(rows, path: pathlib.Path, identity: float):
    from PIL import Image, ImageDraw
    width, height, margin = 900, 520, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    points = [(s * c["batch_size"], v["fmse"]) for _, c, vs in rows for s, v in vs]
    x_max = max(p[0] for p in points)
    y_values = [p[1] for p in points] + [identity]
    y_min, y_max = min(y_values) * 0.95, max(y_values) * 1.05

    def to_pixel(x, y):
        return (margin + (width - 2 * margin) * x / x_max,
                height - margin - (height - 2 * margin) * (y - y_min) / (y_max - y_min))

    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    for i in range(6):
        y = y_min + (y_max - y_min) * i / 5
        px, py = to_pixel(0, y)
        draw.text((8, py - 6), f"{y:.0f}", fill="black")
        x = x_max * i / 5
        qx, qy = to_pixel(x, y_min)
        draw.text((qx - 15, height - margin + 8), f"{x / 1000:.1f}k", fill="black")
    draw.text((width / 2 - 80, height - 30), "training images seen", fill="black")
    draw.text((10, 20), "validation fMSE (220 held-out composites, 256x256)", fill="black")
    a, b = to_pixel(0, identity), to_pixel(x_max, identity)
    draw.line([a, b], fill=(128, 128, 128), width=1)
    draw.text((b[0] - 150, b[1] - 14), f"composite itself {identity:.0f}", fill=(100, 100, 100))
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
    for index, (name, config, validations) in enumerate(rows):
        colour = colours[index % len(colours)]
        line = [to_pixel(s * config["batch_size"], v["fmse"]) for s, v in validations]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for p in line:
            draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
        draw.text((width - margin + 4 - 190, margin + 8 + 14 * index), name, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
