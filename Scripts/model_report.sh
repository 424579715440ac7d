#!/usr/bin/env bash
# The numbers of docs/results.md "The shipped model" and Models/README.md for a model file:
# validation at 256x256 (model, identity, Reinhard; per foreground band), the share of images made
# worse, full resolution on the 1024 px pairs (both full-resolution methods of the model's head),
# and comparison sheets of the 3 best and 3 worst validation cases (by fMSE change vs the composite).
# Usage: Scripts/model_report.sh [MODEL] [OUT]   (defaults: Models/gknet-default.safetensors, out/model-report)
# Needs `make data`, data/HGCompris and data/HGCompris1024 (docs/results.md shows how they are made).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="${1:-$ROOT/Models/gknet-default.safetensors}"
OUT="${2:-$ROOT/out/model-report}"
GKNET="${GKNET:-$ROOT/.build/release/gknet}"
cd "$ROOT"
mkdir -p "$OUT/sheets"
echo "== validation, 256x256: model"
"$GKNET" evaluate --dataset data/HGCompris --model "$MODEL" --per-image "$OUT/model.csv" --json "$OUT/model.json" | tail -6
echo "== validation, 256x256: identity and Reinhard"
"$GKNET" evaluate --dataset data/HGCompris --baseline identity --per-image "$OUT/identity.csv" | tail -5
"$GKNET" evaluate --dataset data/HGCompris --baseline reinhard | tail -5
echo "== per image"
python3 Scripts/per_image_compare.py "$OUT/model.csv" "$OUT/identity.csv" --best 3 --worst 3 | tee "$OUT/per-image.txt"
echo "== full resolution (56 held-out pairs at 1024 px)"
for method in local-affine upsampled-residual $(head -c 65536 "$MODEL" | grep -aq 'output\\":\\"affine' && echo upsampled-transform); do
    printf '%s: ' "$method"; "$GKNET" evaluate --dataset data/HGCompris1024 --model "$MODEL" --resolution full --method "$method" | grep '^All'
done
printf 'default method: '; "$GKNET" evaluate --dataset data/HGCompris1024 --model "$MODEL" --resolution full | grep '^All'
printf '256x256 protocol: '; "$GKNET" evaluate --dataset data/HGCompris1024 --model "$MODEL" | grep '^All'
echo "== comparison sheets of the 3 best and 3 worst validation cases"
for name in $(python3 - "$OUT/model.csv" "$OUT/identity.csv" <<'PY'
import csv, sys
model = {r["name"]: float(r["fmse"]) for r in csv.DictReader(open(sys.argv[1]))}
identity = {r["name"]: float(r["fmse"]) for r in csv.DictReader(open(sys.argv[2]))}
ranked = sorted(model, key=lambda n: model[n] - identity[n])
print(" ".join(ranked[:3] + ranked[-3:]))
PY
); do
    stem="${name%.*}"; photo="${stem%_*_*}"
    mask=$(ls data/HGCompris/masks/"${stem%_*}".* | head -1); real=$(ls data/HGCompris/real_images/"$photo".* | head -1)
    "$GKNET" harmonize "data/HGCompris/composite_images/$name" "$mask" -o "$OUT/sheets/$stem.png" \
        --comparison "$OUT/sheets/$stem-sheet.png" --target "$real" --model "$MODEL" > /dev/null
    echo "$OUT/sheets/$stem-sheet.png"
done
