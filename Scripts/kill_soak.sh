#!/usr/bin/env bash
# kill -9 soak (docs/robustness.md): trains the tiny preset on a small synthesized set,
# kills `gknet train` with SIGKILL at KILLS moments and resumes each time (--resume).
# The moments: the first kill as soon as config.json exists (before any checkpoint); every even
# one while last.safetensors is being written (the kill waits for the process's temporary
# checkpoint file to appear); the others at a random time within a few steps of start-up.
# At the end it checks that
#   1. the run completes with --resume and its checkpoint loads (`gknet inspect --model`),
#   2. no temporary file is left in the run directory,
#   3. the (step, loss) sequence of log.jsonl equals an uninterrupted run's, bit for bit
#      (losses are logged as shortest round-trip decimal text).
#
# Usage: Scripts/kill_soak.sh            (environment: KILLS=20 STEPS=60 SEED=1 GKNET_THREADS=1,
#                                         GKNET=path/to/gknet, default: a release build; WORK=folder)
# Exit status 0 when every check passes; a summary line per kill goes to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

KILLS=${KILLS:-20}
STEPS=${STEPS:-60}
SEED=${SEED:-1}
export GKNET_THREADS=${GKNET_THREADS:-1}
if [[ -z ${GKNET:-} ]]; then
    swift build -c release --product gknet >&2
    GKNET=.build/release/gknet
fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gknet-soak.XXXXXX")}
mkdir -p "$WORK"
echo "kill soak: $KILLS kills, $STEPS steps, seed $SEED, $GKNET_THREADS thread(s), work folder $WORK"

# 1. A small synthesized set: the four sample photos with their masks (renamed to the photos'
#    names, as `gknet synthesize` expects), 4 composites each, long side 96 px.
rm -rf "$WORK/photos" "$WORK/masks" "$WORK/data"
mkdir -p "$WORK/photos" "$WORK/masks"
cp Samples/HGCompris/real_images/*.jpg "$WORK/photos/"
for mask in Samples/HGCompris/masks/*_1.png; do cp "$mask" "$WORK/masks/$(basename "$mask" _1.png).png"; done
"$GKNET" synthesize --photos "$WORK/photos" --masks "$WORK/masks" --output "$WORK/data/HSoak" \
    --per-photo 4 --seed 1 --max-side 96 --test-fraction 0 >"$WORK/synthesize.log" 2>&1
cat >"$WORK/config.json" <<JSON
{"preset": "tiny", "input_size": 64, "batch_size": 2, "steps": $STEPS, "schedule": "cosine", "warmup_steps": 5,
 "validation_interval": 0, "checkpoint_interval": 1, "log_interval": 1, "seed": 3}
JSON

train() {  # train RUN_DIR [--resume | --config FILE]: runs in the background, sets $pid
    "$GKNET" train --dataset "$WORK/data/HSoak" --run-dir "$1" "${@:2}" >>"$1.out" 2>&1 &
    pid=$!
}
losses() {  # the (step, loss) pairs of a run's log, one per line
    grep -o '"loss":[^,}]*\|"step":[0-9]*' "$1/log.jsonl" | paste -d' ' - - | sort -t: -k3 -n
}

# 2. The uninterrupted reference run.
rm -rf "$WORK/reference" "$WORK/soak" "$WORK/reference.out" "$WORK/soak.out"
start=$(date +%s.%N)
train "$WORK/reference" --config "$WORK/config.json"
wait "$pid"
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
step_time=$(awk -v s="$seconds" -v n="$STEPS" 'BEGIN { print s / n }')
printf 'reference: %d steps in %.1f s\n' "$STEPS" "$seconds"

# 3. The soak: KILLS launches, each killed with SIGKILL.
RANDOM=$SEED
landed=0
during_write=0
for ((k = 1; k <= KILLS; k++)); do
    if [[ -f $WORK/soak/config.json ]]; then train "$WORK/soak" --resume; else train "$WORK/soak" --config "$WORK/config.json"; fi
    if ((k == 1)); then
        # The first kill lands as soon as config.json exists, before any checkpoint: the next
        # launch must still be able to --resume (from step 0).
        while kill -0 "$pid" 2>/dev/null && [[ ! -e $WORK/soak/config.json ]]; do sleep 0.002; done
        moment="before the first checkpoint"
    elif ((k % 2 == 0)); then
        # Wait for this process's temporary checkpoint file, then kill in the middle of the write.
        temporary="$WORK/soak/.last.safetensors.$pid.tmp"
        while kill -0 "$pid" 2>/dev/null && [[ ! -e $temporary ]]; do sleep 0.002; done
        moment="during checkpoint write"
    else
        # A random moment within the first few steps after start-up (up to 4 step times).
        delay=$(awk -v r="$RANDOM" -v t="$step_time" 'BEGIN { print r / 32768 * 4 * t + 0.5 }')
        sleep "$delay"
        moment=$(printf 'after %.2f s' "$delay")
    fi
    writing=$( (ls "$WORK/soak"/.*."$pid".tmp 2>/dev/null || true) | wc -l)
    if kill -9 "$pid" 2>/dev/null; then
        landed=$((landed + 1))
        ((writing > 0)) && during_write=$((during_write + 1))
        status="killed"
    else
        status="had already exited"
    fi
    wait "$pid" 2>/dev/null || true
    reached=$( (losses "$WORK/soak" 2>/dev/null || true) | wc -l)
    printf 'kill %2d: %-26s %-18s own temporary files at the kill: %d, log at step %d\n' "$k" "$moment" "$status" "$writing" "$reached"
done

# 4. Finish with --resume and check.
train "$WORK/soak" --resume
wait "$pid"
failures=0
if "$GKNET" inspect --model "$WORK/soak/last.safetensors" --no-forward >"$WORK/inspect.out" 2>&1; then
    echo "check 1: last.safetensors loads (gknet inspect --model)"
else
    echo "check 1 FAILED: last.safetensors does not load (see $WORK/inspect.out)"; failures=$((failures + 1))
fi
leftovers=$(find "$WORK/soak" -name '*.tmp' | wc -l)
if ((leftovers == 0)); then echo "check 2: no temporary files left"; else
    echo "check 2 FAILED: $leftovers temporary files left:"; find "$WORK/soak" -name '*.tmp'; failures=$((failures + 1))
fi
if diff <(losses "$WORK/reference") <(losses "$WORK/soak") >"$WORK/losses.diff"; then
    echo "check 3: the $(losses "$WORK/soak" | wc -l) (step, loss) pairs equal the uninterrupted run's bit for bit"
else
    echo "check 3 FAILED: loss sequences differ (see $WORK/losses.diff)"; failures=$((failures + 1))
fi
echo "kills landed: $landed of $KILLS ($during_write while a temporary file existed); failed checks: $failures"
((failures == 0 && landed == KILLS))
