#!/usr/bin/env bash
# The datasets of issue 25 from the photos of `make data` (docs/data.md, "Splits"):
#   data/splits/           per-photo lists (Scripts/split_lists.py): tune, test, train, not-train
#   data/HGComprisTrain    training composites, realistic difficulty (train list; its test list is empty)
#   data/HGComprisTrainHalfPlus, data/HGComprisExtraFitB
#                          the training photos + half A of the extra Tux Paint pastes (Scripts/extra_halves.py),
#                          and half B alone: the gate-fit set of a model trained on the first
#   data/HGComprisFit      other composites of the same training photos (seed 5): what `gknet calibrate
#                          --gate` fits its weights on for a model trained on data/HGComprisTrain
#   data/HGComprisTune     tuning composites of the legacy hold-out folders (Scripts/holdout_folders.txt),
#                          realistic difficulty, all in the test list: chooses steps, configurations,
#                          full-resolution settings and the change scale (gknet calibrate)
#   data/HGComprisTest     test composites of other folders (Scripts/test_folders.txt), realistic
#                          difficulty, all in the test list: scored once per shipped model
#   data/HGCompris         legacy: today's 220 validation composites (and 1,220 training ones), as made
#                          before (legacy difficulty); the same files as docs/results.md's command
#   data/HGComprisTune1024, data/HGComprisTest1024
#                          the photos of those splits that have 1024 px originals, at full resolution,
#                          realistic difficulty; data/HGCompris1024 the legacy 56 pairs
# Usage: Scripts/make_splits.sh   (after `make data` and a release build; GKNET and PYTHON override the
# gknet binary and a Python with Pillow (WebP) for the full-resolution photos, default .venv-ref;
# DATA_PYTHON the Python with OpenCV of make data, default .venv-data)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GKNET="${GKNET:-$ROOT/.build/release/gknet}"
PYTHON="${PYTHON:-$ROOT/.venv-ref/bin/python}"
DATA_PYTHON="${DATA_PYTHON:-$ROOT/.venv-data/bin/python}"   # OpenCV, for Scripts/extra_cutouts.py (made by make data)
cd "$ROOT"
[ -f data/manifest.tsv ] || { echo "data/manifest.tsv missing: run make data first" >&2; exit 1; }
[ -x "$GKNET" ] || { echo "$GKNET missing: swift build -c release --product gknet" >&2; exit 1; }

echo "== per-photo lists"
python3 Scripts/split_lists.py --manifest data/manifest.tsv --tune Scripts/holdout_folders.txt \
    --test Scripts/test_folders.txt --output data/splits

synthesize() { "$GKNET" synthesize --photos data/photos --masks data/masks "$@" | grep -v '^skipped '; }
echo "== training composites (realistic difficulty)"
synthesize --output data/HGComprisTrain --exclude data/splits/not-train.txt --test-fraction 0 --per-photo 6 --seed 0
echo "== gate-fit composites (the training photos, other draws)"
synthesize --output data/HGComprisFit --exclude data/splits/not-train.txt --test-fraction 0 --per-photo 6 --seed 5
echo "== more content: Tux Paint cut-outs over the quota, on training photos"
"$DATA_PYTHON" Scripts/extra_cutouts.py --data data
plus() { "$GKNET" synthesize --test-fraction 0 --per-photo 6 "$@" | grep -v '^skipped '; }
plus --photos data/extra/train-plus/photos --masks data/extra/train-plus/masks --output data/HGComprisTrainPlus --seed 0
plus --photos data/extra/train-plus/photos --masks data/extra/train-plus/masks --output data/HGComprisFitPlus --seed 5
plus --photos data/extra/photos --masks data/extra/masks --output data/HGComprisExtraFit --seed 5
echo "== half of the new objects for training, the other half for the gate"
python3 Scripts/extra_halves.py --data data
plus --photos data/extra/train-plus/photos --masks data/extra/train-plus/masks --output data/HGComprisTrainHalfPlus \
    --exclude data/splits/extra-b.txt --seed 0
plus --photos data/extra/photos --masks data/extra/masks --output data/HGComprisExtraFitB \
    --include data/splits/extra-b.txt --seed 5
echo "== tuning composites"
synthesize --output data/HGComprisTune --include data/splits/tune.txt --holdout data/splits/all.txt \
    --per-photo 5 --seed 1
echo "== test composites"
synthesize --output data/HGComprisTest --include data/splits/test.txt --holdout data/splits/all.txt \
    --per-photo 5 --seed 2
echo "== legacy set (today's validation composites)"
synthesize --output data/HGCompris --holdout Scripts/holdout_folders.txt --per-photo 5 --seed 0 --difficulty legacy

echo "== full resolution (photos with 1024 px originals)"
for split in tune test; do
    rm -rf "data/fullres-$split"
    "$PYTHON" Scripts/fullres_validation.py --data data --output "data/fullres-$split" --list "data/splits/$split.txt" \
        | tail -1
done
rm -rf data/fullres
"$PYTHON" Scripts/fullres_validation.py --data data --output data/fullres | tail -1
fullres() { "$GKNET" synthesize --holdout data/splits/all.txt "$@" | grep -v '^skipped '; }
fullres --photos data/fullres-tune/photos --masks data/fullres-tune/masks --output data/HGComprisTune1024 \
    --per-photo 8 --seed 3
fullres --photos data/fullres-test/photos --masks data/fullres-test/masks --output data/HGComprisTest1024 \
    --per-photo 4 --seed 4
fullres --photos data/fullres/photos --masks data/fullres/masks --output data/HGCompris1024 --per-photo 8 --seed 7 \
    --name HGCompris1024 --difficulty legacy
echo "== done"
