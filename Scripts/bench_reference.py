#!/usr/bin/env python3
"""Reference timings for `gknet-bench kernels`: the same shapes in PyTorch, numpy and ONNX Runtime.

Reference only (one contender, TSV `key<TAB>ms` lines):
    .venv-ref/bin/python Scripts/bench_reference.py --contender torch --threads 1

Side by side (what `make bench-kernels THREADS=T` runs): each round runs every contender in its
own process -- ours (the release gknet-bench binary), numpy, torch, ONNX Runtime -- after waiting for
an idle machine; the best per-round median of each contender is kept. Prints the table and ends with
    bench-kernels: sgemm_vs_numpy=R conv_fwd_vs_torch=R conv_fwd_vs_ort=R conv_bwd_vs_torch=R threads=T
where R = our time / their time (conv, batch 1) and sgemm = our GFLOP/s / numpy's (1024^3).
    .venv-ref/bin/python Scripts/bench_reference.py --threads 1 --ours .build/release/gknet-bench --rounds 3

Thread counts: torch.set_num_threads(T); numpy through threadpoolctl (its bundled OpenBLAS, run with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset); ORT intra_op_num_threads=T, inter_op_num_threads=1;
ours GKNET_THREADS=T (OpenMP pool shared by OpenBLAS and oneDNN). Every process gets OMP/MKL/OpenBLAS
thread variables = T as well.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

# Shapes (keep in sync with Sources/gknet-bench/KernelBenchmarks.swift).
SGEMM = {"sgemm_1024": (1024, 1024, 1024), "sgemm_conv": (64, 16384, 576)}
CONV = dict(channels=64, size=128, kernel=3, padding=1)
PIXEL = dict(batch=1, channels=64, size=128, groups=8, kernel=3)
LAYER_NORM = (8, 1024, 256)  # normalised over the last axis
SOFTMAX = (8, 1024, 1024)  # over the last axis


def flops():
    """Floating-point operations per run, for GFLOP/s (same definitions as the Swift side)."""
    table = {key: 2.0 * m * n * k for key, (m, n, k) in SGEMM.items()}
    c, s, k = CONV["channels"], CONV["size"], CONV["kernel"]
    for batch in (1, 8):
        conv = 2.0 * batch * c * s * s * c * k * k
        table[f"conv_fwd_b{batch}"] = conv
        table[f"conv_bwd_b{batch}"] = 2 * conv
    p = PIXEL
    table["pixel_fwd"] = 2.0 * p["batch"] * p["channels"] * p["size"] ** 2 * p["kernel"] ** 2
    table["pixel_fwdbwd"] = 3 * table["pixel_fwd"]
    return table


CLOCK = time.perf_counter  # --cpu-time: time.process_time (load-robust proxy for 1-thread runs only)
IDLE_GATE = {"threads": 1, "max_wait": 0.0, "seen": []}  # --wait-idle: gate every benchmark


def median_ms(body, seconds):
    """Median of timed runs after two warm-up runs; runs until `seconds` pass (5 to 100 runs)."""
    body()
    body()
    if IDLE_GATE["max_wait"] > 0:
        IDLE_GATE["seen"].append(wait_for_idle(IDLE_GATE["threads"], IDLE_GATE["max_wait"], interval=0.5))
    samples = []
    start = time.perf_counter()
    while len(samples) < 5 or (len(samples) < 100 and time.perf_counter() - start < seconds):
        t0 = CLOCK()
        body()
        samples.append((CLOCK() - t0) * 1e3)
    return statistics.median(samples)


# ---------------------------------------------------------------- contenders (each in its own process)

def run_numpy(threads, seconds):
    import numpy as np
    from threadpoolctl import threadpool_limits, threadpool_info

    results = {}
    with threadpool_limits(limits=threads, user_api="blas"):
        info = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads={i.get('num_threads')}" for i in threadpool_info()]
        print("# numpy " + np.__version__ + ": " + "; ".join(info), file=sys.stderr)
        rng = np.random.default_rng(0)
        for key, (m, n, k) in SGEMM.items():
            a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
            b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
            results[key] = median_ms(lambda: a @ b, seconds)
    return results


def run_torch(threads, seconds):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    print(f"# torch {torch.__version__}: threads={torch.get_num_threads()} "
          f"mkldnn={torch.backends.mkldnn.is_available()} cpu={torch.backends.cpu.get_cpu_capability()}", file=sys.stderr)
    torch.manual_seed(0)
    results = {}
    with torch.no_grad():
        for key, (m, n, k) in SGEMM.items():
            a, b = torch.rand(m, k) * 2 - 1, torch.rand(k, n) * 2 - 1
            results[key] = median_ms(lambda: torch.mm(a, b), seconds)
        c, s, kk, p = CONV["channels"], CONV["size"], CONV["kernel"], CONV["padding"]
        w = torch.rand(c, c, kk, kk) * 0.2 - 0.1
        for batch in (1, 8):
            x = torch.rand(batch, c, s, s) * 2 - 1
            gy = torch.rand(batch, c, s, s) * 2 - 1
            results[f"conv_fwd_b{batch}"] = median_ms(lambda: F.conv2d(x, w, padding=p), seconds)
            results[f"conv_bwd_b{batch}"] = median_ms(
                lambda: torch.ops.aten.convolution_backward(
                    gy, x, w, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1, [True, True, False]), seconds)

    # applyPixelKernels as the unfold formula of docs/model.md "Harmony kernel modulation" (the model twin's code).
    q = PIXEL
    g, k2 = q["groups"], q["kernel"] ** 2
    x = torch.rand(q["batch"], q["channels"], q["size"], q["size"]) * 2 - 1
    kernels = torch.rand(q["batch"], g * k2, q["size"], q["size"]) * 2 - 1

    def pixel(x, kernels):
        n, c, h, w_ = x.shape
        cols = F.unfold(x, q["kernel"], padding=q["kernel"] // 2).view(n, g, c // g, k2, h, w_)
        return (cols * kernels.view(n, g, 1, k2, h, w_)).sum(3).view(n, c, h, w_)

    ln_x = torch.rand(*LAYER_NORM) * 2 - 1
    ln_w, ln_b = torch.rand(LAYER_NORM[-1]), torch.rand(LAYER_NORM[-1])
    sm_x = torch.rand(*SOFTMAX) * 4 - 2
    cases = {
        "pixel": (lambda a, b: pixel(a, b), [x, kernels]),
        "layernorm": (lambda a: F.layer_norm(a, (LAYER_NORM[-1],), ln_w, ln_b), [ln_x]),
        "softmax": (lambda a: F.softmax(a, dim=-1), [sm_x]),
    }
    for name, (fn, inputs) in cases.items():
        with torch.no_grad():
            results[f"{name}_fwd"] = median_ms(lambda: fn(*inputs), seconds)
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        gy = torch.rand_like(fn(*inputs))

        def forward_backward():
            for leaf in leaves:
                leaf.grad = None
            fn(*leaves).backward(gy)
        results[f"{name}_fwdbwd"] = median_ms(forward_backward, seconds)
    return results


def run_ort(threads, seconds):
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    c, s, k, p = CONV["channels"], CONV["size"], CONV["kernel"], CONV["padding"]
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.1, 0.1, (c, c, k, k)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], pads=[p, p, p, p])
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, s, s])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, s, s])], initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    print(f"# onnxruntime {ort.__version__}: intra_op_num_threads={threads}", file=sys.stderr)
    results = {}
    for batch in (1, 8):
        x = rng.uniform(-1, 1, (batch, c, s, s)).astype(np.float32)
        results[f"conv_fwd_b{batch}"] = median_ms(lambda: session.run(None, {"x": x}), seconds)
    return results


CONTENDERS = {"numpy": run_numpy, "torch": run_torch, "ort": run_ort}


# ---------------------------------------------------------------- the side-by-side driver

def cpu_idle_fraction(interval=0.5):
    """Fraction of all CPU time that was idle over `interval` seconds (/proc/stat)."""
    def snapshot():
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)
    idle0, total0 = snapshot()
    time.sleep(interval)
    idle1, total1 = snapshot()
    return (idle1 - idle0) / max(1e-9, total1 - total0)


def wait_for_idle(threads, max_wait, interval=0.5):
    """Waits until the idle CPU capacity covers `threads` cores plus a margin (at most max_wait s)."""
    cores = os.cpu_count() or 1
    needed = min(0.9, (threads + 0.6) / cores)
    start = time.time()
    while True:
        idle = cpu_idle_fraction(interval)
        if idle >= needed or time.time() - start > max_wait:
            return idle


def child_environment(threads, contender):
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GKNET_THREADS"):
        env[name] = str(threads)
    if contender == "numpy":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run_child(command, threads, contender):
    """Runs one contender process; returns {key: (ms, idle fraction seen before it or None)}."""
    out = subprocess.run(command, env=child_environment(threads, contender), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench_reference: {' '.join(command)} failed:\n{out.stderr}")
    for line in out.stderr.splitlines():
        if line.startswith("#"):
            print(line, flush=True)
    results = {}
    for line in out.stdout.splitlines():
        fields = line.split("\t")  # key, ms, [gflops, label, idle]
        if len(fields) >= 2 and not line.startswith("#"):
            idle = float(fields[4]) if len(fields) >= 5 and fields[4] else None
            results[fields[0]] = (float(fields[1]), idle)
    return results


def side_by_side(args):
    best, idle_seen = {}, []
    for round_index in range(args.rounds):
        for contender in ["ours", "numpy", "torch", "ort"]:
            gate = ["--wait-idle", str(args.max_wait)]
            if contender == "ours":
                command = [args.ours, "kernels", "--tsv", "--threads", str(args.threads), "--seconds", str(args.seconds)] + gate
            else:
                command = [sys.executable, __file__, "--contender", contender, "--threads", str(args.threads),
                           "--seconds", str(args.seconds)] + gate
            results = run_child(command, args.threads, contender)
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
            idles = [idle for _, idle in results.values() if idle is not None]
            idle_seen += idles
            print(f"# round {round_index + 1} {contender}: lowest idle before a benchmark "
                  f"{min(idles, default=float('nan')):.0%}, loadavg after {load}", flush=True)
            for key, (ms, _) in results.items():
                best[(contender, key)] = min(ms, best.get((contender, key), float("inf")))
    print(f"# idle gate: {sum(i >= min(0.9, (args.threads + 0.6) / (os.cpu_count() or 1)) for i in idle_seen)} of "
          f"{len(idle_seen)} benchmarks started on an idle machine (the rest waited {args.max_wait:.0f} s and ran anyway)")
    print_table(best, args.threads)


def print_table(best, threads):
    work = flops()
    keys = [key for (contender, key) in best if contender == "ours"]
    print(f"\nthreads={threads}; ms = best of the rounds' medians; ratio = ours / theirs (time)")
    header = f"{'benchmark':<22}{'ours ms':>10}{'GFLOP/s':>9}{'torch ms':>10}{'ratio':>7}{'numpy ms':>10}{'ratio':>7}{'ORT ms':>9}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for key in keys:
        ours = best[("ours", key)]
        row = f"{key:<22}{ours:>10.3f}"
        row += f"{work[key] / (ours * 1e6):>9.1f}" if key in work else f"{'':>9}"
        for contender, width in (("torch", 10), ("numpy", 10), ("ort", 9)):
            theirs = best.get((contender, key))
            row += f"{theirs:>{width}.3f}{ours / theirs:>7.2f}" if theirs else f"{'':>{width}}{'':>7}"
        print(row)

    def ratio(contender, key, invert=False):
        ours, theirs = best.get(("ours", key)), best.get((contender, key))
        if not ours or not theirs:
            return "nan"
        return f"{(theirs / ours) if invert else (ours / theirs):.2f}"
    print(f"bench-kernels: sgemm_vs_numpy={ratio('numpy', 'sgemm_1024', invert=True)} "
          f"conv_fwd_vs_torch={ratio('torch', 'conv_fwd_b1')} conv_fwd_vs_ort={ratio('ort', 'conv_fwd_b1')} "
          f"conv_bwd_vs_torch={ratio('torch', 'conv_bwd_b1')} threads={threads}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per benchmark (>= 5 runs)")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help="run one reference and print TSV")
    parser.add_argument("--ours", help="path of the release gknet-bench binary (side-by-side mode)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-wait", type=float, default=120, help="seconds to wait for an idle machine per benchmark")
    parser.add_argument("--wait-idle", type=float, default=0, help="contender mode: gate each benchmark (max seconds)")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time instead of wall time (contender mode)")
    args = parser.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    if args.contender:
        IDLE_GATE.update(threads=args.threads, max_wait=args.wait_idle)
        results = CONTENDERS[args.contender](args.threads, args.seconds)
        idles = IDLE_GATE["seen"] or [None] * len(results)
        for (key, ms), idle in zip(results.items(), idles):
            print(f"{key}\t{ms:.4f}\t\t\t{'' if idle is None else f'{idle:.2f}'}", flush=True)
    elif args.ours:
        side_by_side(args)
    else:
        parser.error("give --contender NAME or --ours PATH")


if __name__ == "__main__":
    main()
