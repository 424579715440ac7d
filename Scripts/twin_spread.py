#!/usr/bin/env python3
"""How far the PyTorch twin moves from its own committed fixtures when only the CPU code path
changes: regenerates the model fixture families (`model_gknet`, `model_gknet_presets`) into a
temporary folder under each setting (ATen's kernel set ATEN_CPU_CAPABILITY, oneDNN's
ONEDNN_MAX_CPU_ISA inside PyTorch, 1 or 2 threads) and prints, per kind of result, the largest
relative-to-scale difference from the committed fixture, max |a - e| / (max |e| + |e|): the
tolerance a twin that is exactly as correct as PyTorch itself would need. docs/robustness.md
"Tolerances from measured spread" has the table.

    .venv-ref/bin/python Scripts/twin_spread.py                       # every setting
    .venv-ref/bin/python Scripts/twin_spread.py --settings avx2-t1 default-t2
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "Fixtures"
FAMILIES = ("model_gknet", "model_gknet_presets")
SETTINGS = {
    "default": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "generic": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
# The fixture generators pin one thread; the child replaces that pin with the setting's count.
CHILD = """
import pathlib, sys, torch
sys.path.insert(0, {scripts!r})
threads = {threads}
pin = torch.set_num_threads
torch.set_num_threads = lambda n: pin(threads)
import importlib
for family in {families!r}:
    importlib.import_module("fixtures." + family).generate(pathlib.Path({out!r}))
"""


def kind(key: str) -> str:
    if key.startswith("adam."):
        return key
    head = key.split(".")[0]
    return "grad" if head in ("grad", "gradsample", "gradstats") else head


def compare(generated: pathlib.Path) -> dict:
    worst: dict = {}
    for family in FAMILIES:
        for path in sorted((generated / family).glob("*.safetensors")):
            new, old = load_file(str(path)), load_file(str(FIXTURES / family / path.name))
            for key, expected in old.items():
                if key.startswith("input.") or key not in new or "." not in key or key.count(".") == 0:
                    continue
                if kind(key) not in ("eval", "eval_wide", "train", "trace", "grad", "after", "adam.losses",
                                     "adam.loss_after"):
                    continue
                e, a = expected.astype(np.float64).ravel(), new[key].astype(np.float64).ravel()
                scale = np.abs(e).max() if e.size else 0.0
                need = float((np.abs(a - e) / (scale + np.abs(e) + 1e-30)).max()) if e.size else 0.0
                k = kind(key)
                if need >= worst.get(k, (0.0, ""))[0]:
                    worst[k] = (need, f"{path.stem} {key}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="*", help="name-tN items (default: every setting at 1 and 2 threads)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    names = args.settings or [f"{s}-t{t}" for s in SETTINGS for t in (1, 2)]
    results = {}
    for name in names:
        setting, threads = name.rsplit("-t", 1)
        with tempfile.TemporaryDirectory() as out:
            env = {**os.environ, **SETTINGS[setting]}
            code = CHILD.format(scripts=str(ROOT / "Scripts"), threads=int(threads), families=FAMILIES, out=out)
            run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{name}: generation failed\n{run.stderr[-2000:]}", file=sys.stderr)
                continue
            results[name] = compare(pathlib.Path(out))
        print(f"{name}: " + ", ".join(f"{k} {v[0]:.2g}" for k, v in sorted(results[name].items())), flush=True)
    kinds = sorted({k for r in results.values() for k in r})
    print("\n| result | " + " | ".join(results) + " | worst |")
    print("|---|" + "---:|" * (len(results) + 1))
    for k in kinds:
        cells = [f"{results[n][k][0]:.2g}" if k in results[n] else "" for n in results]
        print(f"| {k} | " + " | ".join(cells) + f" | **{max(results[n].get(k, (0, ''))[0] for n in results):.2g}** |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
