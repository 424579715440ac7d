#!/usr/bin/env python3
"""Training photos with GrabCut pseudo-masks from two Debian packages (run by prepare_photos.sh).

Sources (and only these, see docs/data.md): `gcompris-qt-data` (real photographs inside Qt .rcc
bundles, WebP) and `tuxpaint-stamps-default` (photographic cut-outs with a true alpha channel,
pasted onto GCompris photos as a 20-30 % minority). The .debs are downloaded and extracted by the
shell script; this script:

  1. extracts the raster images of every GCompris .rcc bundle (stdlib rcc reader);
  2. selects real photographs (rules below), GrabCut-masks them (fixed recipe, cv2.setRNGSeed
     before every call), keeps the largest component, fills holes, accepts 3-70 % coverage;
  3. selects photographic Tux Paint stamps and pastes each onto an accepted GCompris photo of the
     same split (training / held-out) with its own alpha;
  4. writes photos/<folder>__<name>.png (RGB, long side <= 512), masks/<same>.png (gray 0/255),
     manifest.tsv, ATTRIBUTION.md, holdout_folders.txt, contact sheets and sample candidates.

<folder> is the source folder with '/' written as '.', e.g. `categorization.fishes__fish1.png`,
`tuxpaint.vehicles.flight.planes__747.png`; a photo is held out when its folder equals a line of
holdout_folders.txt or lies below it. Deterministic; re-running skips finished work (a record per
output under work/records remembers the source checksum, recipe version and override).
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import struct
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
from PIL import Image, ImageDraw

RECIPE_VERSION = 1
GRABCUT_SEED = 1234            # cv2.setRNGSeed before every grabCut call: its initialisation draws from OpenCV's global generator (docs/data.md, "Masks")
GRABCUT_SIDE = 320             # GrabCut runs on this long side (INTER_AREA), never upscaled
OUTPUT_SIDE = 512              # photos and masks are written at most this long side (INTER_AREA)
SAMPLE_SIDE = 384              # sample candidates for the committed test sample
MARGIN, ITERATIONS = 0.08, 5
MIN_FRACTION, MAX_FRACTION = 0.03, 0.70
TUX_SHARE = 0.25               # Tux Paint pastes as a share of all accepted photos (20-30 % asked)

# GCompris activity folders that hold real photographs (found by looking at every raster image
# >= 250 px of the package). Everything else in the package is drawings, clip art, cut-outs with
# alpha, textures or screenshots. Single paintings and graphics inside these folders are dropped
# by name in Scripts/mask_overrides.tsv.
GCOMPRIS_PHOTO_FOLDERS = (
    "categorization/fishes", "categorization/monuments", "categorization/others",
    "categorization/renewable", "categorization/tools", "clickgame", "details", "erase",
    "explore_farm_animals", "explore_monuments", "explore_world_animals", "explore_world_music",
    "louis-braille",
)
GCOMPRIS_MIN_SIDE = 250        # louis-braille photos are ~255 px; everything smaller is an icon
TUX_MIN_SIDE = 100
TUX_EXCLUDED_FOLDERS = ("town/roadsigns",)   # drawn sign faces, photographic only in outline
TUX_MAX_FLATNESS = 0.02        # share of interior pixels with an exactly zero Laplacian
IMAGE_EXTENSIONS = (".webp", ".png", ".jpg", ".jpeg")
PERMISSIVE = ("public-domain", "CC0-1.0", "CC-BY-1.0", "CC-BY-2.0", "CC-BY-3.0", "CC-BY-4.0")


def log(msg):
    print(f"[prepare_photos] {msg}", flush=True)


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256_bytes(f.read())


def seed_of(text):
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16)


def write_png_atomic(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.png"
    if not cv2.imwrite(tmp, array):
        raise RuntimeError(f"cannot write {path}")
    os.replace(tmp, path)


def write_text_atomic(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- Qt rcc bundles (stdlib)

def rcc_files(path):
    """Yields (internal path, bytes) of every file in a Qt resource bundle (.rcc, format v1-v3).

    Header (big-endian): 'qres', version, tree offset, data offset, names offset. Tree entries are
    14 bytes (v1) or 22 bytes (v2+): name offset u32, flags u16, then either child count + first
    child index (directory, flag 2) or country/language u16 u16 + data offset u32 (file).
    Names: u16 length, u32 hash, UTF-16BE characters. Data: u32 length then the bytes; flag 1
    means zlib with a 4-byte uncompressed-size prefix, flag 4 zstd (not used by GCompris 3.1).
    """
    b = open(path, "rb").read()
    if b[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt rcc bundle")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    entry = 22 if version >= 2 else 14

    def name(offset):
        n, = struct.unpack(">H", b[names + offset:names + offset + 2])
        return b[names + offset + 6:names + offset + 6 + 2 * n].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        o = tree + index * entry
        name_offset, flags = struct.unpack(">IH", b[o:o + 6])
        here = name(name_offset) if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", b[o + 6:o + 14])
            for c in range(count):
                stack.append((first + c, f"{prefix}/{here}" if prefix or here else here))
            continue
        data_offset, = struct.unpack(">I", b[o + 10:o + 14])
        length, = struct.unpack(">I", b[data + data_offset:data + data_offset + 4])
        payload = b[data + data_offset + 4:data + data_offset + 4 + length]
        if flags & 4:
            raise ValueError(f"{path}: zstd-compressed entry {here} not supported")
        if flags & 1:
            payload = zlib.decompress(payload[4:])
        yield f"{prefix}/{here}".lstrip("/"), payload


def extract_gcompris(extracted, work):
    """Extracts raster images of all bundles into work/gcompris-rcc/<bundle>/<internal path>."""
    rcc_dir = os.path.join(extracted, "gcompris-qt-data/usr/share/gcompris-qt/rcc")
    out = os.path.join(work, "gcompris-rcc")
    marker = os.path.join(out, ".done")
    bundles = sorted(f for f in os.listdir(rcc_dir) if f.endswith(".rcc"))
    if os.path.exists(marker) and open(marker).read() == "\n".join(bundles):
        log(f"rcc bundles extracted already ({len(bundles)} bundles)")
        return out
    shutil.rmtree(out, ignore_errors=True)
    count = 0
    for bundle in bundles:
        for inner, payload in rcc_files(os.path.join(rcc_dir, bundle)):
            if inner.lower().endswith(IMAGE_EXTENSIONS):
                p = os.path.join(out, bundle[:-4], inner)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(payload)
                count += 1
    write_text_atomic(marker, "\n".join(bundles))
    log(f"extracted {count} raster images from {len(bundles)} rcc bundles")
    return out


# ---------------------------------------------------------------- debian/copyright (DEP-5)

def parse_copyright(path):
    """Returns the 'Files:' stanzas of a machine-readable debian/copyright, in file order."""
    text = open(path, encoding="utf-8").read()
    stanzas = []
    for para in re.split(r"\n[ \t]*\n", text):
        fields, key = {}, None
        for line in para.split("\n"):
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line and line[:1] not in (" ", "\t", "#"):
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Files" in fields:
            stanzas.append({
                "patterns": fields["Files"].split(),
                "copyright": " / ".join(x for x in fields.get("Copyright", "").split("\n") if x),
                "license": fields.get("License", "").split("\n")[0].strip(),
                "comment": " ".join(fields.get("Comment", "").split()),
            })
    return stanzas


def _stem(p):
    base, ext = os.path.splitext(p)
    return base if ext.lower() in IMAGE_EXTENSIONS + (".svg", ".svgz") else p


def licence_of(stanzas, path):
    """Last matching stanza wins (DEP-5). Image extensions are ignored, since the package ships
    WebP conversions of files the copyright file names as .jpg/.png."""
    found = None
    for s in stanzas:
        for pat in s["patterns"]:
            if fnmatch.fnmatchcase(path, pat) or fnmatch.fnmatchcase(_stem(path), _stem(pat)):
                found = dict(s, pattern=pat)
                break
    if found is None:
        return {"copyright": "", "license": "unknown", "comment": "", "pattern": "", "specific": False}
    found["specific"] = found["pattern"] != "*"
    return found


# ---------------------------------------------------------------- overrides and holdout lists

def read_overrides(path):
    """Scripts/mask_overrides.tsv: name, action (drop | box | sample), argument, note."""
    table = {}
    if not os.path.exists(path):
        return table
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.rstrip("\n").split("\t") + ["", "", ""]
        name, action, argument, note = (c.strip() for c in cols[:4])
        if action not in ("drop", "box", "sample"):
            raise ValueError(f"{path}: unknown action {action!r} for {name}")
        table.setdefault(name, {})[action] = {"argument": argument, "note": note}
    return table


def read_holdout(path):
    return [l.strip() for l in open(path, encoding="utf-8") if l.strip() and not l.startswith("#")]


def folder_of(stem):
    return stem.split("__", 1)[0].replace(".", "/")


def is_holdout(stem, holdout):
    f = folder_of(stem)
    return any(f == h or f.startswith(h + "/") for h in holdout)


# ---------------------------------------------------------------- image helpers

def load_rgb(path):
    im = Image.open(path)
    im.load()
    return np.asarray(im.convert("RGB"))


def resize_long_side(img, side, interpolation=cv2.INTER_AREA):
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img.copy()
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interpolation)


def resize_mask(mask01, width, height):
    m = cv2.resize(mask01.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
                   if width >= mask01.shape[1] else cv2.INTER_AREA)
    return (m >= 0.5).astype(np.uint8)


def dhash(rgb):
    g = cv2.cvtColor(cv2.resize(rgb, (17, 16), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    return (g[:, 1:] > g[:, :-1]).flatten()


# ---------------------------------------------------------------- GrabCut (docs/data.md, "Masks")

def grabcut_mask(rgb, rect_fractions=None):
    """Largest GrabCut component with holes filled, or (None, fraction) when outside 3-70 %."""
    im = rgb[:, :, ::-1].copy()
    h, w = im.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    if rect_fractions:
        x0, y0, x1, y1 = rect_fractions
        rect = (int(x0 * w), int(y0 * h), int((x1 - x0) * w), int((y1 - y0) * h))
    else:
        rect = (int(MARGIN * w), int(MARGIN * h), int((1 - 2 * MARGIN) * w), int((1 - 2 * MARGIN) * h))
    cv2.setRNGSeed(GRABCUT_SEED)
    cv2.grabCut(im, mask, rect, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_RECT)
    fg = ((mask == 1) | (mask == 3)).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, lab, st, _ = cv2.connectedComponentsWithStats(fg)
    if n <= 1:
        return None, 0.0
    fg = (lab == 1 + np.argmax(st[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    inv = 1 - fg
    n2, lab2, st2, _ = cv2.connectedComponentsWithStats(inv)
    for j in range(1, n2):                      # fill holes that do not touch the border
        x, y, ww, hh, _ = st2[j]
        if x > 0 and y > 0 and x + ww < w and y + hh < h:
            fg[lab2 == j] = 1
    fraction = float(fg.mean())
    return (fg if MIN_FRACTION <= fraction <= MAX_FRACTION else None), fraction


def _worker_init():
    cv2.setNumThreads(1)


def grabcut_job(job):
    """Runs in a worker process: job = dict(stem, source, photo, mask, box). Returns a result dict."""
    t0 = time.time()
    rgb = load_rgb(job["source"])
    out = resize_long_side(rgb, OUTPUT_SIDE)
    small = resize_long_side(rgb, GRABCUT_SIDE)
    box = [float(v) for v in job["box"].split(",")] if job["box"] else None
    try:
        fg, fraction = grabcut_mask(small, box)
    except cv2.error as e:
        return {"stem": job["stem"], "status": "rejected", "reason": f"grabcut error {e.code}",
                "fraction": 0.0, "seconds": time.time() - t0}
    if fg is None:
        why = "no foreground" if fraction == 0 else f"mask covers {fraction:.1%} (outside 3-70 %)"
        return {"stem": job["stem"], "status": "rejected", "reason": why, "fraction": fraction,
                "seconds": time.time() - t0}
    h, w = out.shape[:2]
    full = resize_mask(fg, w, h)
    write_png_atomic(job["photo"], out[:, :, ::-1])
    write_png_atomic(job["mask"], full * 255)
    return {"stem": job["stem"], "status": "accepted", "reason": "re-boxed" if box else "",
            "fraction": float(full.mean()), "seconds": time.time() - t0}


# ---------------------------------------------------------------- Tux Paint cut-outs

def flatness(rgba):
    """Share of interior opaque pixels whose 3x3 Laplacian is exactly zero (flat clip-art fill)."""
    opaque = (rgba[..., 3] >= 250).astype(np.uint8)
    inner = cv2.erode(opaque, np.ones((5, 5), np.uint8)) > 0
    if inner.sum() < 200:
        return 1.0
    lap = np.abs(cv2.Laplacian(rgba[..., :3].astype(np.float32), cv2.CV_32F, ksize=1)).max(axis=2)
    return float((lap[inner] < 0.5).mean())


def paste_stamp(rgba, background, rng):
    """Pastes a cut-out onto a photo with its own (premultiplied, resized) alpha.
    The object covers a random 6-30 % of the image (up to 1.5x upscaling, fits in 90 %)."""
    a = rgba[..., 3]
    ys, xs = np.nonzero(a > 0)
    crop = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255
    sh, sw = crop.shape[:2]
    H, W = background.shape[:2]
    coverage = float((crop[..., 3] >= 0.5).sum())
    target = rng.uniform(0.06, 0.30) * H * W
    s = min((target / max(coverage, 1)) ** 0.5, 1.5, 0.9 * W / sw, 0.9 * H / sh)
    nw, nh = max(1, round(sw * s)), max(1, round(sh * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    premultiplied = crop[..., :3] * crop[..., 3:4]
    colour = cv2.resize(premultiplied, (nw, nh), interpolation=interp)
    alpha = np.clip(cv2.resize(crop[..., 3], (nw, nh), interpolation=interp), 0, 1)[..., None]
    x = int(rng.integers(0, W - nw + 1))
    y = int(rng.integers(0, H - nh + 1))
    out = background.astype(np.float32) / 255
    region = out[y:y + nh, x:x + nw]
    out[y:y + nh, x:x + nw] = colour + region * (1 - alpha)
    mask = np.zeros((H, W), np.uint8)
    mask[y:y + nh, x:x + nw] = (alpha[..., 0] >= 0.5)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), mask


# ---------------------------------------------------------------- contact sheets

def contact_sheet(items, path, title, tile=256, columns=6):
    """items: (stem, photo path, mask path). Background dimmed, mask outlined in red."""
    rows = (len(items) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 14) + 16), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title, fill="black")
    for i, (stem, photo, mask) in enumerate(items):
        rgb = cv2.imread(photo)[:, :, ::-1]
        m = cv2.imread(mask, cv2.IMREAD_GRAYSCALE) > 127
        view = rgb.astype(np.float32)
        view[~m] *= 0.35
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        view = np.ascontiguousarray(view.astype(np.uint8))
        cv2.drawContours(view, contours, -1, (255, 0, 0), max(1, round(max(rgb.shape) / tile)))
        im = Image.fromarray(view)
        im.thumbnail((tile, tile))
        x, y = (i % columns) * tile, 16 + (i // columns) * (tile + 14)
        sheet.paste(im, (x, y))
        draw.text((x + 2, y + tile), f"{i}:{stem.split('__')[-1][:22]}", fill="black")
    sheet.save(path)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--scripts", required=True)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("DATA_JOBS", min(2, os.cpu_count() or 1))))
    args = ap.parse_args()
    start = time.time()
    data = os.path.abspath(args.data)
    extracted, work = os.path.join(data, "extracted"), os.path.join(data, "work")
    photos_dir, masks_dir = os.path.join(data, "photos"), os.path.join(data, "masks")
    records_dir = os.path.join(work, "records")
    for d in (photos_dir, masks_dir, records_dir):
        os.makedirs(d, exist_ok=True)
    overrides = read_overrides(os.path.join(args.scripts, "mask_overrides.tsv"))
    holdout = read_holdout(os.path.join(args.scripts, "holdout_folders.txt"))
    shutil.copyfile(os.path.join(args.scripts, "holdout_folders.txt"), os.path.join(data, "holdout_folders.txt"))
    debs = {f.split("_")[0]: f for f in sorted(os.listdir(os.path.join(data, "downloads"))) if f.endswith(".deb")}
    deb_info = {k: (v.split("_")[1], sha256_file(os.path.join(data, "downloads", v))) for k, v in debs.items()}

    gc_copyright_path = os.path.join(extracted, "gcompris-qt-data/usr/share/doc/gcompris-qt-data/copyright")
    tux_copyright_path = os.path.join(extracted, "tuxpaint-stamps-default/usr/share/doc/tuxpaint-stamps-default/copyright")
    gc_stanzas, tux_stanzas = parse_copyright(gc_copyright_path), parse_copyright(tux_copyright_path)
    os.makedirs(os.path.join(data, "licenses"), exist_ok=True)
    shutil.copyfile(gc_copyright_path, os.path.join(data, "licenses/gcompris-qt-data.copyright"))
    shutil.copyfile(tux_copyright_path, os.path.join(data, "licenses/tuxpaint-stamps-default.copyright"))

    rows = []          # manifest rows (dicts)
    used_stems = set()

    def record_path(stem):
        return os.path.join(records_dir, stem + ".json")

    # ---- 1. GCompris candidates
    rcc_root = extract_gcompris(extracted, work)
    gc_jobs, gc_rows, hashes = [], {}, []
    for dirpath, _, files in sorted(os.walk(rcc_root)):
        for fname in sorted(files):
            if not fname.lower().endswith(IMAGE_EXTENSIONS):
                continue
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, rcc_root)                       # <bundle>/gcompris/src/...
            bundle, inner = rel.split("/", 1)
            src_path = inner.split("/", 1)[1] if inner.startswith("gcompris/") else inner
            parts = src_path.split("/")
            if parts[:2] != ["src", "activities"]:
                continue
            folder = "/".join(p for p in parts[2:-1] if p not in ("resource", "resources", "images", "image"))
            stem = folder.replace("/", ".") + "__" + os.path.splitext(fname)[0]
            im = Image.open(full)
            w, h = im.size
            if max(w, h) < GCOMPRIS_MIN_SIDE:
                continue                                                 # icons: not listed
            lic = licence_of(gc_stanzas, src_path)
            row = {"file": stem + ".png", "package": "gcompris-qt-data", "source": f"usr/share/gcompris-qt/rcc/{bundle}.rcc:{inner}",
                   "licence": lic["license"] + ("" if lic["specific"] else " (package default stanza)"),
                   "copyright": lic["copyright"], "origin": lic["comment"], "folder": folder,
                   "split": "holdout" if is_holdout(stem, holdout) else "train", "fraction": "",
                   "sha_photo": "", "sha_mask": "", "status": "rejected", "reason": "", "stem": stem,
                   "size": f"{w}x{h}", "permissive_specific": lic["specific"] and lic["license"] in PERMISSIVE}
            ov = overrides.get(stem, {})
            if stem in used_stems:
                row["reason"] = "duplicate name"
            elif not any(folder == f or folder.startswith(f + "/") for f in GCOMPRIS_PHOTO_FOLDERS):
                row["reason"] = "not a photo folder (drawings / clip art / cut-outs)"
            elif min(w, h) < 0.3 * max(w, h):
                row["reason"] = "strip (aspect > 3.3)"
            elif im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                alpha = np.asarray(im.convert("RGBA"))[..., 3]
                if (alpha < 250).mean() > 0.01:
                    row["reason"] = "has transparency (cut-out, not a photograph)"
            if not row["reason"] and "drop" in ov:
                row["reason"] = "override drop: " + ov["drop"]["note"]
            if not row["reason"]:
                dh = dhash(load_rgb(full))
                twin = next((s for s, d in hashes if (d != dh).sum() <= 12), None)
                if twin:
                    row["reason"] = f"near-duplicate of {twin}"
                else:
                    hashes.append((stem, dh))
            used_stems.add(stem)
            gc_rows[stem] = row
            rows.append(row)
            if row["reason"]:
                continue
            box = ov.get("box", {}).get("argument", "")
            key = {"recipe": RECIPE_VERSION, "source_sha": sha256_file(full), "box": box}
            job = {"stem": stem, "source": full, "photo": os.path.join(photos_dir, stem + ".png"),
                   "mask": os.path.join(masks_dir, stem + ".png"), "box": box, "key": key}
            gc_jobs.append(job)

    log(f"GCompris: {len(gc_rows)} images >= {GCOMPRIS_MIN_SIDE} px, {len(gc_jobs)} photographs to mask")
    todo, done = [], 0
    for job in gc_jobs:
        rp = record_path(job["stem"])
        rec = json.load(open(rp)) if os.path.exists(rp) else None
        ok = rec and rec["key"] == job["key"] and (rec["status"] != "accepted" or
                                                   (os.path.exists(job["photo"]) and os.path.exists(job["mask"])))
        if ok:
            gc_rows[job["stem"]].update(status=rec["status"], reason=rec["reason"], fraction=rec["fraction"])
            done += 1
        else:
            todo.append(job)
    if done:
        log(f"GrabCut: {done} finished earlier, {len(todo)} to run")
    t_grabcut = time.time()
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, args.jobs), initializer=_worker_init) as pool:
            for i, (job, res) in enumerate(zip(todo, pool.map(grabcut_job, todo))):
                rec = {"key": job["key"], "status": res["status"], "reason": res["reason"], "fraction": res["fraction"]}
                if res["status"] != "accepted":
                    for p in (job["photo"], job["mask"]):
                        if os.path.exists(p):
                            os.remove(p)
                write_text_atomic(record_path(job["stem"]), json.dumps(rec))
                gc_rows[job["stem"]].update(status=res["status"], reason=res["reason"], fraction=res["fraction"])
                log(f"[grabcut {i + 1}/{len(todo)}] {job['stem']}: {res['status']} "
                    f"{res['fraction']:.1%} {res['reason']} ({res['seconds']:.2f} s)")
    t_grabcut = time.time() - t_grabcut
    gc_accepted = sorted(s for s, r in gc_rows.items() if r["status"] == "accepted")
    log(f"GCompris: {len(gc_accepted)} accepted of {len(gc_jobs)} masked")

    # ---- 2. Tux Paint cut-outs
    stamps_root = os.path.join(extracted, "tuxpaint-stamps-default/usr/share/tuxpaint/stamps")
    tux_lic = licence_of(tux_stanzas, "stamps/x.png")
    candidates, seen = [], {}
    for dirpath, _, files in sorted(os.walk(stamps_root)):
        for fname in sorted(files):
            if not fname.endswith(".png"):
                continue
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, stamps_root)
            folder = "tuxpaint/" + os.path.dirname(rel) if os.path.dirname(rel) else "tuxpaint"
            stem = folder.replace("/", ".") + "__" + fname[:-4]
            raw = open(full, "rb").read()
            rgba = np.asarray(Image.open(full).convert("RGBA"))
            row = {"file": stem + ".png", "package": "tuxpaint-stamps-default",
                   "source": "usr/share/tuxpaint/stamps/" + rel, "licence": tux_lic["license"] + " (package)",
                   "copyright": tux_lic["copyright"], "origin": "", "folder": folder,
                   "split": "holdout" if is_holdout(stem, holdout) else "train", "fraction": "",
                   "sha_photo": "", "sha_mask": "", "status": "rejected", "reason": "", "stem": stem,
                   "size": f"{rgba.shape[1]}x{rgba.shape[0]}", "permissive_specific": False}
            parts = rel.split("/")
            digest = sha256_bytes(raw)
            alpha = rgba[..., 3]
            if "cartoon" in parts:
                row["reason"] = "cartoon folder"
            elif any(rel.startswith(f + "/") for f in TUX_EXCLUDED_FOLDERS):
                row["reason"] = "road signs (drawn graphics)"
            elif os.path.exists(full[:-4] + ".svg"):
                row["reason"] = "has an SVG source (clip art)"
            elif fname[:-4].endswith("_mirror"):
                row["reason"] = "mirrored duplicate"
            elif digest in seen:
                row["reason"] = f"same file as {seen[digest]}"
            elif max(rgba.shape[:2]) < TUX_MIN_SIDE:
                row["reason"] = f"smaller than {TUX_MIN_SIDE} px"
            elif (alpha == 0).mean() < 0.05:
                row["reason"] = "no transparent background"
            else:
                f = flatness(rgba)
                if f >= TUX_MAX_FLATNESS:
                    row["reason"] = f"flat shading {f:.3f} (clip art)"
            if not row["reason"] and "drop" in overrides.get(stem, {}):
                row["reason"] = "override drop: " + overrides[stem]["drop"]["note"]
            seen.setdefault(digest, stem)
            rows.append(row)
            if not row["reason"]:
                candidates.append((seed_of("tuxpaint:" + rel), stem, full, row))
    candidates.sort()
    quota = round(len(gc_accepted) * TUX_SHARE / (1 - TUX_SHARE))
    pools = {split: [s for s in gc_accepted if gc_rows[s]["split"] == split] for split in ("train", "holdout")}
    log(f"Tux Paint: {len(candidates)} photographic cut-outs, pasting {quota} (share {TUX_SHARE:.0%})")
    tux_accepted = []
    for seed, stem, full, row in candidates:
        if len(tux_accepted) >= quota:
            row["reason"] = "not drawn (minority quota reached)"
            continue
        pool = pools[row["split"]]
        if not pool:
            row["reason"] = "no background photo in this split"
            continue
        rng = np.random.default_rng(seed)
        bg_stem = pool[int(rng.integers(len(pool)))]
        row["background"] = bg_stem
        photo, mask_path = os.path.join(photos_dir, stem + ".png"), os.path.join(masks_dir, stem + ".png")
        key = {"recipe": RECIPE_VERSION, "source_sha": sha256_file(full), "background": bg_stem,
               "background_sha": sha256_file(os.path.join(photos_dir, bg_stem + ".png"))}
        rp = record_path(stem)
        rec = json.load(open(rp)) if os.path.exists(rp) else None
        if not (rec and rec["key"] == key and (rec["status"] != "accepted" or
                                              (os.path.exists(photo) and os.path.exists(mask_path)))):
            bg = cv2.imread(os.path.join(photos_dir, bg_stem + ".png"))[:, :, ::-1]
            composite, mask = paste_stamp(np.asarray(Image.open(full).convert("RGBA")), bg, rng)
            fraction = float(mask.mean())
            if MIN_FRACTION <= fraction <= MAX_FRACTION:
                write_png_atomic(photo, composite[:, :, ::-1])
                write_png_atomic(mask_path, mask * 255)
                rec = {"key": key, "status": "accepted", "reason": f"pasted on {bg_stem}", "fraction": fraction}
            else:
                rec = {"key": key, "status": "rejected", "reason": f"mask covers {fraction:.1%}", "fraction": fraction}
            write_text_atomic(rp, json.dumps(rec))
            log(f"[tuxpaint {len(tux_accepted) + 1}/{quota}] {stem} on {bg_stem}: {rec['status']} {fraction:.1%}")
        row.update(status=rec["status"], reason=rec["reason"], fraction=rec["fraction"])
        if rec["status"] == "accepted":
            tux_accepted.append(stem)

    # ---- 3. Outputs: checksums, stale files, manifest, attribution, sheets, samples
    accepted = {r["stem"]: r for r in rows if r["status"] == "accepted"}
    for d in (photos_dir, masks_dir):
        for f in os.listdir(d):
            if f.endswith(".png") and f[:-4] not in accepted:
                os.remove(os.path.join(d, f))                             # left over from older runs
    for stem, r in accepted.items():
        r["sha_photo"] = sha256_file(os.path.join(photos_dir, stem + ".png"))
        r["sha_mask"] = sha256_file(os.path.join(masks_dir, stem + ".png"))
    header = ["file", "status", "reason", "split", "mask_fraction", "size_source", "source_package",
              "source_path", "licence", "sha256_photo", "sha256_mask"]
    lines = ["\t".join(header)]
    for r in sorted(rows, key=lambda r: (r["status"] != "accepted", r["package"], r["file"])):
        pkg = f"{r['package']} {deb_info.get(r['package'], ('?',))[0]}"
        frac = f"{r['fraction']:.4f}" if r["fraction"] != "" else ""
        lines.append("\t".join([r["file"], r["status"], r["reason"], r["split"], frac, r["size"], pkg,
                                r["source"], r["licence"], r["sha_photo"], r["sha_mask"]]))
    write_text_atomic(os.path.join(data, "manifest.tsv"), "\n".join(lines) + "\n")

    write_attribution(data, accepted, gc_rows, deb_info, debs)
    sheets = os.path.join(data, "contact_sheets")
    shutil.rmtree(sheets, ignore_errors=True)
    os.makedirs(sheets)
    for label, stems in (("gcompris", gc_accepted), ("tuxpaint", sorted(tux_accepted))):
        for k in range(0, len(stems), 36):
            part = stems[k:k + 36]
            contact_sheet([(s, os.path.join(photos_dir, s + ".png"), os.path.join(masks_dir, s + ".png")) for s in part],
                          os.path.join(sheets, f"{label}_{k // 36:02d}.png"),
                          f"{label} accepted {k}-{k + len(part) - 1} (GrabCut pseudo-masks)" if label == "gcompris"
                          else f"{label} pastes {k}-{k + len(part) - 1} (true alpha)")
    write_samples(data, accepted, overrides)

    n_hold = sum(1 for r in accepted.values() if r["split"] == "holdout")
    total = len(accepted)
    elapsed = time.time() - start
    summary = {"gcompris_masked": len(gc_jobs), "gcompris_accepted": len(gc_accepted),
               "tuxpaint_candidates": len(candidates), "tuxpaint_accepted": len(tux_accepted),
               "total": total, "holdout": n_hold, "holdout_share": round(n_hold / max(total, 1), 3),
               "tuxpaint_share": round(len(tux_accepted) / max(total, 1), 3),
               "grabcut_seconds_this_run": round(t_grabcut, 1), "grabcut_runs_this_run": len(todo),
               "seconds_this_run": round(elapsed, 1), "jobs": args.jobs}
    write_text_atomic(os.path.join(data, "summary.json"), json.dumps(summary, indent=1) + "\n")
    log("summary: " + json.dumps(summary))


def write_attribution(data, accepted, gc_rows, deb_info, debs):
    out = ["# Attribution of the training photos",
           "",
           "Generated by Scripts/prepare_photos.py from the Debian packages' `debian/copyright` files",
           "(copies in `licenses/`, which also hold the full licence texts). Packages used:",
           ""]
    for pkg, (version, digest) in sorted(deb_info.items()):
        out.append(f"- `{debs[pkg]}` ({pkg} {version}), sha256 `{digest}`")
    out += ["",
            "Licences are per file where the copyright file lists the file (last matching `Files:`",
            "stanza, image extensions ignored because the package ships WebP conversions). The",
            "copyright file of gcompris-qt-data 3.1-2 is partly out of date: files added or renamed",
            "upstream only match the `Files: *` stanza (GPL-3+), shown as 'package default stanza',",
            "and a few listed names now hold a different picture than the stanza describes. Tux Paint",
            "stamps are GPL-2 (one stanza for the whole package). Masks are GrabCut pseudo-masks",
            "made by this project; Tux Paint photos are the stamp pasted onto the named GCompris photo.",
            "",
            "| file | source | copyright | licence | origin |",
            "| --- | --- | --- | --- | --- |"]
    esc = lambda s: s.replace("|", "\\|")
    for stem in sorted(accepted):
        r = accepted[stem]
        source, lic, cr, origin = r["source"], r["licence"], r["copyright"], r["origin"]
        if r["package"] == "tuxpaint-stamps-default":
            b = gc_rows[r["background"]]
            source += f" on {b['file']}"
            lic += f"; background: {b['licence']}"
            cr += f"; background: {b['copyright']}"
            origin = b["origin"]
        out.append(f"| {r['file']} | {esc(source)} | {esc(cr)} | {esc(lic)} | {esc(origin)} |")
    write_text_atomic(os.path.join(data, "ATTRIBUTION.md"), "\n".join(out) + "\n")


def write_samples(data, accepted, overrides):
    """Small permissive photo/mask pairs for the committed test sample (override action 'sample')."""
    out = os.path.join(data, "sample_candidates")
    shutil.rmtree(out, ignore_errors=True)
    lines = ["# Sample candidates (photo/mask pairs, long side <= %d px)" % SAMPLE_SIDE, ""]
    for stem in sorted(s for s, o in overrides.items() if "sample" in o):
        r = accepted.get(stem)
        if r is None or not r["permissive_specific"]:
            log(f"sample candidate {stem} skipped (not accepted or licence not permissive)")
            continue
        photo = cv2.imread(os.path.join(data, "photos", stem + ".png"))
        mask = cv2.imread(os.path.join(data, "masks", stem + ".png"), cv2.IMREAD_GRAYSCALE)
        small = resize_long_side(photo, SAMPLE_SIDE)
        h, w = small.shape[:2]
        m = resize_mask((mask > 127).astype(np.uint8), w, h) * 255
        write_png_atomic(os.path.join(out, "photos", stem + ".png"), small)
        write_png_atomic(os.path.join(out, "masks", stem + ".png"), m)
        origin = f" ({r['origin']})" if r["origin"] else ""
        lines.append(f"- {stem}.png: \"{r['copyright']}\", {r['licence']}{origin}; from Debian package "
                     f"gcompris-qt-data 3.1-2 ({r['source']}), resized to {w}x{h}; mask: GrabCut "
                     f"pseudo-mask by this project. {overrides[stem]['sample']['note']}")
    write_text_atomic(os.path.join(out, "ATTRIBUTION.md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
