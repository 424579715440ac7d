#!/usr/bin/env python3
"""Fails when a function in Sources/ is longer than 80 lines without a comment saying why.

    Scripts/check_function_length.py [--limit 80] [paths...]     (default: Sources)

A function (func, init, subscript, deinit, or a computed property with a body) is measured from its
declaration line to its closing brace. One over the limit passes only when the comment block right
above it (doc comment or plain comment) has a line starting with "Long:" that says why it must be
long (e.g. `/// Long: one pass over the pixels; split, it would re-read them`). Part of `make lint`.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

DECLARATION = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*"
    r"(?:(?:public|private|fileprivate|internal|package|open|static|class|final|override|mutating|"
    r"nonisolated|convenience|required)\s+)*"
    r"(?:func\s+[\w`]+|init[?!]?\s*[(<]|subscript\s*[(<]|deinit\b)")
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def body_length(lines: list[str], start: int) -> int:
    """Lines from `start` to the brace that closes the first one opened at or after it."""
    depth, opened = 0, False
    for index in range(start, len(lines)):
        code = STRING.sub('""', lines[index]).split("//")[0]
        for character in code:
            if character == "{":
                depth, opened = depth + 1, True
            elif character == "}":
                depth -= 1
        if opened and depth <= 0:
            return index - start + 1
    return 0


def explained(lines: list[str], start: int) -> bool:
    """Whether the comment block above line `start` (attributes skipped) has a `Long:` line."""
    index = start - 1
    while index >= 0 and lines[index].strip().startswith("@"):
        index -= 1
    while index >= 0 and lines[index].strip().startswith("//"):
        if re.match(r"^///?\s*Long:", lines[index].strip()):
            return True
        index -= 1
    return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("paths", nargs="*", default=["Sources"])
    args = parser.parse_args()
    failures = []
    for root in args.paths:
        for directory, _, files in os.walk(root):
            for name in sorted(files):
                if not name.endswith(".swift"):
                    continue
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as handle:
                    lines = handle.read().split("\n")
                for index, line in enumerate(lines):
                    if not DECLARATION.match(line):
                        continue
                    length = body_length(lines, index)
                    if length > args.limit and not explained(lines, index):
                        failures.append(f"{path}:{index + 1}: {length} lines: {line.strip()[:70]}")
    if failures:
        print(f"functions over {args.limit} lines without a `Long:` comment saying why:")
        print("\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
