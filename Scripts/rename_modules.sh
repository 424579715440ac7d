#!/usr/bin/env bash
# Gives the package's generic module names a GKNet prefix (issue 23), so that another package in a
# consumer's graph with a module called `Datasets`, `TensorCore` or `CPNG` can be combined with ours.
# Idempotent: re-run it after merging branches written with the old names, then build.
#   - git mv Sources/<Old> Sources/<New> (and the DocC catalog of the library module);
#   - Swift: `import Old`, `@testable import Old`, `canImport(Old)`, `Old.member`, ``Old`` and
#     `Old` in comments, "Old" in Package.swift files (the example's too);
#   - module maps: `module COld [system]`;
#   - Makefile, scripts, Markdown: Sources/Old paths, `Old` in backticks, the Fuzz module lists;
#   - the Models/ link to the bundled model.
# Then it runs swift format on the Swift sources (a longer name can move a line break).
# Usage: Scripts/rename_modules.sh   (from anywhere in the repository; commit the result)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

python3 - <<'PY'
import os, re, subprocess

RENAMES = {
    "TensorCore": "GKNetTensorCore", "NeuralNet": "GKNetNeuralNet", "ImageCodec": "GKNetImageCodec",
    "Datasets": "GKNetDatasets", "Synthesis": "GKNetSynthesis", "Inference": "GKNetInference",
    "Evaluation": "GKNetEvaluation", "Training": "GKNetTraining", "DataParallel": "GKNetDataParallel",
    "RequestForms": "GKNetRequestForms", "_TestSupport": "GKNetTestSupport",
    "CBLAS": "CGKNetBLAS", "CDNNL": "CGKNetDNNL", "CPNG": "CGKNetPNG", "CJPEG": "CGKNetJPEG",
    "CZlib": "CGKNetZlib", "CMPI": "CGKNetMPI",
}

def git(*args):
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout

# 1. folders (and the library's DocC catalog)
for old, new in RENAMES.items():
    if os.path.isdir(f"Sources/{old}") and not os.path.exists(f"Sources/{new}"):
        git("mv", f"Sources/{old}", f"Sources/{new}")
        print(f"moved Sources/{old} -> Sources/{new}")
    catalog = f"Sources/{new}/{old}.docc"
    if os.path.isdir(catalog):
        git("mv", catalog, f"Sources/{new}/{new}.docc")
        if os.path.exists(f"Sources/{new}/{new}.docc/{old}.md"):
            git("mv", f"Sources/{new}/{new}.docc/{old}.md", f"Sources/{new}/{new}.docc/{new}.md")

# 2. the Models/ link to the bundled model (a resource of the library module)
link = "Models/gknet-default.safetensors"
if os.path.islink(link):
    target = os.readlink(link)
    fixed = re.sub(r"Sources/([A-Za-z_]+)/", lambda m: f"Sources/{RENAMES.get(m.group(1), m.group(1))}/", target)
    if fixed != target:
        os.remove(link)
        os.symlink(fixed, link)
        git("add", link)
        print(f"relinked {link} -> {fixed}")

names = "|".join(sorted(map(re.escape, RENAMES), key=len, reverse=True))
B = r"(?<![A-Za-z0-9_])"  # no word character before
E = r"(?![A-Za-z0-9_])"   # none after
swift_rules = [
    (re.compile(rf"^(\s*(?:@testable\s+|@_exported\s+)?import\s+){B}({names}){E}", re.M), 2),
    (re.compile(rf"(canImport\(){B}({names}){E}"), 2),
    (re.compile(rf"(``|`){B}({names})(?=``|`)"), 2),
    (re.compile(rf"(){B}({names})(?=\.[A-Za-z_])"), 2),
    (re.compile(rf"(Sources/)({names}){E}"), 2),
    (re.compile(rf"(`import\s+)({names}){E}"), 2),
]
package_rules = swift_rules + [(re.compile(rf"(\"){B}({names})(\")"), 2)]
text_rules = [
    (re.compile(rf"(Sources/)({names}){E}"), 2),
    (re.compile(rf"(``|`){B}({names})(?=``|`)"), 2),
    (re.compile(rf"^(\s*(?:@testable\s+)?import\s+){B}({names}){E}", re.M), 2),
    (re.compile(rf"(DOCS_TARGET\s*:=\s*)({names}){E}"), 2),
    (re.compile(rf"(--target\s+)({names}){E}"), 2),
    (re.compile(rf"(`import\s+)({names}){E}"), 2),
    (re.compile(rf"(){B}({names})(?=\.docc)"), 2),
]
modulemap_rules = [(re.compile(rf"^(module\s+)({names}){E}", re.M), 2)]
list_rules = [(re.compile(rf"{B}()({names}){E}"), 2)]  # files that are lists of module names

def rewrite(text, rules):
    for pattern, group in rules:
        text = pattern.sub(lambda m: m.group(0)[: m.start(group) - m.start(0)] + RENAMES[m.group(group)]
                           + m.group(0)[m.end(group) - m.start(0):], text)
    return text

changed = 0
for path in git("ls-files", "-z").split("\0"):
    if not path or os.path.islink(path) or not os.path.isfile(path) or path == "Scripts/rename_modules.sh":
        continue
    if path.startswith(("docs/runs/", "Tests/Fixtures/", "Fuzz/corpus", "Samples/")) or "/corpus/" in path:
        continue
    base = os.path.basename(path)
    if base == "Package.swift":
        rules = package_rules
    elif path.endswith(".swift"):
        rules = swift_rules
    elif base == "module.modulemap":
        rules = modulemap_rules
    elif path == "Fuzz/build.sh":
        rules = list_rules
    elif base in ("Makefile", "run") or path.endswith((".sh", ".md", ".py", ".yml", ".yaml", ".supp", ".txt")):
        rules = text_rules
    else:
        continue
    try:
        text = open(path, encoding="utf-8").read()
    except UnicodeDecodeError:
        continue
    new = rewrite(text, rules)
    if new != text:
        open(path, "w", encoding="utf-8").write(new)
        changed += 1
print(f"rewrote {changed} files")
PY

if swift format --version >/dev/null 2>&1; then
    paths=(Package.swift Sources Tests)
    for extra in Fuzz Examples; do [ -d "$extra" ] && paths+=("$extra"); done
    swift format format --in-place --recursive --parallel "${paths[@]}"
fi
echo "done: build, run make lint and the tests, then commit (git add -A Sources Tests Package.swift ...)"
