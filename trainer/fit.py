"""Training: one run folder per --name, resumable, reproducible given --seed.

runs/NAME/ holds config.json (the settings), labels.json, preprocess.json, history.csv
(CSVLogger), backup/ (BackupAndRestore, only while a run is unfinished), best.weights.h5
(ModelCheckpoint, until the end), features/ (cached backbone outputs, until the end), then
model.keras and the evaluation report.

Scratch CNN: end-to-end on the tf.data pipeline with online augmentation. Pretrained backbone:
the frozen part's outputs are computed once (one clean pass plus `feature_passes - 1` augmented
passes over the real training images, one pass over generated ones: a fresh render is a better
variant than an augmented copy) and only the head trains on them, which is what makes transfer
learning affordable on two CPU cores; the head and backbone are then saved as one model.

Both paths train with label smoothing and keep an exponential moving average of the weights
(Keras' optimizer EMA): validation, the best-epoch checkpoint and the saved model use the average,
which in our measurements was steadier and better on the real evaluation-only folders than the raw
weights of the best epoch (README, "Training recipe").
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from generator.errors import UserError
from generator.manifest import MANIFEST, atomic_write_bytes

from . import data as D
from . import model as M
from .predict import CONFIG, LABELS, MODEL, PREPROCESS

HISTORY = "history.csv"
BEST = "best.weights.h5"
BACKUP = "backup"
FEATURES = "features"
FEATURE_LAYOUT = 3  # bump when the cached training features are laid out differently (2: passes per origin, 3: content crop)
# Settings that may change when resuming an interrupted run (they do not change what was learnt).
RESUMABLE = ("epochs", "patience", "runs_dir", "name", "tta")


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as config.json and compared on resume."""

    data: str
    name: str
    runs_dir: str = "runs"
    epochs: int = 6
    batch_size: int = 64
    seed: int = 0
    size: int | None = None  # None: the backbone's default (model.default_size)
    backbone: str = "efficientnet_lite0"
    width: int = 32
    depth: int = 4
    dropout: float = 0.5
    label_smoothing: float = 0.1
    ema: float = 0.995  # momentum of the weights' moving average that is evaluated and saved; 0 = off
    trainable_blocks: int = 2
    weights: str | None = "imagenet"
    domains: list[str] | None = None
    learning_rate: float | None = None  # None: 1e-3, or 3e-4 when backbone blocks train
    patience: int = 5
    augment: float = 1.0
    balance: str = "class"
    feature_passes: int = 3
    tta: int = 4  # mirror images averaged by the saved model (1 = off); see model.TTA_VIEWS
    extra: dict = field(default_factory=dict)

    def resolved(self) -> "TrainConfig":
        c = TrainConfig(**asdict(self))
        c.size = c.size or M.default_size(c.backbone)
        if c.learning_rate is None:
            c.learning_rate = 3e-4 if c.backbone != "scratch" and c.trainable_blocks else 1e-3
        c.data = str(Path(c.data))
        return c


def _check(cfg: TrainConfig) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cfg.name or ""):
        raise UserError(f"--name {cfg.name!r} must be a plain folder name (letters, digits, . _ -)")
    for what, v, lo in (("--epochs", cfg.epochs, 1), ("--batch-size", cfg.batch_size, 1), ("--feature-passes", cfg.feature_passes, 1), ("--patience", cfg.patience, 0)):
        if v < lo:
            raise UserError(f"{what} {v} must be at least {lo}")
    if cfg.backbone not in M.BACKBONES:
        raise UserError(f"unknown --backbone {cfg.backbone!r}; choose one of: {', '.join(M.BACKBONES)}")
    if cfg.balance not in ("class", "class+domain", "none"):
        raise UserError(f"unknown --balance {cfg.balance!r}; use class, class+domain or none")
    for what, v in (("--label-smoothing", cfg.label_smoothing), ("--ema", cfg.ema)):
        if not 0 <= v < 1:
            raise UserError(f"{what} {v} must be in [0, 1) (0 turns it off)")
    M.check_views(cfg.tta)
    if cfg.augment < 0:
        raise UserError(f"--augment {cfg.augment} must be >= 0 (0 turns augmentation off)")


