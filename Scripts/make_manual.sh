#!/usr/bin/env bash
# The man page of gknet, made by swift-argument-parser's generate-manual plugin (from the command's
# own help: every subcommand, option and default), copied to OUT. Used by `make install`.
# Usage: Scripts/make_manual.sh CONFIGURATION OUT   (CONFIGURATION: debug or release, as built)
set -euo pipefail
cd "$(dirname "$0")/.."
configuration="$1" out="$2"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! swift package generate-manual --configuration "$configuration" >"$log" 2>&1; then
    cat "$log" >&2
    echo "make_manual.sh: the generate-manual plugin failed (above)" >&2
    exit 1
fi
folder=$(sed -n "s/^Generated manual in '\(.*\)'$/\1/p" "$log" | grep -m1 "gknet" || true)
page=""
[ -n "$folder" ] && page=$(find "${folder#file://}" -name gknet.1 | head -1)
[ -z "$page" ] && page=$(find .build/plugins -path '*GenerateManual*' -name gknet.1 2>/dev/null | head -1 || true)
if [ -z "$page" ]; then
    cat "$log" >&2
    echo "make_manual.sh: no gknet.1 among the plugin's outputs" >&2
    exit 1
fi
install -m 644 "$page" "$out"
