"""Photo domain: import folders of real component photos, or fetch public collections, into a dataset.

`image2circuit photos import DIR --out datasets/NAME` reads DIR/<class>/<images>, maps folder names
onto CLASSES through one alias table, validates and normalises every image (EXIF orientation, RGB on
white, longer side <= --max-side, JPEG q95 named by content hash), groups exact and near duplicates
with a 64-bit perceptual hash so that a whole group lands in one split (no near-copy of a training
photo in the test split), splits each class deterministically for the seed, and merges the rows into
the dataset manifest as domain "photo". `image2circuit photos fetch` downloads the collections listed
in datasets/photo_sources.json (pinned commits, optional sha256), extracts them safely and runs the
same import over them.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
import typer
from PIL import Image, ImageOps, UnidentifiedImageError

from . import CLASSES
from .errors import UserError
from .manifest import SPLITS, atomic_write_bytes, merge_domain

DOMAIN = "photo"
REPORT = "photo_import.json"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
JPEG_QUALITY = 95
# Near-duplicate rule, measured on the 3112 photos in /work/shared/data/photos and on 300 of them
# edited: a pair is a near-duplicate when its 64-bit pHashes differ in <= DUP_DISTANCE bits AND the
# 16x16 colour thumbnails correlate >= DUP_MIN_CORR. That catches 100% of half-size, JPEG q40 and
# +15% brightness copies, ~95% of 3%-cropped and ~94% of crop+brighten+resize+recompress copies.
# pHash alone cannot separate catalogue shots (a thin part on white): at <= 6 bits it already chains
# different photos into groups of 50, at <= 8 into one of 209; with the thumbnail check the largest
# group is 11 (the same product shot twice).
DUP_DISTANCE = 10
DUP_MIN_CORR = 0.90
# Skip reasons, in the order the report lists them.
SKIP_REASONS = (
    "empty",
    "not_an_image",
    "truncated",
    "decompression_bomb",
    "too_small",
    "unreadable",
    "exact_duplicate",
    "conflicting_labels",
)
# Folders that archives and operating systems add; never a class, never worth reporting.
_IGNORED_DIRS = {"__macosx", "$recycle.bin", "system volume information"}
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = REPO_ROOT / "datasets" / "photo_sources.json"
DEFAULT_FETCH_OUT = Path("datasets/default")  # the dataset `make dataset` builds
SOURCES_VERSION = 1
# A zip whose members would expand past this is refused (a zip bomb, or the wrong archive).
MAX_ARCHIVE_BYTES = 16 * 2**30

# --- class names -----------------------------------------------------------------------------------

# Every accepted folder name (normalised: lower case, words separated by one space, singular) -> class.
# The one place that decides which folder names mean which class; extend it here.
CLASS_ALIASES: dict[str, str] = {
    # capacitor
    "capacitor": "capacitor",
    "cap": "capacitor",
    "condenser": "capacitor",
    "electrolytic capacitor": "capacitor",
    "ceramic capacitor": "capacitor",
    "film capacitor": "capacitor",
    "tantalum capacitor": "capacitor",
    # diode
    "diode": "diode",
    "led": "diode",
    "light emitting diode": "diode",
    "zener": "diode",
    "zener diode": "diode",
    "rectifier diode": "diode",
    "schottky diode": "diode",
    # inductor
    "inductor": "inductor",
    "coil": "inductor",
    "choke": "inductor",
    "inductance": "inductor",
    # integrated circuit
    "integrated circuit": "integrated_circuit",
    "ic": "integrated_circuit",
    "chip": "integrated_circuit",
    "microchip": "integrated_circuit",
    "op amp": "integrated_circuit",
    "opamp": "integrated_circuit",
    # resistor
    "resistor": "resistor",
    "resistance": "resistor",
    "potentiometer": "resistor",
    # transformer
    "transformer": "transformer",
    # transistor
    "transistor": "transistor",
    "bjt": "transistor",
    "mosfet": "transistor",
    "fet": "transistor",
    # voltage source
    "voltage source": "voltage_source",
    "battery": "voltage_source",
    "cell": "voltage_source",
    "dc source": "voltage_source",
    "ac source": "voltage_source",
    "power source": "voltage_source",
}


def _normalise_name(name: str) -> str:
    """Lower case, separators (space - _ . +) collapsed to one space."""
    return " ".join(re.split(r"[\s_\-.+]+", name.strip().lower())).strip()


def _singular(word: str) -> str:
    """English plural -> singular, enough for folder names (batteries, chips, capacitors, ICs)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def canonical_class(name: str) -> str | None:
    """Map a folder name (any case, plural, separators) onto a class in CLASSES; None when unknown."""
    norm = _normalise_name(name)
    if not norm:
        return None
    words = norm.split(" ")
    for cand in (norm, " ".join(_singular(w) for w in words), " ".join(words[:-1] + [_singular(words[-1])])):
        for key in (cand, cand.replace(" ", "")):
            if key in CLASS_ALIASES:
                return CLASS_ALIASES[key]
    return None


