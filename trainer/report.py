"""Run report: metrics.json, report.md, confusion_<domain>.png, curves.png, worst_<domain>.png.

Every file is written to a temporary name and renamed, so an interrupted evaluation never leaves a
half-written report beside a finished one.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from generator.manifest import atomic_write_bytes
from generator.sheet import contact_sheet, save_png

WORST = 24


def slug(name: str) -> str:
    """A domain name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "domain"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def summary_rows(metrics: dict) -> list[tuple[str, int, str, str]]:
    """(domain, n, accuracy, balanced accuracy) for each domain, then overall."""
    rows = [(d, m["n"], _pct(m["accuracy"]), _pct(m["balanced_accuracy"])) for d, m in metrics["domains"].items()]
    o = metrics["overall"]
    rows.append(("overall", o["n"], _pct(o["accuracy"]), _pct(o["balanced_accuracy"])))
    return rows


def summary_table(metrics: dict, title: str | None = None):
    """The report's first table as a rich Table, printed at the end of training and evaluation."""
    from rich.table import Table

    t = Table(title=title or f"run {metrics.get('run', '')}", caption=metrics.get("model"))
    t.add_column("domain")
    t.add_column("n", justify="right")
    t.add_column("accuracy", justify="right")
    t.add_column("balanced accuracy", justify="right")
    rows = summary_rows(metrics)
    for i, (d, n, a, b) in enumerate(rows):
        t.add_row(d, str(n), a, b, end_section=i == len(rows) - 2)
    return t


def hardest_recipes(metrics: dict, n: int = 3) -> str | None:
    """One line naming the generated recipes the model gets wrong most often, or None when none are wrong."""
    lines = []
    for d, m in metrics["domains"].items():
        worst = [(name, r) for name, r in (m.get("by_generator") or {}).get("recipes", {}).items() if r["accuracy"] < 1][:n]
        if worst:
            lines.append(f"{d}: hardest generated recipes " + ", ".join(f"{name} {_pct(r['accuracy'])}" for name, r in worst))
    return "; ".join(lines) or None


def print_summary(console, metrics: dict, run_dir: Path, title: str | None = None) -> None:
    """What training and evaluation end with: the domain table, the hardest recipes, where the report is."""
    console.print(summary_table(metrics, title))
    hardest = hardest_recipes(metrics)
    if hardest:
        console.print(hardest, soft_wrap=True)
    console.print(f"report: {Path(run_dir) / 'report.md'}")


