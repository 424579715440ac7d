#!/usr/bin/env bash
# Data-parallel scaling on this machine (docs/scaling.md): for each preset, training images/s of
# 1 process x 2 threads against `mpirun -np 2` x 1 thread (same global batch, same data), then the
# gradient allreduce time per preset (gknet-bench allreduce). Needs a release build of gknet and
# gknet-bench, Open MPI (make deps) and a dataset (default data/HGCompris from make data).
# Usage: Scripts/scaling_bench.sh [presets] [steps]     e.g. Scripts/scaling_bench.sh "tiny small paper" 8
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PRESETS="${1:-tiny small paper}"
STEPS="${2:-8}"
DATASET="${DATASET:-data/HGCompris}"
BATCH="${BATCH:-8}"
SIZE="${SIZE:-256}"
GKNET=.build/release/gknet
WORK="$(mktemp -d -t gknet-scaling-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo no AVX-512); batch $BATCH at ${SIZE}px, $STEPS steps (first 2 not timed)"

# images/s over the timed steps of a run's log (steps 3...)
rate() {
    python3 - "$1" "$BATCH" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"loss"' in line]
timed = [r for r in rows if r["step"] > 2]
seconds = sum(int(sys.argv[2]) / r["images_per_second"] for r in timed)
print(f"{len(timed) * int(sys.argv[2]) / seconds:.2f}")
PY
}

printf '%-6s %18s %18s %8s\n' preset "1 x 2 threads" "2 ranks x 1 thread" ratio
for preset in $PRESETS; do
    for layout in single pair; do
        threads=$([ $layout = single ] && echo 2 || echo 1)
        cat > "$WORK/$preset-$layout.json" <<JSON
{"preset": "$preset", "input_size": $SIZE, "batch_size": $BATCH, "steps": $STEPS, "validation_interval": 0,
 "validation_limit": 1, "checkpoint_interval": 100000, "log_interval": 100000, "warmup_steps": 1,
 "threads": $threads, "seed": 1}
JSON
        run=("$GKNET" train --dataset "$DATASET" --run-dir "$WORK/$preset-$layout" --config "$WORK/$preset-$layout.json")
        if [ $layout = single ]; then
            GKNET_THREADS=2 "${run[@]}" > "$WORK/$preset-$layout.out" 2>&1
        else
            GKNET_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none "${run[@]}" > "$WORK/$preset-$layout.out" 2>&1
        fi
    done
    one=$(rate "$WORK/$preset-single/log.jsonl")
    two=$(rate "$WORK/$preset-pair/log.jsonl")
    printf '%-6s %18s %18s %8s\n' "$preset" "$one img/s" "$two img/s" "$(python3 -c "print(f'{$two / $one:.2f}')")"
done
mpirun -np 2 --oversubscribe .build/release/gknet-bench allreduce --presets "$(echo $PRESETS | tr ' ' ,)"