# --- scanning an input tree ------------------------------------------------------------------------


@dataclass
class Candidate:
    """One image file to import: where it is, its class, and how the manifest names its origin."""

    path: Path
    label: str
    source: str


@dataclass
class Scan:
    """What a folder tree holds: images per class, and everything that was not imported."""

    candidates: list[Candidate] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)  # folder -> class it was mapped to
    unknown_folders: dict[str, int] = field(default_factory=dict)  # folder -> files inside
    loose_files: list[str] = field(default_factory=list)  # files at the root, outside class folders
    other_files: list[str] = field(default_factory=list)  # non-image files inside class folders

    def extend(self, other: "Scan") -> None:
        self.candidates += other.candidates
        self.folders.update(other.folders)
        self.unknown_folders.update(other.unknown_folders)
        self.loose_files += other.loose_files
        self.other_files += other.other_files


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _IGNORED_DIRS


def _walk_files(folder: Path) -> list[Path]:
    """All non-hidden files under folder (recursively), in a stable order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        out += [Path(dirpath) / f for f in sorted(filenames) if not _hidden(f)]
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def scan_tree(root: Path, class_map: dict[str, str] | None = None, prefix: str = "") -> Scan:
    """Read root/<class folder>/... ; class_map (exact folder name, or "*" for any) wins over aliases."""
    root = Path(root)
    class_map = class_map or {}
    scan = Scan()
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if _hidden(entry.name):
            continue
        rel = prefix + entry.name
        if not entry.is_dir():
            scan.loose_files.append(rel)
            continue
        label = class_map.get(entry.name) or class_map.get("*") or canonical_class(entry.name)
        files = _walk_files(entry)
        if label is None:
            scan.unknown_folders[rel] = len(files)
            continue
        scan.folders[rel] = label
        for f in files:
            src = prefix + f.relative_to(root).as_posix()
            if f.suffix.lower() in IMAGE_EXTS:
                scan.candidates.append(Candidate(f, label, src))
            else:
                scan.other_files.append(src)
    return scan


def sample_real(folder: Path, classes: Sequence[str], n: int, seed: int) -> dict[str, list[Path]]:
    """Up to n real images per class from folder/<class>/ (any alias of the class name), chosen by seed.

    For looking at generated symbols next to real ones; classes the folder lacks are left out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"real-image folder {folder} does not exist; pass a folder of <class>/<image> sub-folders")
    by_class: dict[str, list[Path]] = defaultdict(list)
    for cand in scan_tree(folder).candidates:
        by_class[cand.label].append(cand.path)
    rng = np.random.default_rng(seed)
    picked = {}
    for cls in classes:
        files = by_class.get(cls, [])
        if files:
            picked[cls] = [files[i] for i in sorted(rng.choice(len(files), min(n, len(files)), replace=False))]
    if not picked:
        raise UserError(f"{folder} has no images of {', '.join(classes)}; expected {folder}/<class>/<image> "
                        f"with class folders such as {classes[0]}/")
    return picked


# --- one image -------------------------------------------------------------------------------------


class Skip(Exception):
    """An input image that cannot be used; args[0] is one of SKIP_REASONS."""


def _open_checked(data: bytes, min_side: int, max_side: int,
                  max_pixels: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """Open and fully decode, turning every failure into a counted Skip reason."""
    if not data:
        raise Skip("empty")
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    with warnings.catch_warnings():
        # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that: both mean "refuse".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Skip("decompression_bomb") from None
        except UnidentifiedImageError:
            raise Skip("not_an_image") from None
        except Exception:  # noqa: BLE001 - a malformed header can raise almost anything
            raise Skip("unreadable") from None
        size = im.size
        if limit and size[0] * size[1] > limit:
            raise Skip("decompression_bomb")
        if min(size) < min_side:
            raise Skip("too_small")
        if im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))  # decode at reduced scale: much faster for big photos
        try:
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Skip("decompression_bomb") from None
        except (OSError, EOFError, SyntaxError) as e:
            msg = str(e).lower()
            raise Skip("truncated" if "truncat" in msg or isinstance(e, EOFError) else "unreadable") from None
        except Exception:  # noqa: BLE001
            raise Skip("unreadable") from None
    return im, size


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB: 16/32-bit and float scaled, transparency composited on white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode == "F" and a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
        elif im.mode != "F" and a.size and a.max() > 255:
            a = a / 257.0  # 16-bit range -> 8-bit
        im = Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    return im.convert("RGB")


