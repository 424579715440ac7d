#!/usr/bin/env python3
"""Parameters, MACs per block and peak activation memory of the GKNet twin at 256x256.

    .venv-ref/bin/python Scripts/reference/count_macs.py                 # all presets, 256x256
    .venv-ref/bin/python Scripts/reference/count_macs.py tiny --size 512 # one preset, another size
    .venv-ref/bin/python Scripts/reference/count_macs.py --markdown      # the table of docs/model.md
    .venv-ref/bin/python Scripts/reference/count_macs.py --check-ablations

MACs are counted analytically from the configuration (convolutions, transposed convolutions,
linears, attention matmuls and the harmony-kernel DynConv; element-wise ops, norms, resizes and
softmax are not counted) and cross-checked against torch.utils.flop_counter.FlopCounterMode
(FLOPs / 2) on a real forward. FlopCounterMode does not see DynConv (it is unfold + mul + sum), so
the check compares the analytic count without DynConv and prints DynConv separately.

Peak activation memory: bytes of tensor storages alive during one forward of a 1x4xHxW input,
parameters excluded, tracked op by op with a TorchDispatchMode (a storage counts from the op
that creates it until it is freed). "inference" runs under torch.no_grad(); "training" keeps the
autograd graph (the tensors saved for backward), i.e. the peak just before backward().
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gknet import GKNet, GKNetConfig, PRESETS, build, preset  # noqa: E402

TARGETS = {  # the presets' design targets (docs/model.md, "Size and cost"): parameters (M), GMAC at 256x256
    "paper": (18.73, 19.2),
    "small": (4.31, 5.0),
    "tiny": (1.09, 1.42),
}

# Blocks in the order of docs/model.md "Layer by layer", with the state-dict / module prefixes that form them.
BLOCKS = [
    ("E1 encoder stage 1", ["encoder.stages.1"]),
    ("E2 encoder stage 2", ["encoder.stages.2"]),
    ("E3 encoder stage 3", ["encoder.stages.3"]),
    ("E4 encoder stage 4", ["encoder.stages.4"]),
    ("L  LRE", ["lre"]),
    ("K3 KPB level 3", ["kpb.3"]),
    ("K2 KPB level 2", ["kpb.2"]),
    ("K1 KPB level 1", ["kpb.1"]),
    ("D4 decoder bottleneck", ["decoder.bottleneck"]),
    ("D3 decoder level 3", ["decoder.levels.3"]),
    ("D2 decoder level 2", ["decoder.levels.2"]),
    ("D1 decoder level 1", ["decoder.levels.1"]),
    ("D0 decoder level 0", ["decoder.levels.0"]),
    ("H  head (+ blend)", ["head", "blend"]),
]


# ----------------------------------------------------------------------------------------------
# Analytic MACs (mirror of the forward in gknet.py)
# ----------------------------------------------------------------------------------------------

def conv_macs(cin, cout, k, h_out, w_out):
    return cin * cout * k * k * h_out * w_out


def conv_transpose_macs(cin, cout, k, h_in, w_in):
    return cin * cout * k * k * h_in * w_in  # every input pixel is scattered to k*k outputs


def analytic_macs(cfg: GKNetConfig, height: int, width: int) -> dict[str, dict[str, int]]:
    """{block: {"matmul": MACs of conv/linear/matmul, "dynconv": MACs of the per-pixel kernels}}."""
    c1, c2, c3, c4 = cfg.encoder_widths
    c = {1: c1, 2: c2, 3: c3, 4: c4}
    hw = {l: (height >> l, width >> l) for l in range(5)}
    d = cfg.lre_width
    th, tw = hw[4]
    tokens = th * tw
    out: dict[str, dict[str, int]] = {name: {"matmul": 0, "dynconv": 0} for name, _ in BLOCKS}

    # encoder
    cin = 4
    for l in (1, 2, 3, 4):
        h, w = hw[l]
        macs = conv_macs(cin, c[l], 4, h, w) + 2 * conv_macs(c[l], c[l], 3, h, w)
        out[BLOCKS[l - 1][0]]["matmul"] = macs
        cin = c[l]

    # LRE
    lre = conv_macs(c4, d, 1, th, tw)
    if cfg.use_lre:
        g = cfg.position_grid
        if (th, tw) != (g, g):
            lre += th * g * g * d + th * d * g * tw  # the two bicubic-resize matmuls
        per_block = (tokens * d * 3 * d           # in_proj
                     + 2 * tokens * tokens * d    # QK^T and AV over all heads
                     + tokens * d * d             # out_proj
                     + 2 * tokens * d * cfg.lre_mlp_ratio * d)  # MLP
        lre += cfg.lre_depth * per_block
    out["L  LRE"]["matmul"] = lre

    # KPBs
    previous = d
    a = cfg.scf_attention_width
    k2 = cfg.kernel_size ** 2
    for l in cfg.kernel_level_list:
        h, w = hw[l]
        pixels = h * w
        cl = c[l]
        macs = conv_macs(previous, cl, 3, h, w) + conv_macs(2 * cl, cl, 1, h, w)
        if cfg.use_scf:
            z = cfg.squeeze_width(cl)
            macs += (pixels * cl * a            # query
                     + tokens * d * a           # key
                     + tokens * d * cl          # value
                     + pixels * tokens * a      # logits
                     + pixels * tokens * cl     # A V
                     + pixels * cl * cl         # project
                     + cl * z + z * 2 * cl)     # gate
        else:
            macs += conv_macs(cl + d, cl, 1, h, w)
        if cfg.use_kernel_modulation:
            macs += conv_macs(cl, cl, 3, h, w) + conv_macs(cl, cfg.kernel_groups(cl) * k2, 1, h, w)
        out[f"K{l} KPB level {l}"]["matmul"] = macs
        previous = cl

    # decoder
    out["D4 decoder bottleneck"]["matmul"] = conv_macs(c4 + d, c4, 1, th, tw)
    for l in (3, 2, 1):
        h, w = hw[l]
        name = f"D{l} decoder level {l}"
        out[name]["matmul"] = conv_transpose_macs(c[l + 1], c[l], 4, *hw[l + 1]) + conv_macs(c[l], c[l], 3, h, w)
        if cfg.use_kernel_modulation and l in cfg.kernel_level_list:
            out[name]["dynconv"] = c[l] * k2 * h * w
    d0 = cfg.decoder_output_width
    out["D0 decoder level 0"]["matmul"] = conv_transpose_macs(c1, d0, 4, *hw[1]) + conv_macs(d0, d0, 3, height, width)
    out["H  head (+ blend)"]["matmul"] = conv_macs(d0, 3, 1, height, width) + (
        conv_macs(d0, 1, 1, height, width) if cfg.output_blend == "learned" else 0)
    return out


# ----------------------------------------------------------------------------------------------
# Measured: FlopCounterMode and peak memory
# ----------------------------------------------------------------------------------------------

def measured_macs(model: GKNet, height: int, width: int) -> dict[str, int]:
    """MACs per block from FlopCounterMode (FLOPs / 2)."""
    composite = torch.rand(1, 3, height, width)
    mask = torch.zeros(1, 1, height, width)
    mask[..., height // 4: height // 2, width // 4: width // 2] = 1
    with FlopCounterMode(display=False, depth=None) as counter, torch.no_grad():
        model(composite, mask)
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    result = {}
    for block, prefixes in BLOCKS:
        result[block] = sum(counts.get(f"{root}.{p}", 0) for p in prefixes) // 2
    result["total"] = counts.get("Global", 0) // 2
    return result


class LiveStorageTracker(TorchDispatchMode):
    """Sums the bytes of storages created by ops while they are alive; records the peak."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}

    def _release(self, key: int, nbytes: int):
        self.live -= nbytes
        self._sizes.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or key in self._sizes:
                continue
            self._sizes[key] = nbytes
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._release, key, nbytes)
        return out


