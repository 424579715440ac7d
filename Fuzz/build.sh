#!/usr/bin/env bash
# Builds libFuzzer executables for the fuzz targets under Fuzz/<Target>/ (see docs/robustness.md).
#
# Not part of the SwiftPM package, so `swift build` never compiles them. Each library module a
# target needs is compiled once with swiftc into a static library instrumented for libFuzzer
# coverage and AddressSanitizer (optimised, so preconditions and bounds checks stay on), then
# each target's main.swift is linked against them with libFuzzer's driver.
#
# Usage: Fuzz/build.sh [Target...]     (default: every Fuzz/*/main.swift)
# Output: .build-fuzz/<Target> (the fuzzer executables), .build-fuzz/modules/ (the libraries).
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFTC=${SWIFTC:-swiftc}
OUT=.build-fuzz
MODULES=$OUT/modules
mkdir -p "$MODULES"

# Same language mode as Package.swift; -O keeps preconditions and bounds checks, drops asserts.
FLAGS=(-swift-version 6 -package-name gknet -O -g -wmo -parse-as-library -sanitize=fuzzer,address -I "$MODULES")
for system in CBLAS CDNNL CPNG CJPEG CZlib CMPI; do FLAGS+=(-I "Sources/$system"); done
for flag in $(pkg-config --cflags-only-I openblas libpng libturbojpeg zlib ompi-c); do FLAGS+=(-Xcc "$flag"); done
LIBS=($(pkg-config --libs openblas libpng libturbojpeg zlib ompi-c) -ldnnl -lgomp)

# Library modules in dependency order, and what each fuzz target links.
# Keep in step with Package.swift (README "Layout"): a module comes after everything it imports.
ALL_MODULES=(TensorCore NeuralNet GKNetModel ImageCodec Datasets Synthesis Inference Evaluation DataParallel Training)
declare -A TARGET_MODULES=(
    [SafeTensors]="TensorCore NeuralNet GKNetModel"
    [PNG]="TensorCore ImageCodec"
    [JPEG]="TensorCore ImageCodec"
    [DatasetList]="TensorCore ImageCodec Datasets"
    [TrainingConfig]="TensorCore NeuralNet GKNetModel ImageCodec Datasets Synthesis Inference Evaluation DataParallel Training"
)

# Rebuilds a module when one of its sources, or a module built before it, is newer than its library.
build_module() {
    local name=$1 library=$MODULES/lib$1.a
    local sources=() earlier=()
    while IFS= read -r file; do sources+=("$file"); done < <(find "Sources/$name" -name '*.swift' | sort)
    for module in "${ALL_MODULES[@]}"; do
        [[ $module == "$name" ]] && break
        [[ -f $MODULES/$module.swiftmodule ]] && earlier+=("$MODULES/$module.swiftmodule")
    done
    if [[ -f $library ]] && [[ -z $(find "Sources/$name" "${earlier[@]}" -newer "$library" -print -quit) ]]; then
        return
    fi
    echo "fuzz build: module $name (${#sources[@]} files)"
    "$SWIFTC" "${FLAGS[@]}" -module-name "$name" -emit-module -emit-module-path "$MODULES/$name.swiftmodule" \
        -emit-library -static -o "$library" "${sources[@]}"
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for main in Fuzz/*/main.swift; do targets+=("$(basename "$(dirname "$main")")"); done
fi

needed=()
for target in "${targets[@]}"; do
    [[ -n ${TARGET_MODULES[$target]+set} ]] || { echo "fuzz build: unknown target $target" >&2; exit 2; }
    needed+=(${TARGET_MODULES[$target]})
done
for module in "${ALL_MODULES[@]}"; do
    if [[ " ${needed[*]} " == *" $module "* ]]; then build_module "$module"; fi
done

for target in "${targets[@]}"; do
    executable=$OUT/$target
    libraries=()
    for module in ${TARGET_MODULES[$target]}; do libraries+=("$MODULES/lib$module.a"); done
    if [[ -f $executable ]] && [[ -z $(find "Fuzz/$target/main.swift" "${libraries[@]}" -newer "$executable" -print -quit) ]]; then
        continue
    fi
    echo "fuzz build: target $target"
    "$SWIFTC" "${FLAGS[@]}" -module-name "Fuzz$target" -use-ld=lld "Fuzz/$target/main.swift" \
        "${libraries[@]}" "${LIBS[@]}" -o "$executable"
done
