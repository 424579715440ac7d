#!/usr/bin/env bash
# The numbers of docs/results.md "The shipped model" and Models/README.md for a model file, on the
# three splits (docs/evaluation.md, "Splits"): tuning (data/HGComprisTune), test (data/HGComprisTest)
# and the legacy 220 validation composites (data/HGCompris), each at 256x256 with the result against
# the composite (images made worse, median fMSE change, per composite-difficulty band); Reinhard on
# the legacy set; full resolution on the 1024 px pairs of each split (every full-resolution method
# of the model's head on the tuning pairs); comparison sheets of the best and the worst test case of
# each difficulty band (by fMSE change vs the composite).
# Usage: Scripts/model_report.sh [MODEL] [OUT]   (defaults: Models/gknet-default.safetensors, out/model-report)
# Needs the sets of Scripts/make_splits.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${1:-$ROOT/Models/gknet-default.safetensors}"
OUT="${2:-$ROOT/out/model-report}"
GKNET="${GKNET:-$ROOT/.build/release/gknet}"
cd "$ROOT"
mkdir -p "$OUT/sheets"
for row in "tune HGComprisTune" "test HGComprisTest" "legacy HGCompris"; do
    set -- $row
    echo "== $1 split (data/$2), 256x256"
    "$GKNET" evaluate --dataset "data/$2" --model "$MODEL" --per-image "$OUT/$1.csv" --json "$OUT/$1.json"
done
echo "== legacy split: Reinhard"
"$GKNET" evaluate --dataset data/HGCompris --baseline reinhard | grep '^All '
echo "== full resolution"
affine=$(head -c 65536 "$MODEL" | grep -aq 'output\\":\\"affine' && echo upsampled-transform || true)
for method in local-affine upsampled-residual $affine; do
    echo "tune pairs, $method:"
    "$GKNET" evaluate --dataset data/HGComprisTune1024 --model "$MODEL" --resolution full --method "$method" | grep -E '^(All|fMSE) '
done
for set in HGComprisTune1024 HGComprisTest1024 HGCompris1024; do
    echo "$set, default method:"
    "$GKNET" evaluate --dataset "data/$set" --model "$MODEL" --resolution full | grep -E '^(All|fMSE) '
    echo "$set, 256x256 protocol:"
    "$GKNET" evaluate --dataset "data/$set" --model "$MODEL" | grep -E '^(All|fMSE) '
done
echo "== comparison sheets: best and worst test case per composite-difficulty band"
for name in $(python3 - "$OUT/test.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for band in ("<300", "300-1000", "1000-3000", ">=3000"):
    members = sorted((float(r["fmse"]) - float(r["composite_fmse"]), r["name"]) for r in rows if r["difficulty"] == band)
    if members:
        print(members[0][1], members[-1][1])
PY
); do
    stem="${name%.*}"; photo="${stem%_*_*}"
    mask=$(ls data/HGComprisTest/masks/"${stem%_*}".* | head -1); real=$(ls data/HGComprisTest/real_images/"$photo".* | head -1)
    "$GKNET" harmonize "data/HGComprisTest/composite_images/$name" "$mask" -o "$OUT/sheets/$stem.png" \
        --comparison "$OUT/sheets/$stem-sheet.png" --target "$real" --model "$MODEL" > /dev/null
    echo "$OUT/sheets/$stem-sheet.png"
done