def device_line() -> str:
    """Which device TensorFlow will train on, for the log and the benchmark."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"training on GPU: {', '.join(g.name for g in gpus)}"
    return f"training on CPU ({os.cpu_count()} cores visible; no GPU visible to TensorFlow)"


# --------------------------------------------------------------------------- run folder state


def _manifest_digest(data: Path) -> str:
    return hashlib.sha256((Path(data) / MANIFEST).read_bytes()).hexdigest()[:16]


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _prepare_run_dir(run_dir: Path, config: dict, overwrite: bool) -> int:
    """Create or reopen the run folder; returns the epoch to resume from (0 for a fresh run)."""
    backup_meta = run_dir / BACKUP / "training_metadata.json"

    def changed() -> list[str]:
        old = json.loads((run_dir / CONFIG).read_text())
        return [k for k in config if k not in RESUMABLE and old.get(k) != config[k]]

    if run_dir.exists() and overwrite:
        if not (run_dir / CONFIG).is_file() and any(run_dir.iterdir()):
            raise UserError(f"{run_dir} is not a run folder (no {CONFIG}); refusing to overwrite it")
        # --overwrite retrains a finished run; an interrupted one with the same settings still resumes.
        if not (backup_meta.is_file() and (run_dir / CONFIG).is_file() and not changed()):
            shutil.rmtree(run_dir)
    if (run_dir / MODEL).is_file() and not backup_meta.is_file():
        raise UserError(f"run {run_dir} already finished; choose another --name or pass --overwrite to retrain it")
    run_dir.mkdir(parents=True, exist_ok=True)
    if backup_meta.is_file() and (run_dir / CONFIG).is_file():
        diff = changed()
        if diff:
            raise UserError(
                f"run {run_dir} was started with other settings ({', '.join(diff)} differ); "
                "rerun with the same options to resume, or pass --overwrite / another --name"
            )
        try:
            start = int(json.loads(backup_meta.read_text())["epoch"])
        except (ValueError, KeyError, OSError):
            start = 0
        _truncate_history(run_dir / HISTORY, start)
        return start
    for stale in (HISTORY, BEST, BACKUP):  # an unfinished run that never completed an epoch: start clean
        p = run_dir / stale
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    return 0


def _truncate_history(path: Path, start: int) -> None:
    """Keep the history rows of the epochs the backup holds (an interruption may have logged one more)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) < start]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(keep)
    atomic_write_bytes(path, buf.getvalue().encode())


def _best_so_far(path: Path, monitor: str = "val_loss") -> tuple[float | None, int]:
    """(best monitored value, epochs since it) from history.csv, to restore callback state on resume."""
    if not path.is_file():
        return None, 0
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(monitor) not in (None, "")]
    if not rows:
        return None, 0
    values = [float(r[monitor]) for r in rows]
    best = int(np.argmin(values))
    return values[best], len(values) - 1 - best


# --------------------------------------------------------------------------- callbacks


def _callbacks(run_dir: Path, cfg: TrainConfig, start: int, console, steps: int, extra: Sequence):
    import keras

    best, wait = _best_so_far(run_dir / HISTORY) if start else (None, 0)
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, verbose=0)

    class ResumeState(keras.callbacks.Callback):
        """EarlyStopping forgets its best value and patience counter between fit() calls; restore them."""

        def on_train_begin(self, logs=None):
            if best is not None:
                early.best, early.wait, early.best_epoch = best, wait, start - 1 - wait

    # SwapEMAWeights comes after BackupAndRestore (a backup must hold the raw weights, with the
    # average in the optimizer) and before the checkpoint and early stopping (which judge the average).
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if cfg.ema else []
    return [
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP), double_checkpoint=True),
        *ema,
        keras.callbacks.ModelCheckpoint(
            str(run_dir / BEST), monitor="val_loss", save_best_only=True, save_weights_only=True,
            initial_value_threshold=best,
        ),
        early,
        ResumeState(),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY), append=True),
        RichProgress(console, cfg.epochs, steps),
        *extra,
    ]


def _make_rich_progress():
    import keras

    class _RichProgress(keras.callbacks.Callback):
        """A rich progress bar per epoch and one summary line per finished epoch."""

        def __init__(self, console, epochs: int, steps: int):
            super().__init__()
            self.console, self.epochs, self.steps = console, epochs, steps
            self.progress = None
            self.t0 = 0.0

        def on_train_begin(self, logs=None):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"), console=self.console, transient=True,
                disable=not self.console.is_terminal,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=self.steps, info="")

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()
            self.progress.reset(self.task, total=self.steps, description=f"epoch {epoch + 1}/{self.epochs}", info="")

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            info = f"loss {logs.get('loss', float('nan')):.4f} acc {logs.get('accuracy', float('nan')):.3f}"
            self.progress.update(self.task, completed=batch + 1, info=info)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            short = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
            parts = [f"{short[k]} {logs[k]:.4f}" for k in short if isinstance(logs.get(k), (int, float))]
            self.console.print(f"epoch {epoch + 1}/{self.epochs} {time.perf_counter() - self.t0:.1f}s " + " ".join(parts), soft_wrap=True)

        def on_train_end(self, logs=None):
            if self.progress:
                self.progress.stop()

    return _RichProgress


