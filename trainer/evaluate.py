"""Evaluation: per-domain and overall accuracy, balanced accuracy, per-class P/R/F1, confusion matrices.

Metrics are plain numpy on a confusion matrix (no sklearn). Domains are scored separately because
the point of the project is transfer: a model can be fine on generated symbols and poor on real
drawings, and one pooled number would hide it. Classes are unbalanced, so balanced accuracy (mean
recall over the classes that have images in that domain) is reported beside accuracy.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from generator.errors import UserError

from . import data as D


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def scores(cm: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy, macro F1 and per-class precision/recall/F1/support from a confusion matrix.

    A class with no images in this domain has recall/F1 null and is left out of the balanced
    accuracy and macro F1 (it would otherwise count as 0 and punish the model for a class that was
    never asked). Precision of a class that was never predicted is 0, as in sklearn's zero_division=0.
    """
    cm = np.asarray(cm, np.float64)
    n = cm.sum()
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    per_class, recalls, f1s = {}, [], []
    for i, c in enumerate(classes):
        precision = tp[i] / predicted[i] if predicted[i] else 0.0
        if support[i]:
            recall = tp[i] / support[i]
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            recalls.append(recall)
            f1s.append(f1)
        else:
            recall = f1 = None
        per_class[c] = {"precision": float(precision), "recall": _f(recall), "f1": _f(f1), "support": int(support[i])}
    return {
        "n": int(n),
        "accuracy": float(tp.sum() / n) if n else None,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "classes": per_class,
        "confusion": cm.astype(np.int64).tolist(),
    }


def _f(x):
    return None if x is None else float(x)


@dataclass
class DomainResult:
    """Predictions for one evaluated domain, kept for the report's confusion and worst-case sheets."""

    name: str
    source: str
    split: D.Split
    probs: np.ndarray
    left_out: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)  # manifest rows of the split, in order (generated: recipe, params)

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1) if len(self.probs) else np.zeros(0, np.int64)


def predict_split(model, split: D.Split, size: int, batch_size: int = 64, content_crop: bool = True) -> np.ndarray:
    """Class probabilities for every image of a split, decoded by the same pipeline as training."""
    if not len(split):
        return np.zeros((0, model.output_shape[-1]), np.float32)
    ds = D.make_dataset(split, size, batch_size, cache=False, with_labels=False, content_crop=content_crop)
    batches = D.collect(ds, split.paths, size)
    return np.concatenate([np.asarray(model.predict_on_batch(b)) for b in batches]).astype(np.float32)


def evaluate_run(
    run_dir: Path,
    data: Path | None = None,
    folders: Sequence[tuple[Path, str]] = (),
    batch_size: int = 64,
    console=None,
) -> dict:
    """Score a run on each domain's test split of the dataset and on extra folders; write the report.

    Returns the metrics dict that is also written to metrics.json.
    """
    from . import report
    from .predict import load_run

    run = load_run(run_dir)
    size = run.preprocess.size
    data = Path(data) if data else Path(run.config.get("data", ""))
    rows = D.dataset_rows(data)
    results: list[DomainResult] = []
    for domain in sorted({r["domain"] for r in rows}):
        in_test = [r for r in rows if r["domain"] == domain and r["split"] == "test"]
        test_rows = [r for r in in_test if r["label"] in run.classes]
        split = D.split_of(data, test_rows, "test", run.classes)
        untrained = dict(Counter(r["label"] for r in in_test if r["label"] not in run.classes))
        if len(split):
            results.append(DomainResult(domain, f"{data} (test split)", split, None, {"untrained": untrained}, test_rows))
    names = {r.name for r in results}
    for folder, domain in folders:
        if domain in names:
            raise UserError(f"domain name {domain!r} is used twice; give each --images folder its own --domain")
        names.add(domain)
        split, left_out = D.folder_split(Path(folder), domain, run.classes)
        results.append(DomainResult(domain, str(folder), split, None, left_out))
    if not results:
        raise UserError(f"nothing to evaluate: {data} has no test images of the model's classes and no --images given")
    for res in results:
        if console:
            console.print(f"evaluating {res.name}: {len(res.split)} images")
        res.probs = predict_split(run.model, res.split, size, batch_size, run.preprocess.content_crop)
    metrics = summarise(run.classes, results)
    metrics["run"] = run.dir.name
    metrics["model"] = run.description
    metrics["data"] = str(data)
    report.write_report(run.dir, metrics, results, run.classes)
    return metrics


