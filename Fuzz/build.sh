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
for system in CGKNetBLAS CGKNetDNNL CGKNetPNG CGKNetJPEG CGKNetZlib CGKNetMPI; do FLAGS+=(-I "Sources/$system"); done
for flag in $(pkg-config --cflags-only-I openblas libpng libturbojpeg zlib ompi-c); do FLAGS+=(-Xcc "$flag"); done
LIBS=($(pkg-config --libs openblas libpng libturbojpeg zlib ompi-c) -ldnnl -lgomp)

# Library modules in dependency order, and what each fuzz target links.
# Keep in step with Package.swift (README "Layout"): a module comes after everything it imports.
ALL_MODULES=(GKNetTensorCore GKNetNeuralNet GKNetModel GKNetImageCodec GKNetDatasets GKNetSynthesis GKNetInference GKNetEvaluation GKNetDataParallel GKNetTraining)
declare -A TARGET_MODULES=(
    [SafeTensors]="GKNetTensorCore GKNetNeuralNet GKNetModel"
    [PNG]="GKNetTensorCore GKNetImageCodec"
    [JPEG]="GKNetTensorCore GKNetImageCodec"
    [DatasetList]="GKNetTensorCore GKNetImageCodec GKNetDatasets"
    [TrainingConfig]="GKNetTensorCore GKNetNeuralNet GKNetModel GKNetImageCodec GKNetDatasets GKNetSynthesis GKNetInference GKNetEvaluation GKNetDataParallel GKNetTraining"
)

# Targets whose modules need the package's dependencies (multipart-kit, swift-nio): SwiftPM builds
# that module and its dependencies into $OUT/spm with the same instrumentation (release: -O, so
# preconditions stay), and the target links every object file built there.
declare -A PACKAGE_TARGETS=(
    [Request]="GKNetRequestForms"
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
    [[ -n ${PACKAGE_TARGETS[$target]+set} ]] && continue
    [[ -n ${TARGET_MODULES[$target]+set} ]] || { echo "fuzz build: unknown target $target" >&2; exit 2; }
    needed+=(${TARGET_MODULES[$target]})
done
for module in "${ALL_MODULES[@]}"; do
    if [[ " ${needed[*]} " == *" $module "* ]]; then build_module "$module"; fi
done

build_package_target() {
    local target=$1 module=${PACKAGE_TARGETS[$1]} spm=$OUT/spm/release
    echo "fuzz build: $module and its package dependencies (SwiftPM, $OUT/spm)"
    "${SWIFT:-swift}" build -c release --scratch-path "$OUT/spm" --target "$module" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -g -Xcc -fsanitize=fuzzer-no-link,address
    # the modules SwiftPM compiled for this target (it lays out folders for every target); the C
    # ones bring a module map
    local objects=() maps=() folder
    for folder in "$spm"/*.build; do
        [[ -n $(find "$folder" -name '*.o' -print -quit) ]] || continue
        while IFS= read -r file; do objects+=("$file"); done < <(find "$folder" -name '*.o' | sort)
        local name=${folder##*/}
        name=${name%.build}
        if [[ -f $folder/module.modulemap ]]; then
            maps+=(-Xcc "-fmodule-map-file=$folder/module.modulemap")
        else  # a C target with its own module map
            for file in "$OUT"/spm/checkouts/*/Sources/"$name"/include/module.modulemap; do
                [[ -f $file ]] && maps+=(-Xcc "-fmodule-map-file=$file")
            done
        fi
    done
    echo "fuzz build: target $target (${#objects[@]} objects)"
    "$SWIFTC" -swift-version 6 -O -g -parse-as-library -sanitize=fuzzer,address -module-name "Fuzz$target" \
        -I "$spm/Modules" "${maps[@]}" -use-ld=lld "Fuzz/$target/main.swift" "${objects[@]}" -o "$OUT/$target"
}

for target in "${targets[@]}"; do
    if [[ -n ${PACKAGE_TARGETS[$target]+set} ]]; then
        build_package_target "$target"
        continue
    fi
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
