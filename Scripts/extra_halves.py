#!/usr/bin/env python3
"""Splits the extra Tux Paint pastes of Scripts/extra_cutouts.py into two halves of disjoint object
categories (docs/data.md, "Half of the new objects for training, half for the gate").

A network trained on the training photos plus half A of the new objects can have its change gate
fitted on composites of half B: objects of categories it never saw, so the gate judges its change
as it will be on new content. Whole categories (the Tux Paint folder, e.g. animals/birds) go to one
side; categories are taken in name order and each goes to the side with fewer pastes so far, so the
halves hold about as many pastes. Deterministic: the same data gives the same lists.

Usage: python3 Scripts/extra_halves.py [--data data]     (after Scripts/extra_cutouts.py)
Writes data/splits/extra-a.txt and data/splits/extra-b.txt (one photo stem per line, the syntax of
`gknet synthesize --include/--exclude`) and prints the categories of each side.
"""
import argparse
import os
import sys
from collections import defaultdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data")
    args = parser.parse_args()
    photos = os.path.join(args.data, "extra", "photos")
    if not os.path.isdir(photos):
        print(f"{photos} missing: run Scripts/extra_cutouts.py first", file=sys.stderr)
        return 1
    stems = sorted(os.path.splitext(name)[0] for name in os.listdir(photos) if name.endswith(".png"))
    if not stems:
        print(f"no pastes in {photos}", file=sys.stderr)
        return 1
    by_category = defaultdict(list)
    for stem in stems:
        by_category[stem.split("__", 1)[0]].append(stem)
    sides = {"a": [], "b": []}
    categories = {"a": [], "b": []}
    for category in sorted(by_category):
        side = "a" if len(sides["a"]) <= len(sides["b"]) else "b"
        sides[side].extend(by_category[category])
        categories[side].append(category)
    output = os.path.join(args.data, "splits")
    os.makedirs(output, exist_ok=True)
    for side, members in sides.items():
        path = os.path.join(output, f"extra-{side}.txt")
        with open(path + ".tmp", "w") as handle:
            handle.write("".join(stem + "\n" for stem in sorted(members)))
        os.replace(path + ".tmp", path)
        names = ", ".join(c.removeprefix("tuxpaint.") for c in categories[side])
        print(f"{path}: {len(members)} pastes, {len(categories[side])} categories: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
