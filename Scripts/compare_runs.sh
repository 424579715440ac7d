#!/usr/bin/env bash
# Runs the default-model comparison configurations (CONFIGS/*.json, default configs/compare) one after
# another, each in RUNS/<name> (default RUNS=../runs/compare, outside the work tree), training on
# DATASET (default data/HGCompris), resuming any that stopped.
# Usage: Scripts/compare_runs.sh [name ...]   (default: every config of configs/compare, in the order below)
# Issue 25's comparisons: CONFIGS=configs/compare25 RUNS=../runs/compare25 DATASET=data/HGComprisTrain
#   Scripts/compare_runs.sh mix-residual mix-blend   (legacy-residual with DATASET=data/HGCompris)
# Then: Scripts/compare_table.py RUNS prints the comparison table of docs/results.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-$ROOT/../runs/compare}"
GKNET="${GKNET:-$ROOT/.build/release/gknet}"
CONFIGS="${CONFIGS:-configs/compare}"
DATASET="${DATASET:-data/HGCompris}"
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(residual affine image residual-fixed residual-no-scf residual-256 residual-small)
cd "$ROOT"
mkdir -p "$RUNS"
for name in "${NAMES[@]}"; do
    dir="$RUNS/$name"
    if [ -f "$dir/config.json" ]; then args=(--resume); else args=(--config "$CONFIGS/$name.json"); fi
    echo "[compare] $name: $(date -u +%H:%M:%S)"
    "$GKNET" train --dataset "$DATASET" --run-dir "$dir" "${args[@]}" 2>&1 | tee -a "$RUNS/$name.log" | grep -E "validation|finished|stopped|error" || true
done
echo "[compare] all done: $(date -u +%H:%M:%S)"