def _resize(im: Image.Image, max_side: int) -> Image.Image:
    """Shrink so the longer side is at most max_side, keeping the aspect ratio (never enlarge)."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    s = max_side / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


_DCT_CACHE: dict[int, np.ndarray] = {}


def _dct_matrix(n: int) -> np.ndarray:
    if n not in _DCT_CACHE:
        k = np.arange(n)[:, None]
        x = np.arange(n)[None, :]
        m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
        m[0] /= np.sqrt(2.0)
        _DCT_CACHE[n] = m
    return _DCT_CACHE[n]


def phash(im: Image.Image) -> int:
    """64-bit perceptual hash: signs of the 8x8 lowest 2-D DCT frequencies of a 32x32 grey thumbnail
    against their median; robust to resizing, recompression, brightness and small crops."""
    g = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    d = _dct_matrix(32)
    low = (d @ g @ d.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])  # median without the DC term, which only tracks brightness
    return int(np.packbits(bits).view(">u8")[0])


def dhash(im: Image.Image) -> int:
    """64-bit difference hash (kept for comparison with phash; see the threshold measurement)."""
    g = np.asarray(im.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return int(np.packbits((g[:, 1:] > g[:, :-1]).ravel()).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def thumb_vector(im: Image.Image, n: int = 16) -> np.ndarray:
    """Zero-mean, unit-norm n x n colour thumbnail: the dot product of two is their correlation."""
    a = np.asarray(im.convert("RGB").resize((n, n), Image.Resampling.BOX), dtype=np.float32).ravel()
    a = a - a.mean()
    return a / (np.linalg.norm(a) + 1e-6)


@dataclass
class Normalised:
    jpeg: bytes
    phash: int
    thumb: np.ndarray
    size: tuple[int, int]
    orig_size: tuple[int, int]


def normalise_image(data: bytes, *, min_side: int = 32, max_side: int = 256,
                    max_pixels: int | None = None) -> Normalised:
    """Validate one image file's bytes and return the dataset JPEG; raises Skip(reason)."""
    im, orig = _open_checked(data, min_side, max_side, max_pixels)
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a broken EXIF block should not cost the photo
        pass
    im = _resize(to_rgb(im), max_side)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return Normalised(buf.getvalue(), phash(im), thumb_vector(im), im.size, orig)


# --- duplicates and splits -------------------------------------------------------------------------


