#!/usr/bin/env python3
"""More content for training (issue 25): every photographic Tux Paint cut-out that `make data` did
not paste (its 25 % quota), pasted onto a training photo.

`Scripts/prepare_photos.py` finds 246 photographic cut-outs but pastes only enough of them to make
25 % of the accepted photos (72); the manifest marks the others "not drawn (minority quota
reached)". This script pastes those of the training split, with the same paste as `make data`
(`paste_stamp`: the cut-out's own alpha, 6-30 % of the image, a seeded position), each onto a
GCompris photo of the per-photo training list (`data/splits/train.txt`), so no tuning or test photo
is touched and the tuning and test sets stay as they are.

Output (not committed): OUT/photos, OUT/masks (same naming as data/photos), OUT/manifest.tsv (cut-out,
background, mask fraction, status), OUT/contact_sheets/. Then OUT/train-plus/{photos,masks} holds hard
links to the training photos and the new pastes: the photo folder a fixed training set or fresh
composites are made from.

Usage: .venv-data/bin/python Scripts/extra_cutouts.py [--data data] [--output data/extra]
"""
import argparse
import csv
import os
import shutil
import sys

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_photos import (MAX_FRACTION, MIN_FRACTION, contact_sheet, paste_stamp, seed_of,  # noqa: E402
                            write_png_atomic, write_text_atomic)

NOT_DRAWN = "not drawn (minority quota reached)"
STAMPS_PREFIX = "usr/share/tuxpaint/stamps/"


def read_manifest(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def link_or_copy(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
        os.remove(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def paste_and_keep(stamp_path, background, rng, output_pattern):
    """Pastes the cut-out at STAMP_PATH onto BACKGROUND (RGB) with `paste_stamp`; the photo and mask
    are written (OUTPUT_PATTERN % "photos", % "masks") when the mask covers 3-70 %.
    Returns ("accepted" or "rejected", mask fraction)."""
    composite, mask = paste_stamp(np.asarray(Image.open(stamp_path).convert("RGBA")), background, rng)
    fraction = float(mask.mean())
    if not MIN_FRACTION <= fraction <= MAX_FRACTION:
        return "rejected", fraction
    write_png_atomic(output_pattern % "photos", composite[:, :, ::-1])
    write_png_atomic(output_pattern % "masks", mask * 255)
    return "accepted", fraction


def write_contact_sheets(stems, photos_dir, masks_dir, sheets, prefix, title):
    """Contact sheets of 36 photo/mask pairs each, PREFIX_NN.png in SHEETS (remade from scratch)."""
    shutil.rmtree(sheets, ignore_errors=True)
    os.makedirs(sheets)
    for k in range(0, len(stems), 36):
        part = stems[k:k + 36]
        contact_sheet([(s, os.path.join(photos_dir, s + ".png"), os.path.join(masks_dir, s + ".png")) for s in part],
                      os.path.join(sheets, f"{prefix}_{k // 36:02d}.png"), f"{title} {k}-{k + len(part) - 1} (true alpha)")


def link_photo_folder(target, sources):
    """TARGET/{photos,masks} (remade) with hard links to FOLDER/{photos,masks}/STEM.png for each (FOLDER, STEM)."""
    shutil.rmtree(target, ignore_errors=True)
    for folder, stem in sources:
        for kind in ("photos", "masks"):
            link_or_copy(os.path.join(folder, kind, stem + ".png"), os.path.join(target, kind, stem + ".png"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data", help="the folder `make data` wrote (default data)")
    parser.add_argument("--output", default=None, help="output folder (default DATA/extra)")
    args = parser.parse_args()
    data = args.data
    out = args.output or os.path.join(data, "extra")
    manifest_path = os.path.join(data, "manifest.tsv")
    train_list = os.path.join(data, "splits", "train.txt")
    stamps_root = os.path.join(data, "extracted", "tuxpaint-stamps-default")
    for path, hint in ((manifest_path, "run make data"), (train_list, "run Scripts/make_splits.sh"),
                       (stamps_root, "run make data")):
        if not os.path.exists(path):
            sys.exit(f"extra_cutouts: {path} is missing ({hint} first)")

    rows = read_manifest(manifest_path)
    train = [line.strip() for line in open(train_list, encoding="utf-8") if line.strip()]
    train_set = set(train)
    backgrounds = sorted(s for s in train if not s.startswith("tuxpaint."))
    candidates = sorted((seed_of("extra:" + r["source_path"]), r) for r in rows
                        if r["status"] == "rejected" and r["reason"] == NOT_DRAWN and r["split"] == "train"
                        and r["source_package"].startswith("tuxpaint-stamps-default"))
    print(f"[extra_cutouts] {len(candidates)} cut-outs of the training folders not pasted by make data; "
          f"{len(backgrounds)} GCompris training photos as backgrounds", flush=True)

    photos_dir, masks_dir = os.path.join(out, "photos"), os.path.join(out, "masks")
    lines = ["file\tstatus\tbackground\tmask_fraction\tsource_path"]
    accepted = []
    for seed, row in candidates:
        stem = row["file"][:-4]
        source = os.path.join(stamps_root, row["source_path"])
        if not row["source_path"].startswith(STAMPS_PREFIX) or not os.path.exists(source):
            sys.exit(f"extra_cutouts: {source} is missing: the extracted Tux Paint package does not match the manifest")
        rng = np.random.default_rng(seed)
        background = backgrounds[int(rng.integers(len(backgrounds)))]
        bgr = cv2.imread(os.path.join(data, "photos", background + ".png"))
        if bgr is None:
            sys.exit(f"extra_cutouts: cannot read {background}.png in {data}/photos")
        status, fraction = paste_and_keep(source, bgr[:, :, ::-1], rng, os.path.join(out, "%s", stem + ".png"))
        if status == "accepted":
            accepted.append(stem)
        lines.append(f"{row['file']}\t{status}\t{background}\t{fraction:.4f}\t{row['source_path']}")
    write_text_atomic(os.path.join(out, "manifest.tsv"), "\n".join(lines) + "\n")

    write_contact_sheets(accepted, photos_dir, masks_dir, os.path.join(out, "contact_sheets"), "extra",
                         "extra Tux Paint pastes")
    plus = os.path.join(out, "train-plus")
    link_photo_folder(plus, [(data, stem) for stem in sorted(train_set)] + [(out, stem) for stem in accepted])
    print(f"[extra_cutouts] pasted {len(accepted)} of {len(candidates)} (the rest outside "
          f"{MIN_FRACTION:.0%}-{MAX_FRACTION:.0%} mask cover); {plus}: {len(train_set) + len(accepted)} photos "
          f"({len(train_set)} training + {len(accepted)} new)", flush=True)


if __name__ == "__main__":
    main()
