"""Load a finished run and classify image files with it.

A run folder is self-describing: model.keras (takes square [0, 255] images), labels.json (output
index -> class) and preprocess.json (how to turn a file into that square). Prediction reuses
data.load_image, the same decode/resize/pad graph the training pipeline ran.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from generator.errors import UserError

from . import data as D

MODEL = "model.keras"
LABELS = "labels.json"
PREPROCESS = "preprocess.json"
CONFIG = "config.json"


def run_path(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """RUN may be a run name under runs_dir or a path to a run folder."""
    p = Path(run)
    if p.is_dir() and ((p / CONFIG).is_file() or (p / MODEL).is_file()):
        return p
    return Path(runs_dir) / str(run)


@dataclass
class Run:
    """A trained run, loaded."""

    dir: Path
    model: object
    classes: list[str]
    preprocess: D.Preprocess
    config: dict

    @property
    def description(self) -> str:
        """What makes the predictions, in one line for reports: backbone, input size, mirror views."""
        from .model import Flip

        c = self.config
        backbone = c.get("backbone", "unknown model")
        parts = [backbone + (" (ImageNet weights)" if backbone != "scratch" and c.get("weights") == "imagenet" else "")]
        parts.append(f"{self.preprocess.size} px")
        if backbone != "scratch" and "trainable_blocks" in c:
            k = c["trainable_blocks"]
            parts.append(f"top {k} block{'s' if k > 1 else ''} trained" if k else "classifier only trained")
        views = 1 + sum(isinstance(layer, Flip) for layer in self.model.layers)
        parts.append(f"{views} mirror views averaged" if views > 1 else "one view")
        return ", ".join(parts)


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is missing: the run folder is incomplete; retrain with image2circuit train") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not readable {what} ({e}); retrain the run") from None


def load_run(run_dir: Path) -> Run:
    """model + labels + preprocessing of a run; any missing piece is a one-line UserError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no run folder {run_dir}: train it first (image2circuit train --name {run_dir.name}) or check --runs-dir")
    if not (run_dir / MODEL).is_file():
        hint = "training did not finish; rerun the same train command to resume" if (run_dir / CONFIG).is_file() else "train it first"
        raise UserError(f"{run_dir} has no {MODEL}: {hint}")
    classes = _read_json(run_dir / LABELS, "labels")
    pre = D.Preprocess.from_json(_read_json(run_dir / PREPROCESS, "preprocessing"))
    config = _read_json(run_dir / CONFIG, "config") if (run_dir / CONFIG).is_file() else {}
    import keras

    from . import model as _layers  # noqa: F401 - registers the custom layers (Flip) that saved models use

    try:
        model = keras.saving.load_model(run_dir / MODEL)
    except Exception as e:  # a damaged zip, or a model from another Keras: say which file
        raise UserError(f"{run_dir / MODEL} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0][:100]}); retrain the run") from None
    if model.output_shape[-1] != len(classes):
        raise UserError(f"{run_dir / LABELS} lists {len(classes)} classes but the model has {model.output_shape[-1]} outputs")
    return Run(run_dir, model, list(classes), pre, config)


def top_k(probs: np.ndarray, classes: Sequence[str], k: int) -> list[dict]:
    order = np.argsort(-probs, kind="stable")[: max(1, k)]
    return [{"class": classes[i], "probability": float(probs[i])} for i in order]


def predict_files(run: Run, paths: Sequence[str | Path], k: int = 3) -> list[dict]:
    """One result per path, in order: {"file", "top": [{"class", "probability"}, ...]} or {"file", "error"}.

    A file that cannot be read is reported and skipped; the others are still classified."""
    results: list[dict] = []
    images, where = [], []
    for p in paths:
        try:
            images.append(D.load_image(p, run.preprocess.size, run.preprocess.content_crop))
            where.append(len(results))
            results.append({"file": str(p)})
        except UserError as e:
            results.append({"file": str(p), "error": str(e)})
    if images:
        batch = 64
        probs = np.concatenate([
            np.asarray(run.model.predict_on_batch(np.stack(images[i : i + batch]).astype(np.float32)))
            for i in range(0, len(images), batch)
        ])
        for i, pr in zip(where, probs):
            results[i]["top"] = top_k(pr, run.classes, k)
    return results
