"""CLI commands of the trainer: train, evaluate, predict, export (registered on the shared typer app).

Heavy imports (TensorFlow, Keras) happen inside the commands so `image2circuit --help` stays fast.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from generator.errors import UserError


def quiet_tensorflow() -> None:
    """Import TensorFlow with the C++ start-up chatter (absl/oneDNN INFO lines) sent to /dev/null.

    TF 2.21 prints them even with TF_CPP_MIN_LOG_LEVEL set; they would bury a one-line error.
    Python-level errors still surface: they are raised after stderr is restored."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Folder holding the run folders.")]


def train(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder (datasets/NAME with manifest.csv).")],
    name: Annotated[str, typer.Option("--name", help="Run name: the folder under --runs-dir.")],
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping may end sooner; the best epoch is kept).")] = 6,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    seed: Annotated[int, typer.Option(help="Seeds weights, shuffling and augmentation.")] = 0,
    size: Annotated[Optional[int], typer.Option(help="Input size in px (default: 96 scratch, 160 efficientnet_lite0).")] = None,
    backbone: Annotated[str, typer.Option(help="efficientnet_lite0 (ImageNet weights, frozen lower blocks cached) or scratch (the classic small CNN).")] = "efficientnet_lite0",
    width: Annotated[int, typer.Option(help="Scratch CNN: filters of the first block (doubles per block).")] = 32,
    depth: Annotated[int, typer.Option(help="Scratch CNN: number of conv blocks.")] = 4,
    dropout: Annotated[float, typer.Option(help="Dropout before the classifier.")] = 0.5,
    label_smoothing: Annotated[float, typer.Option("--label-smoothing", help="Share of each target spread over the other classes (0 = off): less over-confidence on generated symbols.")] = 0.1,
    ema: Annotated[float, typer.Option(help="Momentum of the weights' moving average that is validated and saved (0 = raw weights).")] = 0.995,
    trainable_blocks: Annotated[int, typer.Option("--trainable-blocks", help="Pretrained: top MBConv blocks that train (0 = classifier only).")] = 2,
    pretrained_weights: Annotated[bool, typer.Option("--pretrained-weights/--random-weights", help="Pretrained backbone: ImageNet weights or random init.")] = True,
    domains: Annotated[Optional[str], typer.Option(help="Comma-separated domains to train on, e.g. photo,schematic (default: all).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--learning-rate", help="Adam learning rate (default 1e-3; 3e-4 when backbone blocks train).")] = None,
    patience: Annotated[int, typer.Option(help="Early stopping: epochs without val_loss improvement.")] = 5,
    augment: Annotated[float, typer.Option(help="Augmentation strength (0 = off, 1 = default ranges).")] = 1.0,
    balance: Annotated[str, typer.Option(help="Loss weighting: class, class+domain or none.")] = "class",
    feature_passes: Annotated[int, typer.Option("--feature-passes", help="Pretrained: passes over the real (not generated) training images whose backbone outputs are cached: 1 clean + augmented ones. Generated symbols get one pass.")] = 3,
    tta: Annotated[int, typer.Option("--tta", help="Test-time mirror images the saved model averages: 1 (off), 2 (left-right) or 4 (all flips; inference costs 4x).")] = 4,
    runs_dir: RunsDir = Path("runs"),
    overwrite: Annotated[bool, typer.Option(help="Retrain a finished run from scratch.")] = False,
    eval_folder: Annotated[Optional[List[Path]], typer.Option("--eval", help="Evaluation-only folder of <class>/<image> (never trained on), reported as a domain named after the folder; repeatable.")] = None,
) -> None:
    """Train a classifier; rerun the same command after an interruption to resume."""
    quiet_tensorflow()
    from .fit import TrainConfig, train as run_training

    cfg = TrainConfig(
        data=str(data), name=name, runs_dir=str(runs_dir), epochs=epochs, batch_size=batch_size, seed=seed,
        size=size, backbone=backbone, width=width, depth=depth, dropout=dropout, trainable_blocks=trainable_blocks,
        label_smoothing=label_smoothing, ema=ema,
        weights="imagenet" if pretrained_weights else None,
        domains=[d.strip() for d in domains.split(",") if d.strip()] if domains else None,
        learning_rate=learning_rate, patience=patience, augment=augment, balance=balance, feature_passes=feature_passes,
        tta=tta,
    )
    folders = [(Path(f), Path(f).resolve().name) for f in eval_folder or []]
    for f, _ in folders:
        if not f.is_dir():
            raise UserError(f"--eval {f}: no such folder; give a folder of <class>/<image> files")
    run_training(cfg, overwrite=overwrite, eval_folders=folders)


def evaluate(
    run: Annotated[str, typer.Argument(help="Run name (under --runs-dir) or run folder.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset whose test split to score (default: the training dataset).")] = None,
    images: Annotated[Optional[List[Path]], typer.Option("--images", help="Extra folder of <class>/<image> to score; pair each with --domain.")] = None,
    domain: Annotated[Optional[List[str]], typer.Option("--domain", help="Name of the matching --images folder in the report.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Score a run per domain and overall; write metrics.json, report.md and figures into the run folder."""
    quiet_tensorflow()
    from rich.console import Console

    from .evaluate import evaluate_run
    from .predict import run_path
    from .report import print_summary

    images, domain = images or [], domain or []
    if len(images) != len(domain):
        raise UserError(f"got {len(images)} --images and {len(domain)} --domain; give one --domain after each --images")
    console = Console()
    run_dir = run_path(run, runs_dir)
    metrics = evaluate_run(run_dir, data, list(zip(images, domain)), batch_size, console)
    print_summary(console, metrics, run_dir)


def predict(
    run: Annotated[str, typer.Argument(help="Run name (under --runs-dir) or run folder.")],
    image: Annotated[List[Path], typer.Argument(help="Image files to classify.")],
    top_k: Annotated[int, typer.Option("--top-k", help="How many classes to list per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Classify images; an unreadable file gets a one-line error and the rest are still classified (exit 2)."""
    quiet_tensorflow()
    from .predict import load_run, predict_files, run_path

    results = predict_files(load_run(run_path(run, runs_dir)), image, top_k)
    failed = [r for r in results if "error" in r]
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            if "top" in r:
                typer.echo(f"{r['file']}: " + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"]))
    for r in failed:
        typer.echo(f"error: {r['error']}", err=True)
    if failed:
        raise typer.Exit(2)


def export(
    run: Annotated[str, typer.Argument(help="Run name (under --runs-dir) or run folder.")],
    fmt: Annotated[str, typer.Option("--format", help="tflite (LiteRT flatbuffer) or savedmodel.")] = "tflite",
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Export the run's model (takes square [0, 255] images, see preprocess.json) for deployment."""
    quiet_tensorflow()
    from .export import export_run
    from .predict import run_path

    typer.echo(f"wrote {export_run(run_path(run, runs_dir), fmt)}")


def register(app: typer.Typer) -> None:
    """Add the trainer's commands to the shared `image2circuit` app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("export")(export)
