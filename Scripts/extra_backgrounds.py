#!/usr/bin/env python3
"""More backgrounds for training (issue 25): the photographic desktop wallpapers of four Debian
packages and the GCompris scene photos that have no single subject, each with training-side Tux
Paint cut-outs pasted onto it.

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
renders, blurred gradients and illustrations are left out): `PHOTOS` below. The first set (three
packages, 26 photos) is `data/HGComprisTrainHalfPlusBg`'s; the second adds 12 photographs of
`plasma-workspace-wallpapers` and `GCOMPRIS_SCENES`: the photographs of GCompris's photo folders
that `make data` dropped because GrabCut found no single subject in them (underwater scenes,
landscapes, monuments in their scene, objects that fill the frame), from the training side only (no
folder of the tuning or test lists, and not the two whose subject a tuning or test photo shows).

Output (not committed): OUT/photos, OUT/masks (long side at most 512 px), OUT/manifest.tsv,
OUT/licenses/ (each package's copyright file), OUT/contact_sheets/, and the photo folders for
`gknet synthesize`, with hard links to the photos of `data/HGComprisTrainHalfPlus` (training photos
+ half A) and the new pastes: OUT/train-halfplus-bg/ (the first set) and OUT/train-halfplus-bg2/
(both sets).

Usage: .venv-data/bin/python Scripts/extra_backgrounds.py [--data data] [--output data/extra/backgrounds]
(after make data, Scripts/make_splits.sh, extra_cutouts.py and extra_halves.py; downloads the four
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
    "plasma-workspace-wallpapers": "4:5.27.5-2",
}
# The photographs among the packages' images (first set: usr/share/backgrounds/...).
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
# Second set: the photographs of plasma-workspace-wallpapers (usr/share/wallpapers/NAME/contents/images/, the
# largest file of each)...
PLASMA_PHOTOS = [
    name + "/contents/images/" + size + ".jpg" for name, size in (
        ("BytheWater", "2560x1600"), ("ColdRipple", "2560x1600"), ("ColorfulCups", "2560x1600"),
        ("DarkestHour", "2560x1600"), ("EveningGlow", "2560x1600"), ("FallenLeaf", "2560x1600"), ("Grey", "2560x1600"),
        ("Kite", "2560x1600"), ("OneStandsOut", "2560x1600"), ("Path", "2560x1600"), ("Volna", "5120x2880"),
        ("summer_1am", "2560x1600"))
]
# ... and GCompris photos `make data` rejected for their mask (manifest stems; read from its rcc extraction).
# Left out although on the training side: categorization.monuments__victoriaMemorial (the test split has
# explore_monuments.india__victoriaMemorial) and details__GizahPyramids_background (the tuning split's Egyptian
# pyramids). The nearest tuning or test photo is 76 bits (of 240) away by difference hash.
GCOMPRIS_SCENES = [
    "categorization.monuments__greatWall", "categorization.monuments__mountRushmore", "categorization.others__baseball",
    "categorization.others__igloo", "categorization.others__pan", "categorization.others__spoons",
    "categorization.others__volleyball", "categorization.tools__hammer4", "categorization.tools__screwDriver1",
    "categorization.tools__sickle", "categorization.tools__tweezer", "clickgame__sea1", "clickgame__sea2",
    "clickgame__sea3", "clickgame__sea4", "clickgame__sea5", "details__EilanDonanCastle_background",
    "details__TajMahal_background", "details__TowerBridgeLondon_background", "erase__spoonbills",
    "explore_monuments.france__chateaudeChenonceau", "explore_monuments.france__rocamadour",
    "explore_monuments.usa__canyondeChelly", "explore_monuments.usa__castleClinton",
    "explore_monuments.usa__fortSumter",
    "explore_monuments.usa__navajo", "explore_monuments.usa__statueofLiberty",
    "explore_monuments.wonders__christTheRedeemer", "explore_monuments.wonders__greatWallofChina",
    "explore_monuments.wonders__machuPicchu", "explore_monuments.wonders__tajMahal",
]
LONG_SIDE = 512


def fetch_packages(downloads, extracted):
    """The packages' .deb files (apt-get download when missing), extracted with dpkg-deb -x."""
    os.makedirs(downloads, exist_ok=True)
    roots = {}
    for package, version in PACKAGES.items():
        # apt writes a version's epoch colon as %3a in the file name
        pattern = os.path.join(downloads, f"{package}_{version.replace(':', '%3a')}_*.deb")
        debs = glob.glob(pattern)
        if not debs:
            print(f"[extra_backgrounds] apt-get download {package}={version}", flush=True)
            subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=downloads, check=True)
            debs = glob.glob(pattern)
        if not debs:
            sys.exit(f"extra_backgrounds: no {package}_{version} .deb in {downloads}")
        root = os.path.join(extracted, package)
        if not os.path.isdir(os.path.join(root, "usr")):
            os.makedirs(root, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", debs[0], root], check=True)
        roots[package] = root
    return roots


def training_cutouts(data, rows):
    """(stem, stamp path) of every Tux Paint cut-out the training split already uses (ROWS: make data's manifest
    by stem)."""
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
    rows = {r["file"][:-4]: r for r in read_manifest(os.path.join(data, "manifest.tsv"))}
    cutouts = training_cutouts(data, rows)
    print(f"[extra_backgrounds] {sum(map(len, PHOTOS.values()))} + {len(PLASMA_PHOTOS)} wallpapers and "
          f"{len(GCOMPRIS_SCENES)} GCompris scenes, {len(cutouts)} training cut-outs, "
          f"{args.per_background} pastes each", flush=True)

    photos_dir, masks_dir = os.path.join(out, "photos"), os.path.join(out, "masks")
    licenses = os.path.join(out, "licenses")
    os.makedirs(licenses, exist_ok=True)
    for package in PACKAGES:
        shutil.copyfile(os.path.join(roots[package], "usr/share/doc", package, "copyright"),
                        os.path.join(licenses, package + ".copyright"))
    lines = ["file\tstatus\tmask_fraction\tbackground_source\tbackground_path\tcutout_path"]
    first, second = [], []
    for first_set, source, relative, path, key, base in backgrounds(data, roots, rows):
        bgr = cv2.imread(path)
        if bgr is None:
            sys.exit(f"extra_backgrounds: cannot read {relative} of {source}")
        scale = min(1.0, LONG_SIDE / max(bgr.shape[:2]))
        size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
        background = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[:, :, ::-1]
        rng = np.random.default_rng(seed_of("background:" + key))
        picks = rng.choice(len(cutouts), size=args.per_background, replace=False)
        for index, pick in enumerate(picks):
            stem, source_path = cutouts[int(pick)]
            file = f"{base}-{index}"
            status, fraction = paste_and_keep(
                os.path.join(stamps_root, source_path), background, rng, os.path.join(out, "%s", file + ".png"))
            if status == "accepted":
                (first if first_set else second).append(file)
            lines.append(f"{file}.png\t{status}\t{fraction:.4f}\t{source}\t{relative}\t{source_path}")
    write_text_atomic(os.path.join(out, "manifest.tsv"), "\n".join(lines) + "\n")

    every = first + second
    write_contact_sheets(every, photos_dir, masks_dir, os.path.join(out, "contact_sheets"), "backgrounds",
                         "background pastes")
    half_b = {line.strip() for line in open(os.path.join(data, "splits", "extra-b.txt"), encoding="utf-8")}
    plus = os.path.join(data, "extra", "train-plus")
    kept = sorted(f[:-4] for f in os.listdir(os.path.join(plus, "photos")) if f[:-4] not in half_b)
    for folder, new in (("train-halfplus-bg", first), ("train-halfplus-bg2", every)):
        target = os.path.join(out, folder)
        link_photo_folder(target, [(plus, stem) for stem in kept] + [(out, stem) for stem in new])
        print(f"[extra_backgrounds] {target}: {len(kept) + len(new)} photos ({len(kept)} of HGComprisTrainHalfPlus "
              f"+ {len(new)} pastes)", flush=True)
    print(f"[extra_backgrounds] pasted {len(every)} of {len(lines) - 1}", flush=True)


def backgrounds(data, roots, rows):
    """(first set?, source, path in the source, file path, seed key, output base name) of every background: the
    first set's wallpapers (seed key "PACKAGE/NAME", as when it was the only set), then plasma's photographs and
    the GCompris scenes (ROWS: make data's manifest by stem; the files are under DATA/work/gcompris-rcc, where make
    data extracted the rcc bundles)."""
    for package, names in PHOTOS.items():
        for name in names:
            relative = "usr/share/backgrounds/" + name
            yield True, package, relative, os.path.join(roots[package], relative), package + "/" + name, \
                "wallpapers." + package + "__" + os.path.splitext(os.path.basename(name))[0]
    package = "plasma-workspace-wallpapers"
    for name in PLASMA_PHOTOS:
        relative = "usr/share/wallpapers/" + name
        yield False, package, relative, os.path.join(roots[package], relative), package + "/" + relative, \
            "wallpapers." + package + "__" + name.split("/", 1)[0]
    for stem in GCOMPRIS_SCENES:
        if stem not in rows or rows[stem]["status"] != "rejected":
            sys.exit(f"extra_backgrounds: {stem} is not a rejected photo of {data}/manifest.tsv")
        bundle, inner = rows[stem]["source_path"].split(".rcc:", 1)  # usr/share/gcompris-qt/rcc/NAME.rcc:gcompris/...
        relative = os.path.join(os.path.basename(bundle), inner)
        yield False, "gcompris-qt-data", relative, os.path.join(data, "work", "gcompris-rcc", relative), \
            "gcompris-qt-data/" + relative, "scenes." + stem


if __name__ == "__main__":
    main()
