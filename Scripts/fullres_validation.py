#!/usr/bin/env python3
"""Photos and masks at the GCompris photos' original resolution, for full-resolution validation.

`make data` keeps photos at most 512 px on the long side (docs/data.md). The GCompris originals of
some held-out photos are 1024 px; this script writes those originals (decoded from the WebP files
that Scripts/prepare_photos.py extracted under DATA/work/gcompris-rcc/) as PNG, with each photo's
GrabCut mask upscaled to the original size (bilinear, then thresholded at 50 %, so the outline is
smooth rather than blocky). Feed the result to `gknet synthesize` (docs/results.md, Full resolution).

Usage: python Scripts/fullres_validation.py --data data --output data/fullres [--split holdout | --list FILE]
           [--min-side 1000]
Needs Pillow with WebP support (the reference venv has it). Reference tooling only.
"""
import argparse
import csv
import os
import sys

from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the folder `make data` filled (manifest.tsv, masks/, work/)")
    parser.add_argument("--output", required=True, help="receives photos/ and masks/")
    parser.add_argument("--split", default="holdout", help="manifest split to take: holdout (default) or train")
    parser.add_argument("--list", help="take the photos whose file stem is a line of this file instead "
                        "(Scripts/split_lists.py output)")
    parser.add_argument("--min-side", type=int, default=1000, help="only originals whose long side is at least this")
    args = parser.parse_args()

    photos = os.path.join(args.output, "photos")
    masks = os.path.join(args.output, "masks")
    os.makedirs(photos, exist_ok=True)
    os.makedirs(masks, exist_ok=True)
    chosen = None
    if args.list:
        with open(args.list) as handle:
            chosen = {line.strip() for line in handle if line.strip()}
    written = 0
    with open(os.path.join(args.data, "manifest.tsv"), newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["status"] != "accepted":
                continue
            if chosen is not None and os.path.splitext(row["file"])[0] not in chosen:
                continue
            if chosen is None and row["split"] != args.split:
                continue
            if not row["source_package"].startswith("gcompris-qt-data") or ".rcc:" not in row["source_path"]:
                continue  # Tux Paint pairs are pastes, not photos with an original
            width, height = (int(v) for v in row["size_source"].split("x"))
            if max(width, height) < args.min_side:
                continue
            bundle, inner = row["source_path"].split(".rcc:", 1)
            source = os.path.join(args.data, "work", "gcompris-rcc", os.path.basename(bundle), inner)
            photo = Image.open(source).convert("RGB")
            if photo.size != (width, height):
                sys.exit(f"{source}: {photo.size} differs from the manifest's {width}x{height}")
            small_mask = Image.open(os.path.join(args.data, "masks", row["file"])).convert("L")
            mask = small_mask.resize(photo.size, Image.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
            photo.save(os.path.join(photos, row["file"]))
            mask.save(os.path.join(masks, row["file"]))
            written += 1
            print(f"{row['file']}: {width}x{height} (mask from {small_mask.size[0]}x{small_mask.size[1]})")
    print(f"{written} photos with masks in {args.output}")


if __name__ == "__main__":
    main()
