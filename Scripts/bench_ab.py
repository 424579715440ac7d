#!/usr/bin/env python3
"""A/B timing of two `gknet-bench` builds on `gknet-bench model` cases, interleaved.

    Scripts/bench_ab.py --a before/gknet-bench --b .build/release/gknet-bench \
        --cases tiny-train128,small-train128 --rounds 5 --threads 2

Each round runs every case once with A, then once with B (then B first in the next round, so that
neither build always runs second), each in a process of its own (`--case`, median of its timed
steps). Prints per-round times, and per case the median of A, of B and of the per-round ratios
B / A: on a shared machine the ratio of two runs made one after the other is steadier than the
ratio of two medians taken at different times. Uses the weights and inputs of
`gknet-bench model --write-data DIR` when --data is given (the same as Scripts/bench_model.py).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys


def run_case(binary, case, args):
    command = [binary, "model", "--case", case, "--threads", str(args.threads)]
    if args.data:
        command += ["--data", args.data]
    if args.runs:
        command += ["--runs", str(args.runs)]
    if args.cpu_time:
        command.append("--cpu-time")
    if args.replicas and case.startswith(("tiny-train", "small-train", "paper-train")):
        command += ["--replicas", str(args.replicas)]
    env = dict(os.environ, GKNET_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "GKNET_PROFILE"):
        env.pop(key, None)
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.count("\t") >= 4]
    if result.returncode != 0 or not lines:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return float(lines[-1].split("\t")[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="the 'before' gknet-bench")
    parser.add_argument("--b", required=True, help="the 'after' gknet-bench")
    parser.add_argument("--cases", default="tiny-train128")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, help="timed steps per process (gknet-bench's default otherwise)")
    parser.add_argument("--data", help="folder written by `gknet-bench model --write-data`")
    parser.add_argument("--replicas", type=int, help="training cases: model replicas (gknet-bench's default otherwise)")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time instead of wall time")
    args = parser.parse_args()
    cases = args.cases.split(",")
    times = {(side, case): [] for side in "ab" for case in cases}
    for round_index in range(args.rounds):
        order = [("a", args.a), ("b", args.b)] if round_index % 2 == 0 else [("b", args.b), ("a", args.a)]
        for case in cases:
            for side, binary in order:
                times[(side, case)].append(run_case(binary, case, args))
            print(f"# round {round_index + 1} {case}: A {times[('a', case)][-1]:.1f} ms, "
                  f"B {times[('b', case)][-1]:.1f} ms, loadavg {os.getloadavg()[0]:.2f}", flush=True)
    print(f"\n| case | A ms (median) | B ms (median) | B/A per round | B/A (median of rounds) |")
    print("|---|---:|---:|---|---:|")
    for case in cases:
        a, b = times[("a", case)], times[("b", case)]
        ratios = [y / x for x, y in zip(a, b)]
        print(f"| {case} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | "
              + " ".join(f"{r:.2f}" for r in ratios) + f" | {statistics.median(ratios):.3f} |")


if __name__ == "__main__":
    main()
