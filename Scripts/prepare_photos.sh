#!/usr/bin/env bash
# Prepares the training photo set (GCompris photos + Tux Paint cut-outs, GrabCut pseudo-masks).
# Usage: Scripts/prepare_photos.sh [DATA_DIR]   (default: data/ at the repository root)
# Steps: a Python venv with pinned OpenCV/numpy/Pillow (.venv-data), `apt-get download` of the two
# Debian packages named in docs/data.md (never installed), `dpkg-deb -x`, then
# Scripts/prepare_photos.py does the rest. Re-running skips finished work.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${1:-$ROOT/data}"
VENV="${DATA_VENV:-$ROOT/.venv-data}"
PY_PACKAGES=("opencv-python-headless==4.10.0.84" "numpy==2.2.6" "pillow==11.3.0")
# Debian packages and the versions the recorded manifest was made from (bookworm).
PACKAGES=("gcompris-qt-data=3.1-2" "tuxpaint-stamps-default=2022.06.04-1")

say() { printf '[prepare_photos] %s\n' "$*"; }

# 1. Python environment (idempotent: a stamp file lists the pinned requirements).
STAMP="$VENV/.prepare_photos_requirements"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "${PY_PACKAGES[*]}" ]; then
    say "creating Python environment $VENV (${PY_PACKAGES[*]})"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
    echo "${PY_PACKAGES[*]}" > "$STAMP"
else
    say "Python environment ready: $VENV"
fi

# 2. Download the Debian packages (no install).
mkdir -p "$DATA/downloads" "$DATA/extracted"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
download() {  # $1 = name=version
    local spec="$1" name="${1%%=*}"
    if ls "$DATA/downloads/${name}"_*.deb >/dev/null 2>&1; then
        say "have $(basename "$(ls "$DATA/downloads/${name}"_*.deb | head -1)")"; return
    fi
    say "apt-get download $spec"
    if ! (cd "$DATA/downloads" && apt-get download "$spec" 2>/dev/null); then
        say "apt-get download $spec failed; updating the package lists and retrying"
        $SUDO apt-get update -qq || true
        if ! (cd "$DATA/downloads" && apt-get download "$spec"); then
            say "WARNING: pinned version unavailable, downloading the current $name (results will differ from docs/data-manifest.tsv)"
            (cd "$DATA/downloads" && apt-get download "$name")
        fi
    fi
}
for spec in "${PACKAGES[@]}"; do download "$spec"; done

# 3. Extract (dpkg-deb -x), once per .deb.
for deb in "$DATA"/downloads/*.deb; do
    name="$(basename "$deb" | cut -d_ -f1)"
    dest="$DATA/extracted/$name"
    if [ -f "$dest/.done" ] && [ "$(cat "$dest/.done")" = "$(basename "$deb")" ]; then
        say "extracted already: $name"; continue
    fi
    say "extracting $(basename "$deb")"
    rm -rf "$dest"; mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest"
    basename "$deb" > "$dest/.done"
done

# 4. Photos, masks, manifest, attribution.
exec "$VENV/bin/python" "$ROOT/Scripts/prepare_photos.py" --data "$DATA" --scripts "$ROOT/Scripts"