def summarise(classes: Sequence[str], results: Sequence[DomainResult]) -> dict:
    """metrics.json content: one entry per domain plus "overall" (all evaluated images pooled)."""
    k = len(classes)
    out = {"classes": list(classes), "domains": {}}
    all_true, all_pred = [], []
    for res in results:
        cm = confusion_matrix(res.split.labels, res.predicted, k)
        out["domains"][res.name] = {**scores(cm, classes), "source": res.source, "left_out": _clean(res.left_out)}
        if any(r.get("recipe") for r in res.rows):
            out["domains"][res.name]["by_generator"] = generator_breakdown(res.rows, res.predicted, classes)
        all_true.append(res.split.labels)
        all_pred.append(res.predicted)
    cm = confusion_matrix(np.concatenate(all_true), np.concatenate(all_pred), k)
    out["overall"] = {**scores(cm, classes), "source": "all domains above, pooled"}
    return out


def _knobs(params: dict, lowres_below: int) -> dict[str, str]:
    """The generator choices a person can act on, read back from a manifest row's params."""
    mix = params.get("mix") or {}
    return {
        "style": params.get("style", "?"),
        "resolution": "low-res (scaled up)" if params.get("canvas", lowres_below) < lowres_below else "full",
        "capture": mix.get("strength", "none"),
        "paper": mix.get("paper", "none"),
        "labels": "yes" if params.get("labels") else "no",
        "neighbour fragment": "yes" if params.get("neighbour") else "no",
        "wires": "yes" if params.get("wires") else "no",
    }


def generator_breakdown(rows: Sequence[dict], predicted: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy of generated test images by recipe and by generator knob, so a user who adds a variant
    sees how well it is learnt and what it is taken for. Rows without a recipe (photos) are skipped."""
    from generator.render import LOWRES_CANVAS

    by_recipe: dict[str, dict] = {}
    by_knob: dict[str, dict[str, list[int]]] = {}
    for row, pred in zip(rows, predicted):
        if not row.get("recipe"):
            continue
        ok = classes[pred] == row["label"]
        rec = by_recipe.setdefault(row["recipe"], {"class": row["label"], "n": 0, "right": 0, "taken_for": {}})
        rec["n"] += 1
        rec["right"] += ok
        if not ok:
            rec["taken_for"][classes[pred]] = rec["taken_for"].get(classes[pred], 0) + 1
        try:  # a hand-edited manifest may hold anything here; the recipe table still counts the row
            params = json.loads(row.get("params") or "{}")
        except (TypeError, ValueError):
            params = {}
        params = params if isinstance(params, dict) else {}
        for knob, value in _knobs(params, LOWRES_CANVAS[1]).items():
            counts = by_knob.setdefault(knob, {}).setdefault(value, [0, 0])
            counts[0] += 1
            counts[1] += ok
    recipes = {
        name: {"class": r["class"], "n": r["n"], "accuracy": r["right"] / r["n"],
               "taken_for": dict(sorted(r["taken_for"].items(), key=lambda kv: -kv[1]))}
        for name, r in sorted(by_recipe.items(), key=lambda kv: (kv[1]["right"] / kv[1]["n"], kv[0]))
    }
    knobs = {k: {v: {"n": n, "accuracy": right / n} for v, (n, right) in sorted(vals.items())} for k, vals in by_knob.items()}
    return {"recipes": recipes, "knobs": knobs}


def _clean(left_out: dict) -> dict:
    return {k: v for k, v in left_out.items() if v}