def RichProgress(console, epochs: int, steps: int):  # noqa: N802 - a callback factory, used like a class
    """Build the rich progress callback (keras is imported lazily so `--help` stays fast)."""
    return _make_rich_progress()(console, epochs, steps)


# --------------------------------------------------------------------------- feature cache


def _feature_key(cfg: TrainConfig, digest: str, cut: int) -> str:
    parts = [digest, cfg.backbone, cfg.weights, cfg.size, cut, cfg.feature_passes, cfg.seed, cfg.augment, cfg.domains,
             FEATURE_LAYOUT]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def extract_features(frozen, split: D.Split, size: int, batch_size: int, passes: int, augment,
                     console=None, what: str = "features") -> np.ndarray:
    """Frozen-backbone outputs for `passes` passes over the split: the first clean, the rest augmented.

    Feature maps are stored as float16 (half the memory; the head sees the float32 values at
    inference and the difference is far below the training noise); pooled vectors stay float32."""
    from rich.progress import Progress

    shape = tuple(frozen.output.shape[1:])
    dtype = np.float16 if len(shape) > 1 else np.float32
    out = np.zeros((passes * len(split), *shape), dtype)
    total = passes * D.steps(len(split), batch_size)
    with Progress(console=console, transient=True, disable=console is None or not console.is_terminal) as progress:
        task = progress.add_task(what, total=total)
        for p in range(passes):
            ds = D.make_dataset(split, size, batch_size, augment=augment if p else None, cache=False, with_labels=False)
            i = p * len(split)
            try:
                for batch in ds:
                    f = np.asarray(frozen.predict_on_batch(batch))  # compiled: ~10x faster than an eager call
                    out[i : i + len(f)] = f
                    i += len(f)
                    progress.advance(task)
            except Exception as e:
                _raise_decode_error(e, split.paths, size)
                raise
    return out


def _raise_decode_error(e: Exception, paths: Sequence[str], size: int) -> None:
    """A decode failure deep inside tf.data -> UserError naming the file (slow path, errors only)."""
    import tensorflow as tf

    if isinstance(e, tf.errors.InvalidArgumentError):
        msg = D.first_unreadable(paths, size)
        if msg:
            raise UserError(f"{msg}; fix or remove it and rebuild the dataset") from None


def _cached_features(run_dir: Path, key: str, name: str, make) -> np.ndarray:
    folder = run_dir / FEATURES
    path = folder / f"{name}-{key}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    arr = make()
    folder.mkdir(exist_ok=True)
    _save_npy(path, arr)
    return arr


# --------------------------------------------------------------------------- train


