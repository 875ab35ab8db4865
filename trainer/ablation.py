"""`image2circuit bench-realism`: which realism features of the generator make symbols transfer to real drawings.

For each configuration (all features, then one feature switched off at a time, then plain
schemdraw as the floor) a small schematic-only dataset is generated, a default-like model is
trained on it (EfficientNet-Lite0, frozen ImageNet features at a fixed size, a dropout + dense
head, as `train --backbone efficientnet_lite0` does) and scored on the evaluation-only real
folders ../shared/data/handdrawn and ../shared/data/cad, and on the generated test split of the
"all features" dataset (the same images for every row, so the rows are comparable). Nothing real
is ever trained on.

Why it is cheap enough for two CPU cores: the backbone is frozen, so the features of the real
images do not depend on the training data and are computed once per run (and cached on disk for
reruns); generated datasets and their features are cached by a hash of their configuration, so
only the small head trains per configuration. Caches live in the user cache folder
(~/.cache/image2circuit/bench-realism, or --cache), never in the repository: real-image features
are derived from images that must not be copied into it.

ablation.json fields (runs/bench-realism-YYYYMMDD-HHMM/):
  version, created, command, quick, wall_s, settings {per_class, size, epochs, repeats, feature_passes,
  seed, eval_cap, batch_size, learning_rate, dropout, patience, backbone, workers}, classes,
  eval_sets {handdrawn|cad: {status "ok" | "n/a (folder missing)", folder, n, per_class_n, left_out,
             from_cache, seconds}, schematic_test: {status, source, n, per_class_n}},
  real_feature_extractions (how many real folders had their features computed in this run),
  configs [{name, description, off, mix, realism, dataset, dataset_from_cache, train_images,
            val_images, epochs_run [per repeat], seconds {generate, features, train},
            results {handdrawn|cad|schematic_test: null (n/a) | {balanced_accuracy (mean over repeats),
            balanced_accuracy_std, balanced_accuracy_runs, accuracy, recall {class: mean recall},
            delta_vs_all}}}],
  not_ablated [{feature, reason}], notes [str]
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Callable, Optional, Sequence

import numpy as np
import typer

from generator import CLASSES
from generator.errors import UserError
from generator.manifest import CARD, MANIFEST, atomic_write_bytes

VERSION = 1
FEATURE_VERSION = 2  # bump when the way features are computed changes (invalidates the caches; 2: content crop)
REAL_SETS = ("handdrawn", "cad")
TEST_SET = "schematic_test"
MISSING = "n/a (folder missing)"
DEFAULT_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BACKBONE = "efficientnet_lite0"

# name -> (description, what is off, overrides of StyleMix fields and/or "realism")
_EVERYTHING_OFF = {"hand": 0.0, "wires": 0.0, "labels": 0.0, "neighbour": 0.0, "lowres": 0.0,
                   "axis_aligned": 1.0, "fill_colour": 0.0, "realism": False}
ABLATIONS: dict[str, tuple[str, str, dict]] = {
    "all": ("all features (generator defaults)", "-", {}),
    "no-hand": ("hand-drawn style off", "hand-drawn wobble (hand=0)", {"hand": 0.0}),
    "no-capture": ("capture mix off", "paper/scan/photo capture (realism=False)", {"realism": False}),
    "no-wires": ("wires off", "wires from the terminals (wires=0)", {"wires": 0.0}),
    "no-labels": ("labels off", "designator/value text (labels=0)", {"labels": 0.0}),
    "no-neighbour": ("neighbour fragments off", "fragments of other symbols (neighbour=0)", {"neighbour": 0.0}),
    "no-lowres": ("low-res rendering off", "small renders scaled up (lowres=0)", {"lowres": 0.0}),
    "no-rotation": ("any-angle rotation off", "rotations off the 90-degree grid (axis_aligned=1)",
                    {"axis_aligned": 1.0}),
    "no-fill": ("pale fills off", "pale fill of closed shapes (fill_colour=0)", {"fill_colour": 0.0}),
    "plain": ("plain schemdraw (floor)", "all of the above: hand, capture, wires, labels, neighbour, lowres, "
                                         "rotation, fills", _EVERYTHING_OFF),
}
DEFAULT_CONFIGS = ("all", "no-hand", "no-capture", "no-wires", "no-labels", "no-neighbour", "no-lowres",
                   "no-rotation", "plain")
QUICK_CONFIGS = ("all", "plain")
NOT_ABLATED = [
    {"feature": "tight crops", "reason": "not a StyleMix knob: render.py draws the symbol's fill of the frame "
                                         "from a fixed 0.45-1.02 range, so it cannot be switched off without "
                                         "editing the renderer"},
    {"feature": "bold CAD lines", "reason": "not a StyleMix knob: render.py draws CAD line widths log-uniformly "
                                            "from 0.7% to 5.5% of the frame"},
]


@dataclass(frozen=True)
class Settings:
    """Everything that changes the figures; defaults sized for about 15 minutes on two busy CPU cores."""

    per_class: int = 300
    size: int = 128
    epochs: int = 30
    repeats: int = 3  # head trainings with different seeds per configuration (same features)
    feature_passes: int = 2  # like `train`: one clean + one augmented pass over the training images
    seed: int = 0
    eval_cap: int = 0  # images per class from each real folder; 0 = all
    batch_size: int = 32
    learning_rate: float = 1e-3
    dropout: float = 0.3
    patience: int = 5
    workers: int | None = None  # generator processes (None: all cores)


QUICK = Settings(per_class=8, size=64, epochs=3, repeats=1, feature_passes=1, eval_cap=3)


def check(configs: Sequence[str], s: Settings) -> None:
    """Bad options -> one UserError line naming the option and what to do."""
    unknown = [c for c in configs if c not in ABLATIONS]
    if unknown:
        raise UserError(f"unknown --configs {', '.join(unknown)}; choose from {', '.join(ABLATIONS)}")
    if not configs:
        raise UserError(f"--configs is empty; give some of {', '.join(ABLATIONS)}")
    for opt, v, lo in (("--per-class", s.per_class, 2), ("--epochs", s.epochs, 1), ("--repeats", s.repeats, 1),
                       ("--feature-passes", s.feature_passes, 1), ("--eval-cap", s.eval_cap, 0)):
        if v < lo:
            raise UserError(f"{opt} {v} must be at least {lo}")
    if not 32 <= s.size <= 512:
        raise UserError(f"--size {s.size} must be between 32 and 512 pixels")


def mix_of(name: str):
    """(StyleMix, realism) of one configuration."""
    from generator.render import StyleMix

    over = dict(ABLATIONS[name][2])
    realism = bool(over.pop("realism", True))
    return replace(StyleMix(), **over), realism


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def default_cache() -> Path:
    from .backbone import cache_dir

    return cache_dir() / "bench-realism"


def backbone_id() -> str:
    from . import backbone as bb

    return f"{BACKBONE}-imagenet-{bb.WEIGHTS_SHA256[:12]}-v{bb.CACHE_VERSION}-f{FEATURE_VERSION}"


# --------------------------------------------------------------------------- generated datasets


def generator_config(name: str, s: Settings) -> dict:
    """The generator's own config dict (as generate() writes it to dataset.json) for one configuration."""
    from generator.generate import GENERATOR_VERSION

    mix, realism = mix_of(name)
    return {"version": GENERATOR_VERSION, "per_class": s.per_class, "size": s.size, "seed": s.seed,
            "classes": list(CLASSES), "mix": asdict(mix), "realism": realism}


