"""Write a generated schematic dataset: plan -> render+augment in worker processes -> manifest and card.

Every image's randomness comes from its own seed (dataset seed, class, index), so the bytes do not
depend on the worker count or on the order work finishes in. A journal of finished images lets an
interrupted run resume; images are written to a temporary name and renamed.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import CLASSES
from .catalogue import check_catalogue, recipes
from .errors import UserError
from .manifest import CARD, atomic_write_bytes, merge_domain, split_for, write_card
from .render import StyleMix, render

GENERATOR_VERSION = 5  # 5: simple MOSFETs with a wide gate gap, legs at the channel ends, short gate leads
DOMAIN = "schematic"
JOURNAL = ".schematic-journal.jsonl"


def image_seed(seed: int, cls: str, index: int) -> list[int]:
    """The seed of one image: stable across runs, workers and class subsets."""
    return [seed, CLASSES.index(cls), index]


def make_image(cls: str, seed: int, index: int, size: int, mix: StyleMix | None = None,
               realism: bool = True, recipe: str | None = None) -> tuple[np.ndarray, dict]:
    """Render one symbol and pass it through the realism mix; deterministic for (seed, cls, index)."""
    rng = np.random.default_rng(image_seed(seed, cls, index))
    r = render(cls, rng, size, mix, recipe)
    image, params = r.image, dict(r.params)
    if realism:
        from .augment import realistic

        image, aug = realistic(image, rng, mask=r.mask)
        params["mix"] = aug
    return image, params


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _work(task: tuple) -> dict:
    """Worker: render, augment and write one image; return its manifest row."""
    out, cls, seed, index, size, mix, realism, split_seed = task
    rel = f"{DOMAIN}/{cls}/{cls}_{index:05d}.png"
    image, params = make_image(cls, seed, index, size, StyleMix(**mix), realism)
    atomic_write_bytes(Path(out) / rel, encode_png(image))
    return {"file": rel, "label": cls, "domain": DOMAIN, "split": split_for(f"{cls}/{index}", split_seed),
            "recipe": params.get("recipe", ""), "seed": json.dumps(image_seed(seed, cls, index)),
            "params": json.dumps(params, sort_keys=True, default=str)}


def _read_journal(path: Path) -> dict[str, dict]:
    """Rows already finished by an earlier run; a torn last line (killed mid-write) is ignored."""
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["file"]] = row
    return done


def check_output(out: Path, config: dict) -> None:
    """Refuse an output folder that holds a different dataset or cannot be written."""
    card = out / CARD
    if card.is_file():
        try:
            old = json.loads(card.read_text()).get("generator")
        except json.JSONDecodeError:
            raise UserError(f"{card} is not valid JSON; delete {out} or choose another --out")
        if old is not None and old != config:
            diff = ", ".join(f"{k} {old.get(k)!r} vs {v!r}" for k, v in config.items() if old.get(k) != v)
            raise UserError(f"{out} holds a different dataset ({diff}); choose another --out or delete it")
    elif out.is_dir() and any(p.name not in (JOURNAL, DOMAIN, "photo", "manifest.csv", "photo_import.json")
                              for p in out.iterdir()):
        raise UserError(f"{out} is not empty and is not an image2circuit dataset; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to {out}: {e.strerror}; choose a writable --out")


def generate(out: Path, per_class: int, size: int = 128, seed: int = 0, classes: Iterable[str] | None = None,
             workers: int | None = None, mix: StyleMix | None = None, realism: bool = True,
             progress: bool = True) -> dict:
    """Generate (or resume) the schematic domain of a dataset; returns the dataset card."""
    classes = list(classes or CLASSES)
    for c in classes:
        recipes(c)  # unknown class -> UserError
    if per_class <= 0:
        raise UserError(f"--per-class must be positive, got {per_class}")
    if not 16 <= size <= 1024:
        raise UserError(f"--size must be between 16 and 1024 pixels, got {size}")
    check_catalogue()
    mix = mix or StyleMix()
    config = {"version": GENERATOR_VERSION, "per_class": per_class, "size": size, "seed": seed,
              "classes": classes, "mix": asdict(mix), "realism": realism}
    out = Path(out)
    check_output(out, config)
    for c in classes:
        (out / DOMAIN / c).mkdir(parents=True, exist_ok=True)
    # Write the card first so a resumed run is recognised as the same dataset.
    card_path = out / CARD
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    card["generator"] = config
    atomic_write_bytes(card_path, (json.dumps(card, indent=2, sort_keys=True) + "\n").encode())

    journal_path = out / JOURNAL
    done = {f: r for f, r in _read_journal(journal_path).items() if (out / f).is_file()}
    tasks = [(str(out), c, seed, i, size, asdict(mix), realism, seed)
             for c in classes for i in range(per_class)
             if f"{DOMAIN}/{c}/{c}_{i:05d}.png" not in done]
    workers = max(1, workers or os.cpu_count() or 1)
    start = time.perf_counter()
    with open(journal_path, "a") as journal:
        bar = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) if progress else None
        with bar or nullcontext():
            job = bar.add_task("gen", total=len(tasks) + len(done), completed=len(done)) if bar else None
            for row in _run(tasks, workers):
                journal.write(json.dumps(row) + "\n")
                journal.flush()  # a finished image survives an interruption
                done[row["file"]] = row
                if bar:
                    bar.advance(job)
    seconds = time.perf_counter() - start
    merge_domain(out, DOMAIN, list(done.values()))
    journal_path.unlink(missing_ok=True)
    return write_card(out, {"generator": config, "versions": package_versions(),
                            "generation_seconds": round(seconds, 1),
                            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _run(tasks: list, workers: int):
    """Yield finished rows; one process is used in-line, more through a process pool."""
    if workers == 1 or len(tasks) < 2:
        for t in tasks:
            yield _work(t)
        return
    # fork starts workers in milliseconds; spawn (slow start) only once TensorFlow's threads exist.
    method = "spawn" if "tensorflow" in sys.modules else "fork"
    with get_context(method).Pool(workers) as pool:
        yield from pool.imap_unordered(_work, tasks, chunksize=8)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("schemdraw", "albumentations", "resvg-py", "numpy", "pillow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
