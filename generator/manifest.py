"""The dataset manifest: one CSV row per image, the single source the trainer reads.

Columns: file (relative to the dataset folder), label, domain (schematic|photo|...),
split (train|val|test|skipped), source (original path for imported images), recipe,
seed, note (skip reason or remark) and params (JSON of the knobs used).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from . import CLASSES
from .errors import UserError

COLUMNS = ("file", "label", "domain", "split", "source", "recipe", "seed", "note", "params")
SPLITS = ("train", "val", "test")
MANIFEST = "manifest.csv"
CARD = "dataset.json"


def split_for(key: str, seed: int, fractions=(0.8, 0.1, 0.1)) -> str:
    """Deterministic split from a stable hash of (seed, key): independent of order and workers."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2**64
    if h < fractions[0]:
        return "train"
    if h < fractions[0] + fractions[1]:
        return "val"
    return "test"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name beside the target, then rename: never a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_rows(path: Path, rows: Iterable[dict]) -> None:
    """Write manifest rows atomically, sorted by file so the bytes are reproducible."""
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r["file"]):
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    atomic_write_bytes(Path(path), buf.getvalue().encode())


def read_rows(path: Path, *, check_labels: bool = True) -> list[dict]:
    """Read a manifest; unknown labels or missing columns are a UserError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no manifest at {path}: build the dataset first (make dataset / image2circuit generate)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("file", "label", "domain", "split") if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: manifest lacks column(s) {', '.join(missing)}; regenerate the dataset")
        rows = list(reader)
    if check_labels:
        for i, r in enumerate(rows, start=2):
            if r["split"] != "skipped" and r["label"] not in CLASSES:
                raise UserError(
                    f"{path}:{i}: unknown class {r['label']!r}; known classes: {', '.join(CLASSES)}"
                )
    return rows


def merge_domain(dataset: Path, domain: str, rows: list[dict]) -> None:
    """Replace one domain's rows in the dataset manifest, keeping the other domains' rows."""
    path = Path(dataset) / MANIFEST
    old = read_rows(path, check_labels=False) if path.is_file() else []
    write_rows(path, [r for r in old if r["domain"] != domain] + rows)
    write_card(dataset)


def write_card(dataset: Path, extra: dict | None = None) -> dict:
    """dataset.json: counts per domain x class x split, plus whatever the builder adds (seed, versions)."""
    dataset = Path(dataset)
    rows = read_rows(dataset / MANIFEST, check_labels=False)
    card_path = dataset / CARD
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    counts: dict = {}
    for r in rows:
        d = counts.setdefault(r["domain"], {})
        c = d.setdefault(r["label"], {})
        c[r["split"]] = c.get(r["split"], 0) + 1
    card["counts"] = counts
    card["images"] = sum(1 for r in rows if r["split"] != "skipped")
    if extra:
        card.update(extra)
    atomic_write_bytes(card_path, (json.dumps(card, indent=2, sort_keys=True) + "\n").encode())
    return card
