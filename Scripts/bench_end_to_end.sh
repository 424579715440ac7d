#!/usr/bin/env bash
# End to end against the step benchmark (issue 26, docs/benchmarks.md "End to end"): the default
# model's configuration cut to 100 steps (75 at 128 px, 25 at 256 px), fresh composites from the
# photos, no validation, a checkpoint every 50 steps, with the step benchmark of both crop sizes
# (same replicas) right before and right after it, averaged; ROUNDS rounds, because single runs on
# a shared machine move by 10-30 %. Prints each round and the medians:
#   train / benchmark = (images/hour of `gknet train`) / (images/hour of the step benchmark).
# Usage: Scripts/bench_end_to_end.sh [ROUNDS]   (env: BIN=folder with release gknet and gknet-bench,
#        RUNS=scratch folder outside the tree; needs data/photos, data/masks and `gknet-bench model
#        --write-data .build/bench-model` done once)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=${BIN:-.build/release}
runs=${RUNS:-/tmp/gknet-e2e}
data=.build/bench-model
mkdir -p "$runs"
rm -f "$runs/rounds.tsv"
[ -f "$data/tiny.safetensors" ] || "$bin/gknet-bench" model --write-data "$data" > /dev/null
python3 - "$runs/e2e.json" <<'EOF'
import json, sys
config = json.load(open("configs/default-model.json"))
config.update(steps=100, validation_interval=0)
config.pop("validation_dataset", None)
json.dump(config, open(sys.argv[1], "w"), indent=1)
EOF
# the step benchmark of one size, in ms per step of 8
step() {
    local case=tiny-train runs=2
    [ "$1" = 128 ] && case=tiny-train128 runs=3
    "$bin/gknet-bench" model --case "$case" --threads 2 --replicas 2 --data "$data" --runs "$runs" | tail -1 | cut -f2
}
for round in $(seq 1 "$rounds"); do
    rm -rf "$runs/run"
    # the step benchmark right before and right after the training run, averaged: the machine's
    # speed drifts by 10-30 % within minutes
    before128=$(step 128)
    before256=$(step 256)
    "$bin/gknet" train --photos data/photos --masks data/masks --exclude Scripts/holdout_folders.txt \
        --run-dir "$runs/run" --config "$runs/e2e.json" > "$runs/train-$round.log" 2>&1
    step128=$(python3 -c "print(($before128 + $(step 128)) / 2)")
    step256=$(python3 -c "print(($before256 + $(step 256)) / 2)")
    python3 - "$runs/run/log.jsonl" "$step128" "$step256" "$round" <<'EOF' | tee -a "$runs/rounds.tsv"
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"images_per_second"' in line]
seconds = {128: [16 / r["images_per_second"] for r in rows if 2 <= r["step"] <= 75],
           256: [16 / r["images_per_second"] for r in rows if r["step"] >= 77]}
bench = {128: float(sys.argv[2]), 256: float(sys.argv[3])}
for size in (128, 256):
    train = 16 * 3600 / statistics.median(seconds[size])
    step = 8 * 3600 / (bench[size] / 1000)
    print(f"round {sys.argv[4]}\t{size}\ttrain_s_per_16={statistics.median(seconds[size]):.3f}\t"
          f"train_images_per_hour={train:.0f}\tbench_ms_per_8={bench[size]:.1f}\t"
          f"bench_images_per_hour={step:.0f}\ttrain_over_bench={train / step:.3f}")
EOF
done
python3 - "$runs/rounds.tsv" <<'EOF'
import statistics, sys
rows = [dict(f.split("=") for f in line.split("\t")[2:]) | {"size": line.split("\t")[1]}
        for line in open(sys.argv[1]) if line.strip()]
for size in ("128", "256"):
    ratios = [float(r["train_over_bench"]) for r in rows if r["size"] == size]
    print(f"end-to-end: {size} px train/benchmark median {statistics.median(ratios):.3f} over {len(ratios)} rounds "
          f"({', '.join(f'{x:.2f}' for x in ratios)})")
EOF