def near_duplicate_groups(hashes: Sequence[int], thumbs: np.ndarray | None = None, *,
                          max_distance: int = DUP_DISTANCE, min_corr: float = DUP_MIN_CORR) -> list[int]:
    """Union-find over pairs within max_distance pHash bits (and, given thumbs, thumbnail correlation
    >= min_corr); returns each item's group root, the lowest index in its group."""
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    h = np.array(hashes, dtype=np.uint64)
    chunk = max(1, min(512, 2**22 // max(n, 1)))  # keeps each n x chunk block near 32 MB
    for start in range(0, n, chunk):
        block = h[start:start + chunk, None] ^ h[None, :]
        ii, jj = np.nonzero(np.bitwise_count(block) <= max_distance)
        ii += start
        keep = jj > ii
        ii, jj = ii[keep], jj[keep]
        if thumbs is not None and len(ii):
            corr = np.einsum("ij,ij->i", thumbs[ii], thumbs[jj])
            ii, jj = ii[corr >= min_corr], jj[corr >= min_corr]
        for i, j in zip(ii.tolist(), jj.tolist()):
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(n)]


def _order_key(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}:{key}".encode()).digest()


def assign_splits(groups: dict[str, tuple[str, int]], seed: int, val: float, test: float) -> dict[str, str]:
    """groups: key -> (class, images). Per class, walk the groups in seeded-hash order and give each
    to the split furthest below its target count, so fractions hold and a group is never split."""
    fractions = {"train": 1.0 - val - test, "val": val, "test": test}
    by_class: dict[str, list[str]] = defaultdict(list)
    for key, (label, _) in groups.items():
        by_class[label].append(key)
    out: dict[str, str] = {}
    for label, keys in by_class.items():
        total = sum(groups[k][1] for k in keys)
        have = dict.fromkeys(SPLITS, 0)
        for key in sorted(keys, key=lambda k: _order_key(seed, k)):
            # ties go to train first, so a class with one photo trains on it
            split = max(SPLITS, key=lambda s: (fractions[s] * total - have[s], s == "train"))
            out[key] = split
            have[split] += groups[key][1]
    return out


# --- the import ------------------------------------------------------------------------------------


def _progress():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def _check_fractions(val: float, test: float, min_side: int, max_side: int, dup_distance: int,
                     dup_min_corr: float) -> None:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise UserError(f"--val {val} and --test {test} must be fractions in [0, 1) that sum below 1 "
                        "(e.g. --val 0.1 --test 0.2)")
    if min_side < 1 or max_side < 8 or max_side < min_side:
        raise UserError(f"--min-side {min_side} / --max-side {max_side}: need 1 <= min-side <= max-side "
                        "and max-side >= 8")
    if not 0 <= dup_distance <= 32:
        raise UserError(f"--dup-distance {dup_distance}: choose 0..32 bits (default {DUP_DISTANCE})")
    if not -1.0 <= dup_min_corr <= 1.0:
        raise UserError(f"--dup-min-corr {dup_min_corr}: choose a correlation in -1..1 (default {DUP_MIN_CORR})")


def _prepare_out(out: Path) -> Path:
    """Create the dataset folder and prove it is writable before any work, so a bad --out fails fast."""
    out = Path(out)
    try:
        (out / DOMAIN).mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write the dataset to {out}: {e.strerror or e}; pick a writable --out folder") from None
    return out


def import_scan(scan: Scan, out: Path, *, seed: int = 0, min_side: int = 32, max_side: int = 256,
                val: float = 0.1, test: float = 0.2, dup_distance: int = DUP_DISTANCE,
                dup_min_corr: float = DUP_MIN_CORR, max_pixels: int | None = None,
                extra_report: dict | None = None, progress: bool = True) -> dict:
    """Normalise, deduplicate and split the scanned images, write them under out/photo, replace the
    photo rows of out/manifest.csv and write out/photo_import.json. Returns the report."""
    _check_fractions(val, test, min_side, max_side, dup_distance, dup_min_corr)
    out = _prepare_out(out)
    cands = sorted(scan.candidates, key=lambda c: c.source)
    base_row = {"domain": DOMAIN, "recipe": "", "seed": str(seed)}
    skipped: list[dict] = []

    def skip(c: Candidate, reason: str, **params) -> None:
        skipped.append({**base_row, "file": "", "label": c.label, "split": "skipped", "source": c.source,
                        "note": reason, "params": json.dumps(params, sort_keys=True) if params else ""})

    ctx = _progress() if progress else None
    if ctx:
        ctx.start()
    try:
        # 1. exact duplicates by the bytes' sha256 (cheap; same bytes in two classes = ambiguous label)
        digests: dict[str, list[Candidate]] = defaultdict(list)
        task = ctx.add_task("reading", total=len(cands)) if ctx else None
        for c in cands:
            try:
                data = c.path.read_bytes()
            except OSError:
                skip(c, "unreadable")
                data = None
            if data is not None:
                digests[hashlib.sha256(data).hexdigest()].append(c)
            if ctx:
                ctx.advance(task)
        unique: list[tuple[str, Candidate]] = []
        for digest, same in sorted(digests.items(), key=lambda kv: kv[1][0].source):
            labels = sorted({c.label for c in same})
            if len(labels) > 1:
                for c in same:
                    skip(c, "conflicting_labels", labels=labels)
                continue
            unique.append((digest, same[0]))
            for c in same[1:]:
                skip(c, "exact_duplicate", dup_of=f"{DOMAIN}/{c.label}/{digest[:16]}.jpg", kept=same[0].source)

        # 2. decode, validate, normalise, write
        kept: list[dict] = []
        hashes: list[int] = []
        thumbs: list[np.ndarray] = []
        task = ctx.add_task("normalising", total=len(unique)) if ctx else None
        for digest, c in unique:
            try:
                norm = normalise_image(c.path.read_bytes(), min_side=min_side, max_side=max_side, max_pixels=max_pixels)
            except Skip as s:
                skip(c, s.args[0])
            except OSError:
                skip(c, "unreadable")
            else:
                rel = f"{DOMAIN}/{c.label}/{digest[:16]}.jpg"
                dest = out / rel
                if not (dest.is_file() and dest.read_bytes() == norm.jpeg):
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(dest, norm.jpeg)
                kept.append({**base_row, "file": rel, "label": c.label, "source": c.source, "note": "",
                             "params": json.dumps({"orig_size": list(norm.orig_size), "phash": f"{norm.phash:016x}",
                                                   "size": list(norm.size)}, sort_keys=True)})
                hashes.append(norm.phash)
                thumbs.append(norm.thumb)
            if ctx:
                ctx.advance(task)
    finally:
        if ctx:
            ctx.stop()

    # 3. near-duplicate groups -> one split per group, stratified by class
    roots = near_duplicate_groups(hashes, np.stack(thumbs) if thumbs else None,
                                  max_distance=dup_distance, min_corr=dup_min_corr)
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(roots):
        members[r].append(i)
    group_info: dict[str, tuple[str, int]] = {}
    group_key_of: dict[int, str] = {}
    dup_groups = []
    for idxs in members.values():
        files = sorted(kept[i]["file"] for i in idxs)
        counts = Counter(kept[i]["label"] for i in idxs)
        label = min(counts, key=lambda lab: (-counts[lab], lab))  # majority, ties alphabetical
        key = files[0]
        group_info[key] = (label, len(idxs))
        for i in idxs:
            group_key_of[i] = key
        if len(idxs) > 1:
            dup_groups.append({"files": files, "labels": sorted(counts),
                               "sources": sorted(kept[i]["source"] for i in idxs)})
            for i in idxs:
                if kept[i]["file"] != key:
                    kept[i]["note"] = f"dup-of:{key}"
    split_of = assign_splits(group_info, seed, val, test)
    for i, row in enumerate(kept):
        row["split"] = split_of[group_key_of[i]]

    # 4. replace the photo domain: manifest rows, then files no longer referenced
    skipped.sort(key=lambda r: r["source"])
    merge_domain(out, DOMAIN, kept + skipped)
    wanted = {r["file"] for r in kept}
    for path in sorted((out / DOMAIN).rglob("*")):
        if path.is_file() and path.relative_to(out).as_posix() not in wanted:
            path.unlink()
    for path in sorted((out / DOMAIN).glob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()

    dup_groups.sort(key=lambda g: g["files"][0])
    splits = {s: dict(sorted(Counter(r["label"] for r in kept if r["split"] == s).items())) for s in SPLITS}
    skip_counts = Counter(r["note"] for r in skipped)
    report = {
        "version": 1,
        "seed": seed,
        "params": {"min_side": min_side, "max_side": max_side, "val": val, "test": test,
                   "dup_distance": dup_distance, "dup_min_corr": dup_min_corr, "hash": "phash64-dct",
                   "jpeg_quality": JPEG_QUALITY},
        "images_seen": len(cands),
        "imported": dict(sorted(Counter(r["label"] for r in kept).items())),
        "imported_total": len(kept),
        "skipped": {k: skip_counts[k] for k in SKIP_REASONS if skip_counts[k]},
        "skipped_files": [{"source": r["source"], "reason": r["note"]} for r in skipped],
        "splits": splits,
        "split_totals": {s: sum(v.values()) for s, v in splits.items()},
        "duplicate_groups": {
            "groups": len(dup_groups),
            "images_in_groups": sum(len(g["files"]) for g in dup_groups),
            "cross_class": sum(1 for g in dup_groups if len(g["labels"]) > 1),
            "list": dup_groups,
        },
        "folders": dict(sorted(scan.folders.items())),
        "unknown_folders": dict(sorted(scan.unknown_folders.items())),
        "loose_files": sorted(scan.loose_files),
        "other_files": sorted(scan.other_files),
    }
    if extra_report:
        report.update(extra_report)
    atomic_write_bytes(out / REPORT, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    return report


def import_photos(src: Path, out: Path, **kw) -> dict:
    """Import DIR/<class>/<images> into the dataset at out (see import_scan for the keywords)."""
    src = Path(src)
    if not src.exists():
        raise UserError(f"photo folder {src} does not exist; give a folder laid out as DIR/<class>/<images>")
    if not src.is_dir():
        raise UserError(f"{src} is not a folder; give a folder laid out as DIR/<class>/<images>")
    scan = scan_tree(src)
    if not scan.folders:
        seen = ", ".join(sorted(scan.unknown_folders)) or "none"
        raise UserError(
            f"no class folders recognised in {src} (folders seen: {seen}); name sub-folders after the "
            f"classes ({', '.join(CLASSES)}) or an alias such as resistors, IC, battery, LED"
        )
    return import_scan(scan, out, **kw)


def print_summary(report: dict, wall_s: float | None = None) -> None:
    """A readable table of what was imported, split and skipped."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"photo import ({report['imported_total']} of {report['images_seen']} images)")
    for col in ("class", "imported", *SPLITS):
        t.add_column(col, justify="left" if col == "class" else "right")
    for label in CLASSES:
        n = report["imported"].get(label, 0)
        t.add_row(label, str(n), *(str(report["splits"][s].get(label, 0)) for s in SPLITS))
    t.add_row("total", str(report["imported_total"]), *(str(report["split_totals"][s]) for s in SPLITS), style="bold")
    console.print(t)
    if report["skipped"]:
        st = Table(title="skipped")
        st.add_column("reason")
        st.add_column("images", justify="right")
        for k, v in report["skipped"].items():
            st.add_row(k, str(v))
        console.print(st)
    d = report["duplicate_groups"]
    console.print(f"near-duplicate groups: {d['groups']} ({d['images_in_groups']} images, "
                  f"{d['cross_class']} spanning classes), each kept in one split")
    for name, n in report["unknown_folders"].items():
        console.print(f"[yellow]not imported: folder {name!r} ({n} files) is no known class; rename it to one of "
                      f"{', '.join(CLASSES)} or an alias[/yellow]")
    if report["loose_files"]:
        console.print(f"[yellow]not imported: {len(report['loose_files'])} file(s) outside class folders, e.g. "
                      f"{report['loose_files'][0]}[/yellow]")
    if report["other_files"]:
        console.print(f"ignored {len(report['other_files'])} non-image file(s) in class folders, "
                      f"e.g. {report['other_files'][0]}")
    if wall_s is not None:
        console.print(f"done in {wall_s:.1f} s")


# --- fetch -----------------------------------------------------------------------------------------


@dataclass
class PhotoSource:
    """One public collection: a pinned archive, the folder with class sub-folders, and their classes."""

    name: str
    repo: str
    commit: str
    url: str
    subdir: str
    class_map: dict[str, str]
    sha256: str | None = None
    licence: str | None = None  # None: the source states no licence, so fetching needs consent
    note: str = ""

    @property
    def archive_url(self) -> str:
        return self.url.format(repo=self.repo, commit=self.commit, name=self.name)


def load_sources(path: Path) -> list[PhotoSource]:
    """Read and check the versioned sources file; every problem is a UserError naming the entry."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no photo sources file at {path}; pass --sources PATH")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e}); fix the file") from None
    if not isinstance(doc, dict) or doc.get("version") != SOURCES_VERSION or not isinstance(doc.get("sources"), list):
        raise UserError(f"{path}: expected {{\"version\": {SOURCES_VERSION}, \"sources\": [...]}}")
    out, names = [], set()
    for i, s in enumerate(doc["sources"]):
        where = f"{path}: source #{i + 1}"
        if not isinstance(s, dict):
            raise UserError(f"{where} is not an object")
        missing = [k for k in ("name", "repo", "commit", "url", "subdir", "class_map") if k not in s]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(s["name"])) or s["name"] in names:
            raise UserError(f"{where}: name {s['name']!r} must be unique letters, digits, _ . -")
        names.add(s["name"])
        bad = {k: v for k, v in s["class_map"].items() if v not in CLASSES}
        if bad:
            raise UserError(f"{where} ({s['name']}): class_map maps to unknown class(es) {bad}; "
                            f"use {', '.join(CLASSES)}")
        sub = PurePosixPath(str(s["subdir"]))
        if sub.is_absolute() or ".." in sub.parts:
            raise UserError(f"{where} ({s['name']}): subdir {s['subdir']!r} must be a relative path inside the archive")
        sha = s.get("sha256") or None
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            raise UserError(f"{where} ({s['name']}): sha256 must be 64 hex digits or absent")
        src = PhotoSource(name=s["name"], repo=s["repo"], commit=s["commit"], url=s["url"], subdir=s["subdir"],
                          class_map=dict(s["class_map"]), sha256=sha.lower() if sha else None,
                          licence=s.get("licence") or None, note=s.get("note", ""))
        try:
            src.archive_url
        except (KeyError, IndexError, ValueError) as e:
            raise UserError(f"{where} ({s['name']}): url template has an unknown field {e}; "
                            "use {repo}, {commit}, {name}") from None
        out.append(src)
    if not out:
        raise UserError(f"{path}: lists no sources")
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, *, label: str = "", timeout: float = 60.0) -> str:
    """Fetch url (file://, http://, https://) to dest via a temporary name; verify sha256 when given.
    Returns the archive's sha256."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f, Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=Console(stderr=True), transient=True,
        ) as bar:
            length = resp.headers.get("Content-Length")
            task = bar.add_task(f"downloading {label or url}", total=int(length) if length else None)
            while block := resp.read(1 << 16):
                f.write(block)
                h.update(block)
                bar.advance(task, len(block))
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise UserError(f"could not download {label or url} from {url}: {reason}; check the network or the url "
                        f"in the sources file, or place the archive at {dest}") from None
    got = h.hexdigest()
    if sha256 and got != sha256:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{label or url}: sha256 mismatch for {url} (expected {sha256}, got {got}); the archive "
                        f"changed or the download is corrupt - check commit and sha256 in the sources file")
    os.replace(tmp, dest)
    return got


def _unsafe_member(info: zipfile.ZipInfo) -> bool:
    name = info.filename.replace("\\", "/")
    p = PurePosixPath(name)
    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
    return is_link or p.is_absolute() or ".." in p.parts or bool(re.match(r"^[A-Za-z]:", name))


def extract_zip(archive: Path, dest: Path) -> Path:
    """Extract safely (no absolute paths, no '..', no links, bounded size) into dest via a temp folder."""
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{archive} is not a readable zip archive ({e}); delete it and fetch again") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if _unsafe_member(info):
                raise UserError(f"{archive}: refusing unsafe member {info.filename!r} (absolute path, '..' or link)")
        total = sum(i.file_size for i in infos)
        if total > MAX_ARCHIVE_BYTES:
            raise UserError(f"{archive}: would expand to {total / 2**30:.1f} GiB "
                            f"(limit {MAX_ARCHIVE_BYTES / 2**30:.0f} GiB); refusing")
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.extract")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for info in infos:
                target = tmp.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as r, open(target, "wb") as w:
                    shutil.copyfileobj(r, w, 1 << 20)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"{archive}: extraction failed ({e}); delete it and fetch again") from None
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def _archive_root(folder: Path) -> Path:
    """GitHub archives wrap everything in one REPO-COMMIT/ folder; step into it."""
    entries = [p for p in folder.iterdir() if not _hidden(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def fetch_source(src: PhotoSource, cache: Path) -> tuple[Path, str]:
    """Download (or reuse from cache) and extract one source; returns its class-folder root and sha256."""
    cache = Path(cache)
    stem = f"{src.name}-{src.commit[:12]}"
    archive = cache / f"{stem}.zip"
    sha = None
    if archive.is_file():
        sha = _sha256_file(archive)
        if src.sha256 and sha != src.sha256:
            sha = None  # stale or corrupt cache: fetch again
    if sha is None:
        sha = download(src.archive_url, archive, src.sha256, label=src.name)
    folder = cache / stem
    marker = folder / ".extracted-sha256"
    if not (marker.is_file() and marker.read_text().strip() == sha):
        extract_zip(archive, folder)
        marker.write_text(sha + "\n")
    root = _archive_root(folder) / src.subdir if src.subdir else _archive_root(folder)
    if not root.is_dir():
        raise UserError(f"{src.name}: folder {src.subdir!r} is not in the archive from {src.archive_url}; "
                        f"fix subdir in the sources file")
    return root, sha


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "image2circuit" / "photo_sources"


def fetch_photos(out: Path, sources_file: Path = DEFAULT_SOURCES, cache: Path | None = None, *, yes: bool = False,
                 confirm=None, **kw) -> dict:
    """Download every listed source, map its folders to classes and import them all into out."""
    sources = load_sources(sources_file)
    cache = Path(cache) if cache else default_cache()
    unlicensed = [s for s in sources if not s.licence]
    for s in sources:
        typer.echo(f"{s.name}: {s.repo}@{s.commit[:12]} - licence: {s.licence or 'none stated'}"
                   + (f" ({s.note})" if s.note else ""), err=True)
    if unlicensed and not yes:
        question = (f"{len(unlicensed)} source(s) state no licence; use them only for training and evaluation "
                    f"here and never redistribute them. Download?")
        if confirm is None and sys.stdin.isatty():
            confirm = lambda q: typer.confirm(q, default=False)  # noqa: E731
        if confirm is None or not confirm(question):
            raise UserError("sources without a licence need consent: rerun with --yes after reading "
                            "the licence notes above")
    _prepare_out(out)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot use cache folder {cache}: {e.strerror or e}; pass --cache DIR") from None
    scan = Scan()
    fetched = []
    for s in sources:
        root, sha = fetch_source(s, cache)
        scan.extend(scan_tree(root, s.class_map, prefix=f"{s.name}:{s.subdir.strip('/') + '/' if s.subdir else ''}"))
        fetched.append({"name": s.name, "repo": s.repo, "commit": s.commit, "url": s.archive_url, "sha256": sha,
                        "licence": s.licence})
    if not scan.folders:
        raise UserError(f"no class folders recognised in the fetched sources; "
                        f"check subdir and class_map in {sources_file}")
    return import_scan(scan, out, extra_report={"sources": fetched}, **kw)


# --- CLI -------------------------------------------------------------------------------------------

photos_app = typer.Typer(help="Import photos of real components into a dataset (the photo domain).",
                         no_args_is_help=True)


@photos_app.command("import")
def import_cmd(
    src: Path = typer.Argument(..., metavar="DIR", help="Folder of class folders: DIR/<class>/<images>."),
    out: Path = typer.Option(..., "--out", help="Dataset folder, e.g. datasets/NAME (other domains are kept)."),
    seed: int = typer.Option(0, help="Seed of the deterministic split."),
    min_side: int = typer.Option(32, help="Skip images whose shorter side is below this many pixels."),
    max_side: int = typer.Option(256, help="Shrink so the longer side is at most this many pixels."),
    val: float = typer.Option(0.1, help="Fraction of each class for validation."),
    test: float = typer.Option(0.2, help="Fraction of each class for test."),
    dup_distance: int = typer.Option(DUP_DISTANCE,
                                     help="Near-duplicates: pHashes differ in at most this many of 64 bits..."),
    dup_min_corr: float = typer.Option(DUP_MIN_CORR,
                                       help="...and their 16x16 thumbnails correlate at least this much."),
) -> None:
    """Validate, normalise, deduplicate and split a folder of labelled photos into DATASET/photo."""
    t0 = time.perf_counter()
    report = import_photos(src, out, seed=seed, min_side=min_side, max_side=max_side, val=val, test=test,
                           dup_distance=dup_distance, dup_min_corr=dup_min_corr)
    print_summary(report, time.perf_counter() - t0)
    typer.echo(f"wrote {Path(out) / 'manifest.csv'} and {Path(out) / REPORT}")


@photos_app.command("fetch")
def fetch_cmd(
    out: Path = typer.Option(DEFAULT_FETCH_OUT, "--out", help="Dataset folder to import into."),
    sources: Path = typer.Option(DEFAULT_SOURCES, "--sources", help="Versioned JSON list of photo sources.",
                                 show_default="datasets/photo_sources.json in the checkout"),
    cache: Path = typer.Option(None, "--cache",
                               help="Where archives are kept (default ~/.cache/image2circuit/photo_sources)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Accept sources that state no licence without asking."),
    seed: int = typer.Option(0, help="Seed of the deterministic split."),
    min_side: int = typer.Option(32, help="Skip images whose shorter side is below this many pixels."),
    max_side: int = typer.Option(256, help="Shrink so the longer side is at most this many pixels."),
    val: float = typer.Option(0.1, help="Fraction of each class for validation."),
    test: float = typer.Option(0.2, help="Fraction of each class for test."),
) -> None:
    """Download the public photo collections in the sources file and import them."""
    t0 = time.perf_counter()
    report = fetch_photos(out, sources, cache, yes=yes, seed=seed, min_side=min_side, max_side=max_side,
                          val=val, test=test)
    print_summary(report, time.perf_counter() - t0)
    typer.echo(f"wrote {Path(out) / 'manifest.csv'} and {Path(out) / REPORT}")


def register(app: typer.Typer) -> None:
    """Add the `photos` command group to the image2circuit CLI."""
    app.add_typer(photos_app, name="photos")
