#!/usr/bin/env python3
"""Per-photo lists of the tuning, test and training splits (docs/data.md, "Splits").

A GCompris photo belongs to the tuning split when its source folder (the file name before "__",
"." read as "/") equals a line of the tuning folder list or lies below it, to the test split when
the same holds for the test folder list, and to the training split otherwise. A Tux Paint cut-out
belongs to the split of the photo it was pasted on (the manifest's "pasted on <photo>"), so no
photo, background or object, is in two splits. Writes, one file stem per line (the syntax of
`gknet synthesize --include/--exclude/--holdout`):

    OUTPUT/tune.txt  OUTPUT/test.txt  OUTPUT/train.txt  OUTPUT/not-train.txt (tune + test)  OUTPUT/all.txt ("*")

Usage: python3 Scripts/split_lists.py --manifest data/manifest.tsv --tune Scripts/holdout_folders.txt \
           --test Scripts/test_folders.txt --output data/splits
Standard library only.
"""
import argparse
import csv
import os
import sys


def read_folders(path):
    folders = []
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip().rstrip("/")
            if line:
                folders.append(line)
    return folders


def source_folder(stem):
    return stem.split("__", 1)[0].replace(".", "/") if "__" in stem else ""


def in_folders(stem, folders):
    folder = source_folder(stem)
    return any(folder == f or folder.startswith(f + "/") for f in folders)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="manifest.tsv written by `make data`")
    parser.add_argument("--tune", required=True, help="source folders of the tuning split")
    parser.add_argument("--test", required=True, help="source folders of the test split")
    parser.add_argument("--output", required=True, help="folder for the list files")
    args = parser.parse_args()

    tune_folders, test_folders = read_folders(args.tune), read_folders(args.test)
    shared = [f for f in tune_folders for g in test_folders if f == g or f.startswith(g + "/") or g.startswith(f + "/")]
    if shared:
        sys.exit(f"tuning and test folder lists overlap: {', '.join(sorted(set(shared)))}")

    with open(args.manifest, newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["status"] == "accepted"]
    split = {}
    pasted_on = {}
    for row in rows:
        stem = os.path.splitext(row["file"])[0]
        if row["reason"].startswith("pasted on "):
            pasted_on[stem] = row["reason"][len("pasted on "):].strip()
            continue
        split[stem] = "tune" if in_folders(stem, tune_folders) else "test" if in_folders(stem, test_folders) else "train"
    for stem, background in pasted_on.items():
        if background not in split:
            sys.exit(f"{stem}: pasted on {background}, which is not an accepted photo of the manifest")
        split[stem] = split[background]
        # a cut-out from a listed folder must land on a photo of that split
        own = "tune" if in_folders(stem, tune_folders) else "test" if in_folders(stem, test_folders) else None
        if own is not None and own != split[stem]:
            sys.exit(f"{stem}: its folder is in the {own} list but it was pasted on {background} ({split[stem]})")

    os.makedirs(args.output, exist_ok=True)
    names = {name: sorted(s for s in split if split[s] == name) for name in ("tune", "test", "train")}
    for name, stems in names.items():
        with open(os.path.join(args.output, f"{name}.txt"), "w") as handle:
            handle.write("".join(s + "\n" for s in stems))
    with open(os.path.join(args.output, "not-train.txt"), "w") as handle:
        handle.write("".join(s + "\n" for s in sorted(names["tune"] + names["test"])))
    with open(os.path.join(args.output, "all.txt"), "w") as handle:
        handle.write("*\n")
    legacy = sorted(os.path.splitext(r["file"])[0] for r in rows if r["split"] == "holdout")
    for name, stems in names.items():
        pastes = sum(1 for s in stems if s in pasted_on)
        print(f"{name}: {len(stems)} photos ({len(stems) - pastes} GCompris, {pastes} Tux Paint cut-outs pasted on them)")
    print("tuning split = the legacy hold-out of the manifest" if legacy == names["tune"]
          else "note: the tuning split differs from the manifest's hold-out")


if __name__ == "__main__":
    main()