def train(cfg: TrainConfig, *, overwrite: bool = False, callbacks: Sequence = (), console=None,
          evaluate: bool = True, eval_folders: Sequence[tuple[Path, str]] = ()) -> dict:
    """Train (or resume) the run `cfg.name`; save model.keras; evaluate on the test splits.

    Returns {"run_dir", "epochs_run", "device", "seconds", "metrics"} (metrics None if evaluate=False).
    `callbacks` are extra Keras callbacks, appended after the run's own."""
    import keras
    from rich.console import Console

    console = console or Console()
    _check(cfg)
    cfg = cfg.resolved()
    data = Path(cfg.data)
    rows = D.dataset_rows(data, cfg.domains)
    classes = D.class_names(rows)
    if len(classes) < 2:
        raise UserError(f"{data / MANIFEST} has training images of {len(classes)} class(es); a classifier needs at least 2")
    train_split = D.split_of(data, rows, "train", classes)
    val_split = D.split_of(data, rows, "val", classes)
    if not len(val_split):
        raise UserError(f"{data / MANIFEST} has no validation images for the chosen domains; rebuild the dataset with a val split")
    digest = _manifest_digest(data)
    config = {**asdict(cfg), "classes": classes, "manifest_sha256": digest}

    run_dir = Path(cfg.runs_dir) / cfg.name
    start = _prepare_run_dir(run_dir, config, overwrite)
    _write_json(run_dir / CONFIG, config)
    pre = D.Preprocess(cfg.size)
    _write_json(run_dir / LABELS, classes)
    _write_json(run_dir / PREPROCESS, pre.to_json())

    keras.utils.set_random_seed(cfg.seed)
    device = device_line()
    console.print(device)
    console.print(
        f"run {cfg.name}: {cfg.backbone} at {cfg.size}px, {len(classes)} classes, "
        f"{len(train_split)} train / {len(val_split)} val images"
        + (f", resuming after epoch {start}" if start else "")
    )
    w_val = D.sample_weights(val_split, len(classes), cfg.balance)
    augment = D.augmenter(cfg.augment, cfg.seed)

    t0 = time.perf_counter()
    history_len = 0
    if cfg.backbone == "scratch":
        net = M.scratch_cnn(len(classes), cfg.size, cfg.width, cfg.depth, cfg.dropout)
        trainee, final = net, net
        fit_args = dict(
            x=D.make_dataset(train_split, cfg.size, cfg.batch_size, shuffle=True, augment=augment,
                             weights=D.sample_weights(train_split, len(classes), cfg.balance),
                             seed=cfg.seed, one_hot=len(classes)),
            validation_data=D.make_dataset(val_split, cfg.size, cfg.batch_size, weights=w_val, one_hot=len(classes)),
            shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
        )
        steps = D.steps(len(train_split), cfg.batch_size)
    else:
        parts = M.pretrained(len(classes), cfg.size, cfg.dropout, cfg.trainable_blocks, cfg.weights, cfg.backbone)
        trainee, final = parts.head, parts.full
        key = _feature_key(cfg, digest, parts.cut)
        generated = train_split.is_generated()
        # (which images, passes): generated symbols once, real images (photos) with augmented passes too
        groups = [(m, p) for m, p in ((generated, 1), (~generated, cfg.feature_passes)) if m.any()]
        f_train = _cached_features(run_dir, key, "train", lambda: np.concatenate([
            extract_features(parts.frozen, train_split.subset(m), cfg.size, cfg.batch_size, p, augment, console,
                             "train features")
            for m, p in groups]))
        f_val = _cached_features(run_dir, key, "val", lambda: extract_features(
            parts.frozen, val_split, cfg.size, cfg.batch_size, 1, None, console, "val features"))
        # the cached samples in their order (pass-major within each group); class weights count every pass
        samples = train_split.take(np.concatenate([np.tile(np.flatnonzero(m), p) for m, p in groups]))
        # one-hot targets: label smoothing needs the categorical, not the sparse, loss
        fit_args = dict(
            x=f_train, y=keras.utils.to_categorical(samples.labels, len(classes)),
            sample_weight=D.sample_weights(samples, len(classes), cfg.balance),
            batch_size=cfg.batch_size, shuffle=True,
            validation_data=(f_val, keras.utils.to_categorical(val_split.labels, len(classes)), w_val),
        )
        steps = D.steps(len(f_train), cfg.batch_size)
        console.print(f"cached {cfg.backbone} outputs {f_train.shape[1:]} for {len(f_train)} training samples "
                      f"in {time.perf_counter() - t0:.1f}s")

    ema = dict(use_ema=True, ema_momentum=cfg.ema) if cfg.ema else {}
    trainee.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate, **ema),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            nonlocal history_len
            history_len += 1

    cbs = _callbacks(run_dir, cfg, start, console, steps, [Count(), *callbacks])
    try:
        trainee.fit(epochs=cfg.epochs, callbacks=cbs, verbose=0, **fit_args)
    except Exception as e:
        if cfg.backbone == "scratch":
            _raise_decode_error(e, train_split.paths + val_split.paths, cfg.size)
        raise
    if (run_dir / BEST).is_file():
        trainee.load_weights(run_dir / BEST)  # the best validation epoch, not the last one
    tmp = run_dir / f".model.{os.getpid()}.tmp.keras"
    M.with_flip_views(final, cfg.tta).save(tmp)
    os.replace(tmp, run_dir / MODEL)
    (run_dir / BEST).unlink(missing_ok=True)
    shutil.rmtree(run_dir / FEATURES, ignore_errors=True)
    seconds = time.perf_counter() - t0
    console.print(f"trained {history_len} epoch(s) in {seconds:.1f}s; saved {run_dir / MODEL}")

    metrics = None
    if evaluate:
        from .evaluate import evaluate_run
        from .report import print_summary

        metrics = evaluate_run(run_dir, data, list(eval_folders), console=console)
        print_summary(console, metrics, run_dir, title=f"run {cfg.name}: test splits and evaluation-only folders")
    return {"run_dir": str(run_dir), "epochs_run": history_len, "device": device, "seconds": seconds, "metrics": metrics}
