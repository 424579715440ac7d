#!/usr/bin/env python3
"""Generates every PyTorch reference fixture under Tests/Fixtures.

Run with the pinned reference environment (`make venv`): torch==2.13.0+cpu.
    .venv-ref/bin/python Scripts/make_fixtures.py            # all families
    .venv-ref/bin/python Scripts/make_fixtures.py ops_conv   # one family

Each family is a module in Scripts/fixtures/ with a `generate(root: pathlib.Path)` function that
writes small safetensors files (float32) into root/<family>/. Fixtures are committed so the Swift
tests never need Python.
"""
import importlib
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"
FAMILIES_DIR = pathlib.Path(__file__).resolve().parent / "fixtures"


def main(argv):
    assert torch.__version__.startswith("2.13.0"), f"fixtures are pinned to torch 2.13.0, found {torch.__version__}"
    torch.use_deterministic_algorithms(True)
    sys.path.insert(0, str(FAMILIES_DIR.parent))
    names = argv[1:] or sorted(p.stem for p in FAMILIES_DIR.glob("*.py") if not p.stem.startswith("_"))
    for name in names:
        module = importlib.import_module(f"fixtures.{name}")
        print(f"fixtures: {name}", flush=True)
        module.generate(ROOT)


if __name__ == "__main__":
    main(sys.argv)
