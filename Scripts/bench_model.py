#!/usr/bin/env python3
"""Whole-model benchmark: our GKNet (gknet-bench model) against its PyTorch twin and ONNX Runtime.

    make bench-model THREADS=2                       # what docs/benchmarks.md "Model" reports
    .venv-ref/bin/python Scripts/bench_model.py --threads 1 --rounds 3 --ours .build/release/gknet-bench

Every measurement runs in a process of its own (so its peak RSS, VmHWM, is that case's alone),
waits for an idle machine first (at most --max-wait seconds; the idle fraction seen is reported),
and rounds interleave the contenders; the best median of the rounds is kept (RSS: the largest).

Contenders, all on the same weights (written by `gknet-bench model --write-data`, the twin loads
them with load_state_dict(strict=True)) and the same inputs:
  ours   gknet-bench model --case <case>: eval mode + withoutGradient / training step with Adam
  torch  Scripts/reference/gknet.py, torch.set_num_threads(T), eval + inference_mode / training
         step (forward, foreground MSE, backward, torch.optim.Adam)
  ort    the twin exported to ONNX (torch.onnx.export, cached), intra_op_num_threads=T

Cases: <preset>-infer (batch 1, 256x256), <preset>-train (batch 8, 256x256) and <preset>-train128 (batch 8,
128x128: the low-resolution phase of the multi-resolution schedule); sgemm (ours,
1024^3) is the GFLOP/s yardstick. GFLOP/s = 2 x MACs (x 3 for a training step) / time. The last
line is machine-readable:
  bench-model: paper_infer_vs_torch=R paper_infer_vs_ort=R small_train_vs_torch=R small_train128_vs_torch=R
               tiny_train_vs_torch=R tiny_train128_vs_torch=R small_train_rss_vs_torch=R
               paper_infer_gflops_frac=F threads=T
(R = ours / theirs, F = our paper-inference GFLOP/s / our SGEMM 1024^3 GFLOP/s).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
GIGA_MACS = {"paper": 19.182, "small": 5.011, "tiny": 1.419}  # per image at 256x256 (count_macs.py)
TRAIN_BATCH = 8
DEFAULT_CASES = ["paper-infer", "small-infer", "small-train", "tiny-train", "small-train128", "tiny-train128"]


# ----------------------------------------------------------------------------------------------
# Machine state
# ----------------------------------------------------------------------------------------------

def cpu_idle_fraction(interval=0.5):
    """Fraction of all CPU time that was idle over `interval` seconds (/proc/stat)."""
    def snapshot():
        fields = [float(v) for v in open("/proc/stat").readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)
    idle0, total0 = snapshot()
    time.sleep(interval)
    idle1, total1 = snapshot()
    return (idle1 - idle0) / max(1e-9, total1 - total0)


def wait_for_idle(threads, max_wait):
    """Waits until the idle capacity covers `threads` cores plus a margin (at most max_wait s)."""
    needed = min(0.9, (threads + 0.6) / (os.cpu_count() or 1))
    start = time.time()
    while True:
        idle = cpu_idle_fraction()
        if idle >= needed or time.time() - start > max_wait:
            return idle


def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return 0.0


CLOCK = {"now": time.perf_counter}  # --cpu-time: time.process_time (all threads of the process)


def median_ms(body, runs, warmup):
    for _ in range(warmup):
        body()
    times = []
    for _ in range(max(1, runs)):
        start = CLOCK["now"]()
        body()
        times.append((CLOCK["now"]() - start) * 1e3)
    return statistics.median(times)


# ----------------------------------------------------------------------------------------------
# Contender processes (torch, ort): one case each, one TSV line like gknet-bench model --case
# ----------------------------------------------------------------------------------------------

def load_twin(preset, data):
    sys.path.insert(0, str(ROOT / "Scripts" / "reference"))
    import gknet
    from safetensors.torch import load_file
    model = gknet.GKNet(gknet.preset(preset))
    model.load_state_dict(load_file(str(pathlib.Path(data) / f"{preset}.safetensors")), strict=True)
    return gknet, model


def load_inputs(data, batch, size=256):
    from safetensors.torch import load_file
    name = f"inputs-b{batch}.safetensors" if size == 256 else f"inputs-b{batch}-s{size}.safetensors"
    tensors = load_file(str(pathlib.Path(data) / name))
    return tensors["composite"], tensors["mask"], tensors["target"]


def onnx_path(data, preset):
    return pathlib.Path(data) / f"{preset}.onnx"


def export_onnx(preset, data):
    import torch
    _, model = load_twin(preset, data)
    model.eval()
    composite, mask, _ = load_inputs(data, 1)
    path = onnx_path(data, preset)
    torch.onnx.export(model, (composite, mask), str(path), input_names=["composite", "mask"], output_names=["output"],
                      dynamo=False, opset_version=17)
    print(f"exported {path}", file=sys.stderr)


def run_contender(args):
    preset, mode = args.case.split("-")
    idle = wait_for_idle(args.threads, args.wait_idle) if args.wait_idle > 0 else None
    training = mode.startswith("train")
    size = 128 if mode == "train128" else 256  # train128: the multi-resolution schedule's low-resolution step
    batch = TRAIN_BATCH if training else 1
    output = None
    if args.child == "ort":
        import numpy as np
        import onnxruntime as ort
        assert not training, "ONNX Runtime runs inference only"
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(onnx_path(args.data, preset)), options, providers=["CPUExecutionProvider"])
        composite, mask, _ = load_inputs(args.data, 1)
        feeds = {"composite": composite.numpy(), "mask": mask.numpy()}
        ms = median_ms(lambda: session.run(None, feeds), args.runs or 10, 2 if args.warmup is None else args.warmup)
        output = np.asarray(session.run(None, feeds)[0])
    else:
        import torch
        torch.set_num_threads(args.threads)
        gknet, model = load_twin(preset, args.data)
        composite, mask, target = load_inputs(args.data, batch, size)
        if training:
            model.train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

            def step():
                optimizer.zero_grad(set_to_none=True)
                loss = gknet.foreground_normalized_mse(model(composite, mask), target, mask)
                loss.backward()
                optimizer.step()
            ms = median_ms(step, args.runs or 3, 1 if args.warmup is None else args.warmup)
        else:
            model.eval()
            with torch.inference_mode():
                ms = median_ms(lambda: model(composite, mask), args.runs or 10, 2 if args.warmup is None else args.warmup)
                output = model(composite, mask).numpy()
    if args.write_output and output is not None:
        import numpy as np
        np.save(args.write_output, output)
    flops = 2 * GIGA_MACS[preset] * (size / 256) ** 2 * 1e9 * batch * (3 if training else 1)
    fields = [args.case, f"{ms:.3f}", f"{flops / (ms * 1e6):.2f}", f"{peak_rss_mb():.1f}", f"{batch / (ms / 1e3):.3f}",
              "" if idle is None else f"{idle:.2f}"]
    print("\t".join(fields), flush=True)


# ----------------------------------------------------------------------------------------------
# The side-by-side run
# ----------------------------------------------------------------------------------------------

def child_environment(threads):
    env = dict(os.environ)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(key, None)
    env.update(OMP_NUM_THREADS=str(threads), GKNET_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    return env


def run_child(command, threads):
    """Runs one measurement process; returns (ms, gflops, rss_mb, images/s, idle) or None."""
    result = subprocess.run(command, capture_output=True, text=True, env=child_environment(threads))
    lines = [line for line in result.stdout.splitlines() if line.count("\t") >= 4]
    if result.returncode != 0 or not lines:
        print(f"# failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}", file=sys.stderr, flush=True)
        return None
    fields = lines[-1].split("\t")
    return (float(fields[1]), float(fields[2]), float(fields[3]), float(fields[4]),
            float(fields[5]) if len(fields) > 5 and fields[5] else None)


def side_by_side(args):
    data = pathlib.Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    for stale in data.glob("output-*"):
        stale.unlink()
    ours = [str(pathlib.Path(args.ours).resolve()), "model"]
    subprocess.run(ours + ["--write-data", str(data)], check=True)
    presets = sorted({case.split("-")[0] for case in args.cases if case.endswith("-infer")})
    for preset in presets:
        if "ort" in args.contenders and not onnx_path(data, preset).exists():
            subprocess.run([sys.executable, __file__, "--export", preset, "--data", str(data)], check=True,
                           env=child_environment(args.threads))
    python = [sys.executable, __file__, "--data", str(data), "--threads", str(args.threads)]
    gate = ["--wait-idle", str(args.max_wait)] + (["--cpu-time"] if args.cpu_time else [])
    best, idles = {}, []
    per_round = {}  # (contender, case) -> [ms of each round]

    def record(contender, case, result):
        if result is None:
            return
        ms, gflops, rss, ips, idle = result
        per_round.setdefault((contender, case), []).append(ms)
        if idle is not None:
            idles.append(idle)
        previous = best.get((contender, case))
        if previous is None or ms < previous[0]:
            best[(contender, case)] = (ms, gflops, max(rss, previous[2] if previous else 0), ips)
        else:
            best[(contender, case)] = (previous[0], previous[1], max(rss, previous[2]), previous[3])

    cases = ["sgemm"] + args.cases
    for round_index in range(args.rounds):
        for case in cases:
            check = round_index == 0 and case == "paper-infer"
            extra = lambda name, suffix="npy": ["--write-output", str(data / f"output-{name}.{suffix}")] if check else []
            # the largest count up to --replicas that divides the training batch of 8 (as "replicas": 0 does)
            count = max(r for r in range(1, min(args.replicas, 8) + 1) if 8 % r == 0)
            replicas = ["--replicas", str(count)] if "-train" in case and count > 1 else []
            record("ours", case, run_child(ours + ["--case", case, "--threads", str(args.threads), "--data", str(data)] + replicas + gate + extra("ours", "safetensors"), args.threads))
            if case == "sgemm":
                continue
            if "torch" in args.contenders:
                record("torch", case, run_child(python + ["--child", "torch", "--case", case] + gate + extra("torch"), args.threads))
            if "ort" in args.contenders and case.endswith("-infer"):
                record("ort", case, run_child(python + ["--child", "ort", "--case", case] + gate + extra("ort"), args.threads))
        print(f"# round {round_index + 1}/{args.rounds} done, loadavg {os.getloadavg()[0]:.2f}", flush=True)
    best["per_round"] = per_round
    return best, idles


def output_differences(data):
    """Max |ours - theirs| on the paper inference output (a check that all run the same network)."""
    import numpy as np
    from safetensors.numpy import load_file
    differences = {}
    ours_path = data / "output-ours.safetensors"
    if not ours_path.exists():
        return differences
    ours = load_file(str(ours_path))["output"]
    for name in ("torch", "ort"):
        path = data / f"output-{name}.npy"
        if path.exists():
            differences[name] = float(np.abs(np.load(path).reshape(ours.shape) - ours).max())
    return differences


def print_round_ratios(args, per_round):
    """ours / torch per round (the two measured one after the other) and their median: steadier on
    a shared machine than the ratio of two bests, which can pair a lucky round with an unlucky one."""
    for case in args.cases:
        ours, theirs = per_round.get(("ours", case), []), per_round.get(("torch", case), [])
        ratios = [o / t for o, t in zip(ours, theirs)]
        if ratios:
            print(f"# {case}: ours/torch per round " + " ".join(f"{r:.3f}" for r in ratios)
                  + f" (median {statistics.median(ratios):.3f}); ours ms median {statistics.median(ours):.1f}, "
                  f"torch ms median {statistics.median(theirs):.1f}")


def print_report(args, best, idles):
    per_round = best.pop("per_round", {})
    threads = args.threads
    needed = min(0.9, (threads + 0.6) / (os.cpu_count() or 1))
    clock = "process CPU time" if args.cpu_time else "wall time"
    print(f"\n# bench-model: {threads} thread(s), {os.cpu_count()} cores, {clock}, best of {args.rounds} round(s); "
          f"{sum(i >= needed for i in idles)} of {len(idles)} measurements started on an idle machine "
          f"(idle >= {needed:.0%}; lowest seen {min(idles, default=float('nan')):.0%})")
    differences = output_differences(pathlib.Path(args.data))
    if differences:
        print("# paper inference output, max |ours - theirs|: " + ", ".join(f"{k} {v:.2e}" for k, v in differences.items()))
    sgemm = best.get(("ours", "sgemm"))
    if sgemm:
        print(f"# SGEMM 1024^3 (ours, OpenBLAS): {sgemm[0]:.2f} ms = {sgemm[1]:.1f} GFLOP/s")
    header = ["case", "ours ms", "torch ms", "ort ms", "ours/torch", "ours/ort", "ours GFLOP/s", "img/s ours",
              "img/s torch", "RSS ours MB", "RSS torch MB", "RSS ort MB"]
    rows = []
    for case in args.cases:
        o, t, r = best.get(("ours", case)), best.get(("torch", case)), best.get(("ort", case))
        cell = lambda v, digits=1: "-" if v is None else f"{v:.{digits}f}"
        rows.append([case, cell(o and o[0]), cell(t and t[0]), cell(r and r[0]),
                     cell(o and t and o[0] / t[0], 2), cell(o and r and o[0] / r[0], 2), cell(o and o[1]),
                     cell(o and o[3], 2), cell(t and t[3], 2), cell(o and o[2], 0), cell(t and t[2], 0), cell(r and r[2], 0)])
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))) + " |")

    training = [case for case in args.cases if "-train" in case]
    if training:
        print("# training images per hour (batch 8; train128 = 128x128 crops): " + ", ".join(
            f"{case} ours {best[('ours', case)][3] * 3600:,.0f} / torch {best[('torch', case)][3] * 3600:,.0f}"
            for case in training if ("ours", case) in best and ("torch", case) in best))

    print_round_ratios(args, per_round)

    def ratio(a, b, index=0):
        x, y = best.get(a), best.get(b)
        return f"{x[index] / y[index]:.3f}" if x and y else "nan"
    fraction = "nan"
    if sgemm and best.get(("ours", "paper-infer")):
        fraction = f"{best[('ours', 'paper-infer')][1] / sgemm[1]:.3f}"
    print(f"bench-model: paper_infer_vs_torch={ratio(('ours', 'paper-infer'), ('torch', 'paper-infer'))} "
          f"paper_infer_vs_ort={ratio(('ours', 'paper-infer'), ('ort', 'paper-infer'))} "
          f"small_train_vs_torch={ratio(('ours', 'small-train'), ('torch', 'small-train'))} "
          f"small_train128_vs_torch={ratio(('ours', 'small-train128'), ('torch', 'small-train128'))} "
          f"tiny_train_vs_torch={ratio(('ours', 'tiny-train'), ('torch', 'tiny-train'))} "
          f"tiny_train128_vs_torch={ratio(('ours', 'tiny-train128'), ('torch', 'tiny-train128'))} "
          f"small_train_rss_vs_torch={ratio(('ours', 'small-train'), ('torch', 'small-train'), 2)} "
          f"paper_infer_gflops_frac={fraction} threads={threads}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=1,
                        help="ours, training cases: split the batch over N model replicas, one per thread (gknet-bench model --replicas)")
    parser.add_argument("--ours", default=str(ROOT / ".build" / "release" / "gknet-bench"))
    parser.add_argument("--data", default=str(ROOT / ".build" / "bench-model"), help="weights, inputs, ONNX files")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES))
    parser.add_argument("--contenders", default="torch,ort")
    parser.add_argument("--max-wait", type=float, default=120, help="seconds to wait for an idle machine per measurement")
    parser.add_argument("--child", choices=["torch", "ort"], help="contender mode: run one case")
    parser.add_argument("--case")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--wait-idle", type=float, default=0)
    parser.add_argument("--write-output")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with process CPU time instead of wall time (a steadier 1-thread figure on a busy machine)")
    parser.add_argument("--export", help="contender mode: export this preset's twin to ONNX")
    args = parser.parse_args()
    if args.export:
        return export_onnx(args.export, args.data)
    if args.cpu_time:
        CLOCK["now"] = time.process_time
    if args.child:
        return run_contender(args)
    args.cases = args.cases.split(",")
    args.contenders = args.contenders.split(",")
    best, idles = side_by_side(args)
    print_report(args, best, idles)


if __name__ == "__main__":
    main()