def ensure_dataset(name: str, s: Settings, cache: Path, console) -> tuple[Path, bool]:
    """The configuration's dataset folder, generated unless an identical finished one is cached.

    Returns (folder, from_cache). The folder name carries a hash of the generator config, so a
    changed knob or size never reuses a stale dataset; an interrupted generation resumes."""
    from generator.generate import JOURNAL, generate

    config = generator_config(name, s)
    folder = cache / "datasets" / f"{name}-{_digest(config)}"
    card = folder / CARD
    if card.is_file() and (folder / MANIFEST).is_file() and not (folder / JOURNAL).exists():
        try:
            done = json.loads(card.read_text()).get("generator") == config
        except json.JSONDecodeError:
            done = False
        if done:
            return folder, True
    mix, realism = mix_of(name)
    console.print(f"  generating {s.per_class} x {len(CLASSES)} images for [bold]{name}[/] into {folder}")
    generate(folder, per_class=s.per_class, size=s.size, seed=s.seed, classes=CLASSES, workers=s.workers,
             mix=mix, realism=realism, progress=console.is_terminal)
    return folder, False


# --------------------------------------------------------------------------- features


class Backbone:
    """The frozen EfficientNet-Lite0 (built once) and the trainer's head, cloned fresh per training."""

    def __init__(self, s: Settings):
        from . import model as M

        parts = M.pretrained(len(CLASSES), s.size, s.dropout, trainable_blocks=0, weights="imagenet", backbone=BACKBONE)
        self.frozen, self.head = parts.frozen, parts.head
        self.settings = s

    def features(self, split, passes: int, augment, console, what: str) -> np.ndarray:
        from . import fit

        return fit.extract_features(self.frozen, split, self.settings.size, 64, passes, augment, console, what)


