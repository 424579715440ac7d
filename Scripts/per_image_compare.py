#!/usr/bin/env python3
"""Per-image comparison of a model with the composite itself (docs/results.md, Models/README.md).

    gknet evaluate --dataset D --baseline identity --per-image identity.csv
    gknet evaluate --dataset D --model M --per-image model.csv
    python3 Scripts/per_image_compare.py model.csv identity.csv [--best 3 --worst 3]

Prints how many images the model makes worse than the composite (by fMSE), the mean fMSE ratio,
the median change, and the names of the images it improves most and least (by fMSE difference).
"""
import argparse
import csv
import statistics


def read(path):
    with open(path, newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("identity")
    parser.add_argument("--best", type=int, default=3)
    parser.add_argument("--worst", type=int, default=3)
    args = parser.parse_args()
    model, identity = read(args.model), read(args.identity)
    if set(model) != set(identity):
        raise SystemExit(f"the two files list different images ({len(model)} vs {len(identity)})")
    names = sorted(model)
    change = {n: float(model[n]["fmse"]) - float(identity[n]["fmse"]) for n in names}
    worse = [n for n in names if change[n] > 0]
    print(f"images: {len(names)}; fMSE worse than the composite: {len(worse)} ({100 * len(worse) / len(names):.1f} %)")
    print(f"median fMSE change: {statistics.median(change.values()):+.1f}; "
          f"mean fMSE: model {statistics.fmean(float(model[n]['fmse']) for n in names):.2f}, "
          f"composite {statistics.fmean(float(identity[n]['fmse']) for n in names):.2f}")
    ranked = sorted(names, key=lambda n: change[n])
    print("most improved:", ", ".join(f"{n} ({change[n]:+.0f})" for n in ranked[:args.best]))
    print("most worsened:", ", ".join(f"{n} ({change[n]:+.0f})" for n in ranked[::-1][:args.worst]))


if __name__ == "__main__":
    main()
