#!/usr/bin/env python3
"""More backgrounds for training (issue 25): the photographic desktop wallpapers of three Debian
packages, each with training-side Tux Paint cut-outs pasted onto it.

Every photo the models trained on so far comes from GCompris (197 training photos); the objects of
the extra pastes are new, their backgrounds are not. The wallpapers add scenes of another kind
(landscapes, macro shots of plants and insects, still lifes, a dog at a door). They have no
single foreground a GrabCut rectangle would find, so they serve as backgrounds only: each gets
`--per-background` cut-outs (one per output photo) with the same paste as `make data`
(`paste_stamp`: the cut-out's own alpha, 6-30 % of the image, seeded position). The cut-outs are
those the training split already uses (the Tux Paint pastes of `data/splits/train.txt` and half A
of the extra pastes, `data/splits/extra-a.txt`); half B (the gate's fit set) and the cut-outs of
the tuning and test folders are not touched.

Which wallpapers are photographs was decided by looking at every image of the packages (abstract
renders, blurred gradients and illustrations are left out): `PHOTOS` below.

Output (not committed): OUT/photos, OUT/masks (long side at most 512 px), OUT/manifest.tsv,
OUT/licenses/ (each package's copyright file), OUT/contact_sheets/, and OUT/train-halfplus-bg/ with
hard links to the photos of `data/HGComprisTrainHalfPlus` (training photos + half A) and the new
pastes: the photo folder for `gknet synthesize`.

Usage: .venv-data/bin/python Scripts/extra_backgrounds.py [--data data] [--output data/extra/backgrounds]
(after make data, Scripts/make_splits.sh, extra_cutouts.py and extra_halves.py; downloads the three
packages with `apt-get download` into DATA/downloads/backgrounds/ when they are missing).
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extra_cutouts import link_photo_folder, paste_and_keep, read_manifest, write_contact_sheets  # noqa: E402
from prepare_photos import seed_of, write_text_atomic  # noqa: E402

PACKAGES = {
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "mate-backgrounds": "1.26.0-1",
}
# The photographs among the packages' images (usr/share/backgrounds/...).
PHOTOS = {
    "lomiri-wallpapers-16.04": [
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
        "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg",
    ],
    "lomiri-wallpapers-20.04": ["Kleiber_by_Lukas_Baubkus.jpg"],
    "mate-backgrounds": [
        "mate/nature/" + name for name in (
            "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
            "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")
    ],
}
LONG_SIDE = 512


def fetch_packages(downloads, extracted):
    """The packages' .deb files (apt-get download when missing), extracted with dpkg-deb -x."""
    os.makedirs(downloads, exist_ok=True)
    roots = {}
    for package, version in PACKAGES.items():
        debs = glob.glob(os.path.join(downloads, f"{package}_{version}_*.deb"))
        if not debs:
            print(f"[extra_backgrounds] apt-get download {package}={version}", flush=True)
            subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=downloads, check=True)
            debs = glob.glob(os.path.join(downloads, f"{package}_{version}_*.deb"))
        if not debs:
            sys.exit(f"extra_backgrounds: no {package}_{version} .deb in {downloads}")
        root = os.path.join(extracted, package)
        if not os.path.isdir(os.path.join(root, "usr")):
            os.makedirs(root, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", debs[0], root], check=True)
        roots[package] = root
    return roots


def training_cutouts(data):
    """(stem, stamp path) of every Tux Paint cut-out the training split already uses."""
    rows = {r["file"][:-4]: r for r in read_manifest(os.path.join(data, "manifest.tsv"))}
    extra = {r["file"][:-4]: r for r in read_manifest(os.path.join(data, "extra", "manifest.tsv"))}
    stems = []
    for path, table in ((os.path.join(data, "splits", "train.txt"), rows),
                        (os.path.join(data, "splits", "extra-a.txt"), extra)):
        for stem in (line.strip() for line in open(path, encoding="utf-8")):
            if stem.startswith("tuxpaint.") and stem in table:
                stems.append((stem, table[stem]["source_path"]))
    return sorted(set(stems))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data", help="the folder `make data` wrote (default data)")
    parser.add_argument("--output", default=None, help="output folder (default DATA/extra/backgrounds)")
    parser.add_argument("--per-background", type=int, default=6, help="pastes (output photos) per wallpaper")
    args = parser.parse_args()
    data = args.data
    out = args.output or os.path.join(data, "extra", "backgrounds")
    for path, hint in ((os.path.join(data, "manifest.tsv"), "run make data"),
                       (os.path.join(data, "splits", "extra-a.txt"), "run Scripts/extra_halves.py"),
                       (os.path.join(data, "extra", "manifest.tsv"), "run Scripts/extra_cutouts.py")):
        if not os.path.exists(path):
            sys.exit(f"extra_backgrounds: {path} is missing ({hint} first)")
    roots = fetch_packages(os.path.join(data, "downloads", "backgrounds"), os.path.join(data, "extracted"))
    stamps_root = os.path.join(data, "extracted", "tuxpaint-stamps-default")
    cutouts = training_cutouts(data)
    print(f"[extra_backgrounds] {sum(map(len, PHOTOS.values()))} wallpapers, {len(cutouts)} training cut-outs, "
          f"{args.per_background} pastes each", flush=True)

    photos_dir, masks_dir = os.path.join(out, "photos"), os.path.join(out, "masks")
    licenses = os.path.join(out, "licenses")
    os.makedirs(licenses, exist_ok=True)
    lines = ["file\tstatus\tmask_fraction\twallpaper_package\twallpaper_path\tcutout_path"]
    accepted = []
    for package, names in PHOTOS.items():
        shutil.copyfile(os.path.join(roots[package], "usr/share/doc", package, "copyright"),
                        os.path.join(licenses, package + ".copyright"))
        for name in names:
            relative = "usr/share/backgrounds/" + name
            bgr = cv2.imread(os.path.join(roots[package], relative))
            if bgr is None:
                sys.exit(f"extra_backgrounds: cannot read {relative} of {package}")
            scale = min(1.0, LONG_SIDE / max(bgr.shape[:2]))
            size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
            background = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[:, :, ::-1]
            base = "wallpapers." + package + "__" + os.path.splitext(os.path.basename(name))[0]
            rng = np.random.default_rng(seed_of("background:" + package + "/" + name))
            picks = rng.choice(len(cutouts), size=args.per_background, replace=False)
            for index, pick in enumerate(picks):
                stem, source_path = cutouts[int(pick)]
                file = f"{base}-{index}"
                status, fraction = paste_and_keep(
                    os.path.join(stamps_root, source_path), background, rng, os.path.join(out, "%s", file + ".png"))
                if status == "accepted":
                    accepted.append(file)
                lines.append(f"{file}.png\t{status}\t{fraction:.4f}\t{package}\t{relative}\t{source_path}")
    write_text_atomic(os.path.join(out, "manifest.tsv"), "\n".join(lines) + "\n")

    write_contact_sheets(accepted, photos_dir, masks_dir, os.path.join(out, "contact_sheets"), "backgrounds",
                         "wallpaper pastes")
    half_b = {line.strip() for line in open(os.path.join(data, "splits", "extra-b.txt"), encoding="utf-8")}
    plus = os.path.join(data, "extra", "train-plus")
    kept = sorted(f[:-4] for f in os.listdir(os.path.join(plus, "photos")) if f[:-4] not in half_b)
    halfplus = os.path.join(out, "train-halfplus-bg")
    link_photo_folder(halfplus, [(plus, stem) for stem in kept] + [(out, stem) for stem in accepted])
    print(f"[extra_backgrounds] pasted {len(accepted)} of {len(lines) - 1}; {halfplus}: {len(kept) + len(accepted)} "
          f"photos ({len(kept)} of HGComprisTrainHalfPlus + {len(accepted)} new)", flush=True)


if __name__ == "__main__":
    main()
