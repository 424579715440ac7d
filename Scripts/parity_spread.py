#!/usr/bin/env python3
"""Tables of the measured parity spread: reads the GKNET_PARITY_REPORT files that
Scripts/parity_spread.sh wrote (one per setting, `<setting>-t<threads>.tsv`, lines
`test<TAB>label<TAB>bound usage<TAB>passed`) and prints, per check kind, the worst bound usage
(error / the element's bound under the current tolerance; 1 = exactly at the tolerance) for every
setting, the worst overall and the check behind it. A kind whose worst usage is above 0.25 has
less than the 4x margin docs/robustness.md asks for.

    python3 Scripts/parity_spread.py out/parity            # markdown table
    python3 Scripts/parity_spread.py out/parity --checks    # every check's worst, worst first
Standard library only."""
import collections
import math
import pathlib
import re
import sys

# (kind, test id pattern, label pattern): the first match names the kind of a comparison.
KINDS = [
    ("model twin: Adam trajectory losses", r"GKNet(Preset)?ParityTests", r"Adam losses|after 5 steps|adam"),
    ("model twin: gradients", r"GKNet(Preset)?ParityTests", r"grad"),
    ("model twin: outputs, loss, statistics", r"GKNet(Preset)?ParityTests", r""),
    ("optimizers (trajectories)", r"OptimizerTests", r""),
    ("layers", r"NeuralNetTests", r""),
    ("model (other)", r"GKNetModelTests", r""),
    ("convolutions", r"Convolution", r""),
    ("ops: gradients vs PyTorch", r"TensorCoreTests", r"grad"),
    ("ops: outputs vs PyTorch", r"TensorCoreTests", r""),
]


def kind_of(test: str, label: str) -> str:
    for kind, test_pattern, label_pattern in KINDS:
        if re.search(test_pattern, test) and re.search(label_pattern, label, re.IGNORECASE):
            return kind
    return "other"


def main() -> None:
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "out/parity")
    files = sorted(folder.glob("*.tsv"))
    if not files:
        sys.exit(f"no report files in {folder}: run Scripts/parity_spread.sh first")
    settings = [f.stem for f in files]
    worst = collections.defaultdict(dict)  # kind -> setting -> (usage, check)
    per_check = collections.defaultdict(dict)  # (test, label) -> setting -> usage
    for file, setting in zip(files, settings):
        for line in file.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) != 4:
                continue
            test, label, usage_text, _ = parts
            # The checker's own tests, and checks that two results must differ, compare wrong values on purpose.
            if "CheckerTests" in test or "(must differ)" in label:
                continue
            usage = float(usage_text) if usage_text not in ("inf", "nan") else math.inf
            # Parameterised tests record their arguments in the id; the label names the case.
            key = (re.sub(r"\(.*", "", test), label)
            per_check[key][setting] = max(per_check[key].get(setting, 0.0), usage)
            kind = kind_of(test, label)
            if usage >= worst[kind].get(setting, (-1.0, ""))[0]:
                worst[kind][setting] = (usage, label)
    if "--checks" in sys.argv:
        rows = sorted(per_check.items(), key=lambda item: -max(item[1].values()))
        for (test, label), by_setting in rows[:60]:
            print(f"{max(by_setting.values()):9.3g}  {test.split('/')[-1]}  {label}  "
                  + " ".join(f"{s}={by_setting.get(s, float('nan')):.2g}" for s in settings))
        return
    print("| check kind | " + " | ".join(settings) + " | worst | worst check |")
    print("|---|" + "---:|" * len(settings) + "---:|---|")
    for kind, _, _ in KINDS + [("other", "", "")]:
        if kind not in worst:
            continue
        cells = [f"{worst[kind][s][0]:.3g}" if s in worst[kind] else "" for s in settings]
        usage, check = max(worst[kind].values())
        print(f"| {kind} | " + " | ".join(cells) + f" | **{usage:.3g}** | {check[:60]} |")


if __name__ == "__main__":
    main()
