#!/usr/bin/env bash
# The long training run of the default model (configs/default-model.json), resumable: starts it in
# RUN (default ../runs/default-model, outside the work tree) or continues it with --resume. When
# the run folder is missing but docs/runs/default-model/ holds a committed training checkpoint,
# the run is restored from it first (config.json, log.jsonl, last.safetensors), so losing a
# machine costs at most the steps since that commit.
# Usage: Scripts/default_model_run.sh            (GKNET_THREADS sets the kernel threads)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${RUN:-$ROOT/../runs/default-model}"
SAVED="$ROOT/docs/runs/default-model"
cd "$ROOT"
if [ ! -f "$RUN/config.json" ] && [ -f "$SAVED/last.safetensors" ]; then
    echo "[default-model] restoring the run from $SAVED"
    mkdir -p "$RUN"
    cp "$SAVED/config.json" "$SAVED/log.jsonl" "$SAVED/last.safetensors" "$RUN/"
fi
if [ -f "$RUN/config.json" ]; then args=(--resume); else args=(--config configs/default-model.json); fi
exec .build/release/gknet train --dataset data/HGCompris --run-dir "$RUN" "${args[@]}"
