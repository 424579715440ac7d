#!/usr/bin/env bash
# A/B of the 3x3 convolution backend in one build (docs/benchmarks.md "3x3 convolutions on oneDNN where it runs AVX-512"):
# A = our Winograd path (GKNET_WINOGRAD_MIN_TILES=128), B = the automatic choice; 3 interleaved rounds, 2 threads.
# Usage: Scripts/ab_conv3x3.sh   (after gknet-bench model --write-data /tmp/bench-data; B= another gknet-bench)
B=${B:-.build/release/gknet-bench}
for r in 1 2 3; do for c in tiny-train128 small-train128 tiny-train small-train paper-infer; do
  rep=2; [ $c = paper-infer ] && rep=1; runs=5; case $c in tiny-train|small-train) runs=2;; esac
  a=$(GKNET_WINOGRAD_MIN_TILES=128 $B model --case $c --threads 2 --replicas $rep --data /tmp/bench-data --runs $runs --warmup 1 2>/dev/null | tail -1 | cut -f2)
  b=$($B model --case $c --threads 2 --replicas $rep --data /tmp/bench-data --runs $runs --warmup 1 2>/dev/null | tail -1 | cut -f2)
  echo "round $r $c winograd(A) $a auto(B) $b B/A $(python3 -c "print(round($b/$a,3))") load $(cut -d' ' -f1 /proc/loadavg)"
done; done
