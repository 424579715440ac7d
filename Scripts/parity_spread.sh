#!/usr/bin/env bash
# make test-isa: the parity suites (ops, layers, model presets, optimizer trajectories) under every
# instruction-set setting this CPU can run, at 1 and 2 threads, each comparison's measured error
# recorded (GKNET_PARITY_REPORT, Sources/GKNetTestSupport/Closeness.swift), then the table of the worst
# bound usage per check kind and setting (Scripts/parity_spread.py; docs/robustness.md
# "Tolerances from measured spread"). Exit status: non-zero if any setting failed a test.
#
#   Scripts/parity_spread.sh                 # every setting, threads 1 and 2
#   PARITY_SETTINGS="avx2 avx512" PARITY_THREADS=1 Scripts/parity_spread.sh
#   PARITY_FILTER=GKNetPresetParityTests Scripts/parity_spread.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${PARITY_OUT:-out/parity}"
FILTER="${PARITY_FILTER:-TensorCoreTests|NeuralNetTests|GKNetModelTests}"
THREADS_LIST="${PARITY_THREADS:-1 2}"
SWIFT="${SWIFT:-swift}"

# name | CPU flags it needs | environment. oneDNN picks its kernels up to ONEDNN_MAX_CPU_ISA (fp32
# convolutions differ between AVX2 and AVX-512 blockings); OpenBLAS picks its SGEMM kernel by core type
# (Prescott is the generic kernel it falls back to on a CPU it does not know, e.g. Zen 4 in 0.3.21).
declare -A NEEDS=(
    [default]=""
    [avx2]="avx2 fma"
    [zen]="avx2 fma"
    [generic]=""
    [avx512]="avx512f avx512bw avx512dq avx512vl"
    [avx512bf16]="avx512f avx512bw avx512dq avx512vl avx512_bf16"
)
declare -A ENVIRONMENT=(
    [default]=""
    [avx2]="ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell"
    [zen]="ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Zen"
    [generic]="ONEDNN_MAX_CPU_ISA=SSE41 OPENBLAS_CORETYPE=Prescott"
    [avx512]="ONEDNN_MAX_CPU_ISA=AVX512_CORE OPENBLAS_CORETYPE=SkylakeX"
    [avx512bf16]="ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 OPENBLAS_CORETYPE=Cooperlake"
)
SETTINGS="${PARITY_SETTINGS:-default avx2 zen generic avx512 avx512bf16}"

flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
mkdir -p "$OUT"
echo "parity spread: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), settings: $SETTINGS, threads: $THREADS_LIST"
$SWIFT build --build-tests || exit 1
failed=()
start=$(date +%s)
for setting in $SETTINGS; do
    if [ -z "${ENVIRONMENT[$setting]+set}" ]; then echo "unknown setting $setting"; exit 2; fi
    missing=""
    for flag in ${NEEDS[$setting]}; do [[ "$flags" == *" $flag "* ]] || missing="$missing $flag"; done
    if [ -n "$missing" ]; then echo "skip $setting: this CPU lacks$missing"; continue; fi
    for threads in $THREADS_LIST; do
        name="$setting-t$threads"
        rm -f "$OUT/$name.tsv"
        t0=$(date +%s)
        # shellcheck disable=SC2086
        env ${ENVIRONMENT[$setting]} GKNET_THREADS="$threads" GKNET_PARITY_REPORT="$PWD/$OUT/$name.tsv" \
            $SWIFT test --skip-build --filter "$FILTER" > "$OUT/$name.log" 2>&1
        status=$?
        result=$(grep -E "Test run with [0-9]+ tests" "$OUT/$name.log" | tail -1 | sed 's/^.*Test run/Test run/')
        echo "$name (${ENVIRONMENT[$setting]:-as detected}): exit $status, $(( $(date +%s) - t0 )) s; $result"
        [ $status -eq 0 ] || failed+=("$name")
    done
done
echo "total $(( $(date +%s) - start )) s"
python3 Scripts/parity_spread.py "$OUT"
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED under: ${failed[*]} (logs in $OUT)"; exit 1; fi