def markdown(metrics: dict) -> str:
    """report.md: the summary table first, then per-class tables per domain and the figures."""
    lines = [f"# Evaluation of run `{metrics.get('run', '')}`", ""]
    lines += ["| domain | n | accuracy | balanced accuracy |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {d} | {n} | {a} | {b} |" for d, n, a, b in summary_rows(metrics)]
    lines += [
        "",
        "Balanced accuracy is the mean recall over the classes that have images in that domain.",
        "",
        *([f"Model: {metrics['model']}.", ""] if metrics.get("model") else []),
        "![training curves](curves.png)",
        "",
    ]
    for d, m in metrics["domains"].items():
        lines += [f"## {d}", "", f"Source: {m['source']}. Macro F1: {_pct(m['macro_f1'])}.", ""]
        lines += ["| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
        for c, s in m["classes"].items():
            if s["support"] or s["precision"]:
                lines.append(f"| {c} | {_pct(s['precision'])} | {_pct(s['recall'])} | {_pct(s['f1'])} | {s['support']} |")
        left = m.get("left_out") or {}
        if left.get("untrained"):
            lines += ["", "Not scored (class not trained): " + ", ".join(f"{c} {n}" for c, n in left["untrained"].items())]
        if left.get("unknown_folders"):
            lines += ["", "Not scored (folder names no class): " + ", ".join(left["unknown_folders"])]
        if m.get("by_generator"):
            lines += ["", *generator_tables(m["by_generator"])]
        lines += ["", f"![confusion {d}](confusion_{slug(d)}.png)", ""]
        if m["n"] > round((m["accuracy"] or 0) * m["n"]):
            lines += [f"![worst {d}](worst_{slug(d)}.png)", ""]
    return "\n".join(lines)


def generator_tables(breakdown: dict, worst: int = 12) -> list[str]:
    """Markdown: the generated recipes the model gets wrong most often, and accuracy by generator knob."""
    recipes = list(breakdown["recipes"].items())
    lines = [f"Generated test by recipe, {min(worst, len(recipes))} hardest of {len(recipes)} "
             "(all of them in metrics.json, `by_generator`):", "",
             "| recipe | class | n | accuracy | most often taken for |", "| --- | --- | ---: | ---: | --- |"]
    for name, r in recipes[:worst]:
        taken = ", ".join(f"{c} {n}" for c, n in list(r["taken_for"].items())[:2]) or "-"
        lines.append(f"| {name} | {r['class']} | {r['n']} | {_pct(r['accuracy'])} | {taken} |")
    lines += ["", "Generated test by generator knob:", "", "| knob | value | n | accuracy |", "| --- | --- | ---: | ---: |"]
    for knob, values in breakdown["knobs"].items():
        for value, v in values.items():
            lines.append(f"| {knob} | {value} | {v['n']} | {_pct(v['accuracy'])} |")
    return lines


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_confusion(cm: np.ndarray, classes: Sequence[str], title: str, path: Path) -> None:
    """Row-normalised colours (recall per true class), raw counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * k, 1.0 + 0.7 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    _save_figure(fig, path)


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv (CSVLogger) as columns; empty dict if there is none (e.g. a copied model)."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, list[float]] = {}
    for r in rows:
        for k, v in r.items():
            try:
                cols.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                pass
    return cols


def plot_curves(history: dict[str, list[float]], path: Path) -> bool:
    """Loss and accuracy per epoch, training vs validation; False if there is no history."""
    if not history.get("epoch"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [e + 1 for e in history["epoch"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            if name in history:
                ax.plot(epochs, history[name], style, marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _save_figure(fig, path)
    return True


def worst_sheet(result, classes: Sequence[str], path: Path, n: int = WORST) -> int:
    """Contact sheet of the most confident mistakes (true > predicted, probability); returns how many."""
    from PIL import Image

    pred = result.predicted
    wrong = np.flatnonzero(pred != result.split.labels)
    if not len(wrong):
        return 0
    conf = result.probs[wrong, pred[wrong]]
    chosen = wrong[np.argsort(-conf, kind="stable")[:n]]
    images, captions = [], []
    for i in chosen:
        try:
            with Image.open(result.split.paths[i]) as im:
                im = im.convert("RGB")
                scale = 160 / max(im.size)
                if scale > 1:  # small images would stay tiny in the sheet's cells
                    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
                images.append(im.copy())
        except OSError:
            images.append(Image.new("RGB", (8, 8), "red"))
        t, p = classes[result.split.labels[i]], classes[pred[i]]
        captions.append(f"{t[:10]}>{p[:10]} {result.probs[i, pred[i]]:.2f}")
    save_png(contact_sheet(images, captions, cols=6, cell=160), path)
    return len(chosen)


def write_report(run_dir: Path, metrics: dict, results: Sequence, classes: Sequence[str]) -> None:
    """All report files of a run; old confusion/worst sheets of domains no longer evaluated are kept."""
    run_dir = Path(run_dir)
    for res in results:
        cm = np.array(metrics["domains"][res.name]["confusion"])
        plot_confusion(cm, classes, f"{res.name} (n={len(res.split)})", run_dir / f"confusion_{slug(res.name)}.png")
        worst = run_dir / f"worst_{slug(res.name)}.png"
        if not worst_sheet(res, classes, worst):
            worst.unlink(missing_ok=True)  # no mistakes now: drop a sheet left by an earlier evaluation
    plot_curves(read_history(run_dir / "history.csv"), run_dir / "curves.png")
    atomic_write_bytes(run_dir / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
    atomic_write_bytes(run_dir / "report.md", markdown(metrics).encode())