def _load_npz(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        path.unlink(missing_ok=True)
        return None


def _save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _cap(split, cap: int):
    """At most `cap` images per class, spread evenly over each class's sorted files (0 = all)."""
    if cap <= 0:
        return split
    keep = np.zeros(len(split), bool)
    for c in np.unique(split.labels):
        idx = np.flatnonzero(split.labels == c)
        if len(idx) > cap:
            idx = idx[np.linspace(0, len(idx) - 1, cap).round().astype(int)]
        keep[idx] = True
    return split.subset(keep)


def real_features(net: Backbone, folder: Path, name: str, s: Settings, cache: Path, console) -> dict:
    """Features of one evaluation-only folder, computed once and cached by (files, size, backbone, cap).

    Returns {features, labels, n, per_class_n, left_out, from_cache, seconds}."""
    from . import data as D

    t0 = time.perf_counter()
    split, left_out = D.folder_split(folder, name, list(CLASSES))
    split = _cap(split, s.eval_cap)
    stamp = []
    for p in split.paths:
        st = os.stat(p)
        stamp.append((os.path.relpath(p, folder), st.st_size, st.st_mtime_ns))
    key = _digest([str(folder.resolve()), stamp, s.size, s.eval_cap, backbone_id()])
    path = cache / "real-features" / f"{name}-{key}.npz"
    got = _load_npz(path)
    from_cache = got is not None and len(got["labels"]) == len(split)
    if from_cache:
        feats = got["features"]
    else:
        console.print(f"  computing backbone features of {len(split)} {name} images (once for all configurations)")
        feats = net.features(split, 1, None, console, f"{name} features")
        _save_npz(path, features=feats, labels=split.labels)
    counts = np.bincount(split.labels, minlength=len(CLASSES))
    return {"features": feats, "labels": split.labels, "n": len(split),
            "per_class_n": {c: int(counts[i]) for i, c in enumerate(CLASSES) if counts[i]},
            "left_out": {k: v for k, v in left_out.items() if v}, "from_cache": from_cache,
            "seconds": round(time.perf_counter() - t0, 1)}


def split_features(net: Backbone, data: Path, split_name: str, s: Settings, console, passes: int = 1) -> dict:
    """Features of one split of a generated dataset, cached beside it; labels index CLASSES."""
    from . import data as D
    from .fit import _manifest_digest

    rows = D.dataset_rows(data, ["schematic"])
    split = D.split_of(data, rows, split_name, list(CLASSES))
    key = _digest([_manifest_digest(data), split_name, passes, s.size, s.seed, backbone_id()])
    path = Path(data) / "features" / f"{split_name}-{key}.npz"
    got = _load_npz(path)
    if got is not None:
        return {"features": got["features"], "labels": got["labels"], "n": len(split), "from_cache": True}
    augment = D.augmenter(1.0, s.seed) if passes > 1 else None
    feats = (net.features(split, passes, augment, console, f"{data.name} {split_name} features")
             if len(split) else np.zeros((0, net.frozen.output.shape[-1]), np.float32))
    labels = np.tile(split.labels, passes)
    _save_npz(path, features=feats, labels=labels)
    return {"features": feats, "labels": labels, "n": len(split), "from_cache": False}


# --------------------------------------------------------------------------- training and scoring


def train_head(net: Backbone, train: dict, val: dict, s: Settings, seed: int):
    """A fresh copy of the trainer's head (dropout + dense) trained on cached features.

    Class-balanced sample weights and early stopping on val_loss with the best epoch restored,
    as `train` does; at most s.epochs epochs. Returns (head, epochs run)."""
    import keras

    from . import data as D

    def weights(d):
        return D.sample_weights(D.Split(labels=d["labels"], paths=[""] * len(d["labels"])), len(CLASSES), "class")

    keras.utils.set_random_seed(seed)
    head = keras.models.clone_model(net.head)
    head.compile(optimizer=keras.optimizers.Adam(s.learning_rate), loss=keras.losses.SparseCategoricalCrossentropy(),
                 metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    kwargs = {}
    if len(val["labels"]):
        kwargs["validation_data"] = (val["features"], val["labels"], weights(val))
        kwargs["callbacks"] = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=s.patience,
                                                             restore_best_weights=True)]
    history = head.fit(train["features"], train["labels"], sample_weight=weights(train), batch_size=s.batch_size,
                       epochs=s.epochs, shuffle=True, verbose=0, **kwargs)
    return head, len(history.history["loss"])


