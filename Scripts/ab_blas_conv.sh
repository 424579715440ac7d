#!/usr/bin/env bash
# The 2x2 A/B of docs/benchmarks.md "OpenBLAS's kernels on processors it does not know": OpenBLAS core
# (Prescott forced, or the automatic correction) x 3x3 convolution path (Winograd forced with
# GKNET_WINOGRAD_MIN_TILES=128, or automatic), interleaved, 2 rounds, 2 threads.
# Usage: Scripts/ab_blas_conv.sh   (after gknet-bench model --write-data /tmp/bench-data; B= another gknet-bench)
B=${B:-.build/release/gknet-bench}
for r in 1 2; do for c in tiny-train128 small-train128 paper-infer tiny-train; do
  rep=2; [ $c = paper-infer ] && rep=1; runs=4; [ $c = tiny-train ] && runs=2
  line="round $r $c"
  for combo in "Prescott 128" "Prescott auto" "auto 128" "auto auto"; do
    set -- $combo
    envs=""; [ $1 = Prescott ] && envs="OPENBLAS_CORETYPE=Prescott"; [ $2 = 128 ] && envs="$envs GKNET_WINOGRAD_MIN_TILES=128"
    t=$(env $envs $B model --case $c --threads 2 --replicas $rep --data /tmp/bench-data --runs $runs --warmup 1 2>/dev/null | tail -1 | cut -f2)
    line="$line | $1/$2 $t"
  done
  echo "$line"
done; done
