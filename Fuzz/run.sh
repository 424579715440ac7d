#!/usr/bin/env bash
# Runs fuzz targets built by Fuzz/build.sh and prints, per target: iterations, coverage at start
# and end (libFuzzer's cov = code edges, ft = features), corpus units found, and crashes.
#
# Usage: Fuzz/run.sh [Target...]            (default: every Fuzz/*/main.swift)
# Environment:
#   FUZZ_RUNS=N      iterations per target (default 100000)
#   FUZZ_SECONDS=S   time budget per target instead (overrides FUZZ_RUNS)
#   FUZZ_TIMEOUT=S   one input running longer is a hang (default 10)
#   FUZZ_KEEP=1      keep the corpus grown by earlier runs (default: start from the seeds only)
#   FUZZ_SEED=N      libFuzzer's random seed (default: a new one each run; fuzz-smoke uses 1)
# Logs: .build-fuzz/logs/<Target>.log; crashing inputs: .build-fuzz/artifacts/<Target>/.
# Exit status: 1 if any target crashed, hung, leaked or hit a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=.build-fuzz
RUNS=${FUZZ_RUNS:-100000}
TIMEOUT=${FUZZ_TIMEOUT:-10}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for main in Fuzz/*/main.swift; do targets+=("$(basename "$(dirname "$main")")"); done
fi
Fuzz/build.sh "${targets[@]}"

if [[ -n ${FUZZ_SECONDS:-} ]]; then
    budget=(-max_total_time="$FUZZ_SECONDS" -runs=-1)
else
    budget=(-runs="$RUNS")
fi
[[ -n ${FUZZ_SEED:-} ]] && budget+=(-seed="$FUZZ_SEED")

# Targets that need files (DatasetList's tree, SafeTensors' restore path) write them to TMPDIR;
# a RAM disk makes them several times faster.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi

failed=0
summary=()
for target in "${targets[@]}"; do
    corpus=$OUT/corpus/$target
    artifacts=$OUT/artifacts/$target
    log=$OUT/logs/$target.log
    [[ ${FUZZ_KEEP:-0} == 1 ]] || rm -rf "$corpus"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    echo "fuzz: $target (${budget[*]}), log $log"
    start=$(date +%s)
    # Scratch corpus first (new units go there), then the committed seeds and regressions (read only).
    set +e
    # Inputs that once crashed (Fuzz/<Target>/regressions) are seeds too.
    regressions=()
    [[ -d Fuzz/$target/regressions ]] && regressions=("Fuzz/$target/regressions")
    dictionary=()
    [[ -f Fuzz/$target/dictionary ]] && dictionary=(-dict="Fuzz/$target/dictionary")
    # The Swift runtime's own backtracer is slow and would race libFuzzer's crash handler.
    # LeakSanitizer: only the documented toolchain and library leaks are suppressed.
    SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/sanitizers/lsan.supp" "$OUT/$target" "${budget[@]}" "${dictionary[@]}" -timeout="$TIMEOUT" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" "Fuzz/$target/corpus" "${regressions[@]}" >"$log" 2>&1
    status=$?
    set -e
    seconds=$(( $(date +%s) - start ))
    inited=$(grep -m1 -o 'INITED cov: [0-9]* ft: [0-9]*' "$log" | awk '{print $3 "/" $5}' || true)
    final=$(grep -o '#[0-9]*[[:space:]]*DONE[[:space:]]*cov: [0-9]* ft: [0-9]*' "$log" | tail -1 | awk '{print $4 "/" $6}' || true)
    executed=$(grep -o 'stat::number_of_executed_units:[[:space:]]*[0-9]*' "$log" | awk '{print $2}' || true)
    added=$(grep -o 'stat::new_units_added:[[:space:]]*[0-9]*' "$log" | awk '{print $2}' || true)
    crashes=$(grep -cE '^==[0-9]+==ERROR|^SUMMARY: (AddressSanitizer|libFuzzer)|^Fatal error|deadly signal|ALARM: working on the last Unit' "$log" || true)
    result=ok
    if [[ $status -ne 0 ]]; then
        result="FAILED (exit $status): $(ls "$artifacts" | tr '\n' ' ')"
        failed=1
    fi
    summary+=("$(printf '%-15s %10s %8ss  cov/ft %13s -> %-13s  new units %5s  crashes %s  %s' \
        "$target" "${executed:-?}" "$seconds" "${inited:-?}" "${final:-?}" "${added:-?}" "$crashes" "$result")")
done

echo
printf '%-15s %10s %9s  %s\n' target iterations time "coverage (edges/features) seeds -> end, corpus units added, crash reports"
printf '%s\n' "${summary[@]}"
exit $failed