def score(head, feats: dict) -> dict:
    """Balanced accuracy, accuracy and per-class recall of one trained head on one feature set."""
    from .evaluate import confusion_matrix, scores

    # a direct call: one small matmul, and no tf.function retraced for every feature set's shape
    probs = np.asarray(head(feats["features"].astype(np.float32), training=False))
    m = scores(confusion_matrix(feats["labels"], probs.argmax(1), len(CLASSES)), list(CLASSES))
    return {"balanced_accuracy": m["balanced_accuracy"], "accuracy": m["accuracy"],
            "recall": {c: v["recall"] for c, v in m["classes"].items() if v["recall"] is not None}}


def _mean_runs(runs: list[dict]) -> dict:
    ba = [r["balanced_accuracy"] for r in runs]
    return {"balanced_accuracy": float(np.mean(ba)), "balanced_accuracy_std": float(np.std(ba)),
            "balanced_accuracy_runs": [round(x, 4) for x in ba],
            "accuracy": float(np.mean([r["accuracy"] for r in runs])),
            "recall": {c: float(np.mean([r["recall"][c] for r in runs])) for c in runs[0]["recall"]}}


# --------------------------------------------------------------------------- report


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _cell(res: dict | None, repeats: int) -> str:
    if res is None:
        return MISSING
    if res["balanced_accuracy"] is None:
        return "–"
    out = _pct(res["balanced_accuracy"])
    if repeats > 1:
        out += f" ± {100 * res['balanced_accuracy_std']:.1f}"
    return out


def _delta(res: dict | None) -> str:
    if res is None or res.get("delta_vs_all") is None:
        return ""
    return f"{100 * res['delta_vs_all']:+.1f}"


SETS = REAL_SETS + (TEST_SET,)
TEXT_COLUMNS = ("configuration", "switched off")


def tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows): balanced accuracy per configuration, then per-class recall per real folder."""
    reps = report["settings"]["repeats"]
    has_all = any(c["name"] == "all" for c in report["configs"])
    header = ["configuration", "switched off"]
    for name in SETS:
        header += [name.replace("_", " ")] + (["Δ vs all"] if has_all else [])
    rows = []
    for c in report["configs"]:
        row = [c["name"], c["off"]]
        for name in SETS:
            row += [_cell(c["results"][name], reps)] + ([_delta(c["results"][name])] if has_all else [])
        rows.append(row)
    sd = f" (mean ± sd over {reps} head trainings)" if reps > 1 else ""
    out = [(f"Balanced accuracy{sd}", header, rows)]
    for name in REAL_SETS:
        ev = report["eval_sets"][name]
        if ev["status"] != "ok":
            continue
        classes = [c for c in report["classes"] if c in ev["per_class_n"]]
        out.append((f"Per-class recall on {name} (n per class: "
                    + ", ".join(f"{c} {ev['per_class_n'][c]}" for c in classes) + ")",
                    ["configuration"] + classes,
                    [[c["name"]] + [_pct(c["results"][name]["recall"].get(k)) for k in classes]
                     for c in report["configs"]]))
    return out


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = ["# Realism ablation (`bench-realism`)", "", f"Command: `{report['command']}`", "",
             f"Created {report['created']}; wall time {report['wall_s']:.0f} s. Each configuration: "
             f"{s['per_class']} generated schematic images per class at {s['size']} px (seed {s['seed']}), "
             f"EfficientNet-Lite0 frozen ImageNet features ({s['feature_passes']} feature pass(es)), "
             f"dropout {s['dropout']} + dense head, at most {s['epochs']} epochs with early stopping on the "
             f"generated val split, {s['repeats']} head training(s). Evaluation-only sets, never trained on: "
             + "; ".join(f"{n}: " + (f"{e['n']} images from {e.get('folder')}" if e['status'] == 'ok' else e['status'])
                         for n, e in report["eval_sets"].items() if n in REAL_SETS)
             + f"; schematic test: {report['eval_sets'][TEST_SET]['source']}.", ""]
    for title, header, rows in tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "| " + " | ".join("---" if h in TEXT_COLUMNS else "---:" for h in header) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    lines += ["## Not ablated", ""] + [f"- {n['feature']}: {n['reason']}" for n in report["not_ablated"]] + [""]
    lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)


def print_tables(report: dict, console) -> None:
    from rich.console import Console
    from rich.table import Table

    if not console.is_terminal:  # a log file or pipe: do not fold the tables into 80 columns
        console = Console(file=console.file, width=200)
    for title, header, rows in tables(report):
        t = Table(title=title, title_justify="left")
        for h in header:
            t.add_column(h, justify="left" if h in TEXT_COLUMNS else "right", overflow="fold")
        for r in rows:
            t.add_row(*r)
        console.print(t)


def out_dir(runs_dir: Path) -> Path:
    """runs/bench-realism-YYYYMMDD-HHMM (the bench's naming, so reports sort together)."""
    from .bench import out_dir as bench_out_dir

    return bench_out_dir(runs_dir, "bench-realism")


def command_line(configs: Sequence[str], s: Settings, real: Path | None, quick: bool) -> str:
    """An equivalent command that reproduces the figures (every option that changes them, spelled out)."""
    parts = ["image2circuit", "bench-realism"] + (["--quick"] if quick else [])
    parts += ["--configs", ",".join(configs), "--per-class", str(s.per_class), "--size", str(s.size),
              "--epochs", str(s.epochs), "--repeats", str(s.repeats), "--feature-passes", str(s.feature_passes),
              "--eval-cap", str(s.eval_cap), "--seed", str(s.seed)]
    if real is not None:
        parts += ["--real", str(real)]
    return shlex.join(parts)


# --------------------------------------------------------------------------- orchestration


def run_ablation(configs: Sequence[str] | None = None, settings: Settings = Settings(), *, real: Path | None = None,
                 cache: Path | None = None, runs_dir: Path = Path("runs"), quick: bool = False,
                 console=None, on_config: Callable[[dict], None] | None = None) -> tuple[Path, dict]:
    """Run the ablation and write ablation.json / ablation.md; returns (folder, report).

    real: folder holding handdrawn/ and cad/ (None: ../shared/data beside the checkout, where a
    missing folder makes those columns "n/a (folder missing)"; an explicit folder must exist)."""
    from rich.console import Console

    from .commands import quiet_tensorflow

    console = console or Console()
    t_start = time.time()
    s = settings
    configs = list(dict.fromkeys(configs or (QUICK_CONFIGS if quick else DEFAULT_CONFIGS)))
    check(configs, s)
    if real is not None and not Path(real).is_dir():
        raise UserError(f"--real {real}: no such folder; give the folder that holds handdrawn/ and cad/")
    real_root = Path(real) if real is not None else DEFAULT_REAL
    cache = Path(cache) if cache is not None else default_cache()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the cache folder {cache} ({e.strerror}); pass a writable --cache")
    command = command_line(configs, s, real, quick)
    folder = out_dir(runs_dir)
    notes = []
    console.print(f"[bold]bench-realism[/]: {len(configs)} configuration(s), {s.per_class} images/class at "
                  f"{s.size} px; cache {cache}")

    quiet_tensorflow()
    net = Backbone(s)

    eval_sets: dict[str, dict] = {}
    real_feats: dict[str, dict] = {}
    for name in REAL_SETS:
        path = real_root / name
        if not path.is_dir():
            eval_sets[name] = {"status": MISSING, "folder": str(path)}
            notes.append(f"{name}: {path} is missing, so its column is {MISSING}; the other columns still ran")
            console.print(f"[yellow]{name}: {path} is missing: column reported as {MISSING}[/]")
            continue
        got = real_features(net, path, name, s, cache, console)
        real_feats[name] = got
        eval_sets[name] = {"status": "ok", "folder": str(path),
                           **{k: v for k, v in got.items() if k not in ("features", "labels")}}
    if not real_feats:
        console.print("[bold yellow]no real evaluation folder found: only the schematic test column is measured[/]")

    # The shared schematic test set: the test split of the "all features" dataset.
    all_data, _ = ensure_dataset("all", s, cache, console)
    test = split_features(net, all_data, "test", s, console)
    counts = np.bincount(test["labels"], minlength=len(CLASSES))
    eval_sets[TEST_SET] = {"status": "ok" if test["n"] else "n/a (empty test split)",
                           "source": f"test split of the 'all' dataset ({test['n']} images, {all_data})",
                           "n": test["n"], "per_class_n": {c: int(counts[i]) for i, c in enumerate(CLASSES) if counts[i]}}
    real_feats[TEST_SET] = test if test["n"] else None

    rows: list[dict] = []
    for name in configs:
        desc, off, _ = ABLATIONS[name]
        mix, realism = mix_of(name)
        console.print(f"[bold]{name}[/] ({desc})")
        t0 = time.perf_counter()
        data, from_cache = ensure_dataset(name, s, cache, console)
        t1 = time.perf_counter()
        train = split_features(net, data, "train", s, console, passes=s.feature_passes)
        val = split_features(net, data, "val", s, console)
        t2 = time.perf_counter()
        runs: dict[str, list[dict]] = {k: [] for k in SETS}
        epochs_run = []
        for r in range(s.repeats):
            head, n_epochs = train_head(net, train, val, s, seed=s.seed + r)
            epochs_run.append(n_epochs)
            for k in SETS:
                if real_feats.get(k) is not None:
                    runs[k].append(score(head, real_feats[k]))
        results = {k: (_mean_runs(v) if v else None) for k, v in runs.items()}
        row = {"name": name, "description": desc, "off": off, "mix": asdict(mix), "realism": realism,
               "dataset": str(data), "dataset_from_cache": from_cache, "train_images": train["n"],
               "val_images": val["n"], "epochs_run": epochs_run,
               "seconds": {"generate": round(t1 - t0, 1), "features": round(t2 - t1, 1),
                           "train": round(time.perf_counter() - t2, 1)},
               "results": results}
        rows.append(row)
        console.print("  " + ", ".join(f"{k}: {_cell(results[k], s.repeats)}" for k in SETS)
                      + f"  ({row['seconds']['generate']:.0f} s data, {row['seconds']['features']:.0f} s features, "
                        f"{row['seconds']['train']:.0f} s training)", soft_wrap=True)
        if on_config:
            on_config(row)

    base = next((r for r in rows if r["name"] == "all"), None)
    for r in rows:
        for k in SETS:
            res = r["results"][k]
            if res is not None:
                ref = base["results"][k] if base else None
                res["delta_vs_all"] = (res["balanced_accuracy"] - ref["balanced_accuracy"]
                                       if ref and res["balanced_accuracy"] is not None
                                       and ref["balanced_accuracy"] is not None else None)
    notes += [
        "classes: the head predicts all generated classes; balanced accuracy is the mean recall over the classes "
        "a set has images of (handdrawn has no integrated_circuit or transformer, cad no transformer)",
        "the schematic test column is the same images for every row (the 'all' dataset's test split); "
        "images are split by (class, index), so no row trained on an index of that test split",
        "± is the spread over head trainings on the same generated data (seeds), not over regenerated data: "
        "differences of a few points between rows can still be noise from the data draw",
    ]
    if not base:
        notes.append("the 'all' configuration was not run: the Δ columns are omitted")
    report = {
        "version": VERSION, "created": datetime.now().isoformat(timespec="seconds"), "command": command,
        "quick": quick, "settings": {**asdict(s), "backbone": BACKBONE}, "classes": list(CLASSES),
        "eval_sets": eval_sets,
        "real_feature_extractions": sum(1 for k in REAL_SETS if eval_sets[k].get("from_cache") is False),
        "configs": rows, "not_ablated": NOT_ABLATED, "notes": notes, "wall_s": 0.0,
    }
    report["wall_s"] = round(time.time() - t_start, 1)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "ablation.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(folder / "ablation.md", markdown(report).encode())
    print_tables(report, console)
    console.print(f"wrote {folder / 'ablation.json'} and ablation.md in {report['wall_s']:.0f} s")
    return folder, report


# --------------------------------------------------------------------------- CLI


def bench_realism(
    quick: Annotated[bool, typer.Option("--quick", help="Smoke run: 2 configurations, 8 images/class at 64 px, 3 eval images/class.")] = False,
    configs: Annotated[Optional[str], typer.Option("--configs", help=f"Comma-separated subset of: {', '.join(ABLATIONS)} (default: {','.join(DEFAULT_CONFIGS)}).")] = None,
    per_class: Annotated[Optional[int], typer.Option("--per-class", help=f"Generated images per class per configuration (default {Settings.per_class}).")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help=f"Image and model input size in px (default {Settings.size}).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help=f"Most epochs per head training (default {Settings.epochs}).")] = None,
    repeats: Annotated[Optional[int], typer.Option("--repeats", help=f"Head trainings (seeds) per configuration (default {Settings.repeats}).")] = None,
    feature_passes: Annotated[Optional[int], typer.Option("--feature-passes", help=f"Cached passes over the training images, 1 clean + augmented (default {Settings.feature_passes}).")] = None,
    eval_cap: Annotated[Optional[int], typer.Option("--eval-cap", help="Real images per class to score (default 0 = all).")] = None,
    seed: Annotated[int, typer.Option(help="Generator and training seed.")] = 0,
    real: Annotated[Optional[Path], typer.Option("--real", help="Folder holding handdrawn/ and cad/ (default ../shared/data; a missing default gives n/a columns).")] = None,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Cache for generated datasets and features (default ~/.cache/image2circuit/bench-realism).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder for runs/bench-realism-YYYYMMDD-HHMM.")] = Path("runs"),
) -> None:
    """Ablate the generator's realism features: train on each variant, score on real hand-drawn and CAD
    symbols (evaluation only); writes runs/bench-realism-*/ablation.{json,md}."""
    base = QUICK if quick else Settings()
    given = {"per_class": per_class, "size": size, "epochs": epochs, "repeats": repeats,
             "feature_passes": feature_passes, "eval_cap": eval_cap}
    s = replace(base, seed=seed, **{k: v for k, v in given.items() if v is not None})
    names = [c.strip() for c in configs.split(",") if c.strip()] if configs is not None else None
    if names is not None and not names:
        raise UserError(f"--configs is empty; give some of {', '.join(ABLATIONS)}")
    run_ablation(names, s, real=real, cache=cache, runs_dir=runs_dir, quick=quick)


def register(app: typer.Typer) -> None:
    """Add `bench-realism` to the image2circuit CLI."""
    app.command("bench-realism")(bench_realism)