def peak_activation_bytes(model: GKNet, height: int, width: int, training: bool) -> int:
    model.train(training)
    composite = torch.rand(1, 3, height, width)
    mask = torch.zeros(1, 1, height, width)
    mask[..., height // 4: height // 2, width // 4: width // 2] = 1
    tracker = LiveStorageTracker()
    if training:
        with tracker:
            output = model(composite, mask)  # keeps the autograd graph (saved tensors) alive
        del output
    else:
        with tracker, torch.no_grad():
            output = model(composite, mask)
        del output
    model.eval()
    return tracker.peak


def parameters_per_block(model: GKNet) -> dict[str, int]:
    result = {}
    named = dict(model.named_parameters())
    for block, prefixes in BLOCKS:
        result[block] = sum(p.numel() for n, p in named.items() if any(n == q or n.startswith(q + ".") for q in prefixes))
    result["total"] = sum(p.numel() for p in named.values())
    return result


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def report(name: str, height: int, width: int, markdown: bool, memory: bool) -> list[str]:
    cfg = preset(name)
    model = build(cfg).eval()
    params = parameters_per_block(model)
    analytic = analytic_macs(cfg, height, width)
    measured = measured_macs(model, height, width)
    lines = []
    if markdown:
        lines += [f"#### `{name}` at {height}x{width}", "",
                  "| block | parameters | MACs (analytic) | of which DynConv | MACs (FlopCounterMode) |",
                  "|---|---:|---:|---:|---:|"]
    else:
        lines += [f"== {name} at {height}x{width} ==",
                  f"{'block':24s} {'params':>12s} {'MACs analytic':>16s} {'DynConv':>12s} {'FlopCounter':>16s}"]
    total_a = total_d = 0
    for block, _ in BLOCKS:
        a, dyn, m = analytic[block]["matmul"], analytic[block]["dynconv"], measured[block]
        total_a += a + dyn
        total_d += dyn
        if a + dyn == 0 and params[block] == 0:
            continue
        assert a == m, f"{name} {block}: analytic {a} != FlopCounterMode {m}"
        if markdown:
            lines.append(f"| {block} | {params[block]:,} | {a + dyn:,} | {dyn:,} | {m:,} |")
        else:
            lines.append(f"{block:24s} {params[block]:>12,d} {a + dyn:>16,d} {dyn:>12,d} {m:>16,d}")
    assert total_a - total_d == measured["total"], (total_a - total_d, measured["total"])
    if markdown:
        lines.append(f"| **total** | **{params['total']:,}** | **{total_a:,}** | {total_d:,} | {measured['total']:,} |")
    else:
        lines.append(f"{'total':24s} {params['total']:>12,d} {total_a:>16,d} {total_d:>12,d} {measured['total']:>16,d}")
    target_p, target_m = TARGETS[name]
    summary = (f"{name}: {params['total'] / 1e6:.3f} M parameters (target {target_p} M, "
               f"{100 * (params['total'] / 1e6 / target_p - 1):+.2f} %), {total_a / 1e9:.3f} GMAC "
               f"(target {target_m}, {100 * (total_a / 1e9 / target_m - 1):+.2f} %)")
    if (height, width) != (256, 256):
        summary = f"{name}: {params['total'] / 1e6:.3f} M parameters, {total_a / 1e9:.3f} GMAC at {height}x{width}"
    if memory:
        inference = peak_activation_bytes(model, height, width, training=False)
        training = peak_activation_bytes(model, height, width, training=True)
        summary += (f"; peak activation memory (batch 1): inference {inference / 2**20:.1f} MiB, "
                    f"training forward {training / 2**20:.1f} MiB")
    lines += ["", summary, ""]
    return lines


ABLATIONS = [dict(use_lre=False), dict(use_scf=False), dict(use_kernel_modulation=False),
             dict(kernel_size=5), dict(kernel_levels=1), dict(kernel_levels=2), dict(scf_top_k=8),
             dict(scf_background_bias=True), dict(output_blend="learned")]


def check_ablations():
    """The analytic count equals FlopCounterMode for every ablation switch (tiny preset), at
    256x256 and at 64x96 (non-square, positional embedding resized)."""
    for flip in ABLATIONS:
        for height, width in [(256, 256), (64, 96)]:
            cfg = preset("tiny", **flip)
            analytic = analytic_macs(cfg, height, width)
            measured = measured_macs(build(cfg).eval(), height, width)
            for block, _ in BLOCKS:
                assert analytic[block]["matmul"] == measured[block], (flip, height, width, block)
            print(f"analytic == FlopCounterMode: tiny {flip} at {height}x{width}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--check-ablations", action="store_true",
                        help="only verify the analytic count against FlopCounterMode for every ablation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.check_ablations:
        check_ablations()
        return
    for name in args.presets:
        print("\n".join(report(name, args.size, args.size, args.markdown, not args.no_memory)), flush=True)


if __name__ == "__main__":
    main()
