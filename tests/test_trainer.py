"""Trainer end to end on a tiny synthetic dataset: pipeline, models, train/resume, report, predict, export, errors.

Images are PIL-drawn shapes (bars = capacitor, triangle = diode, circle = inductor, box = resistor)
at 32-40 px in two domains; trainings last one to three epochs at 32 px, so the file takes seconds
per test. Nothing here depends on ../shared/data.
"""
from __future__ import annotations

import csv
import json
import sys

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw

from generator.errors import UserError
from generator.manifest import write_rows
from trainer import data as D
from trainer import model as M
from trainer.fit import TrainConfig, train

CLASSES4 = ["capacitor", "diode", "inductor", "resistor"]
SIZE = 32
TINY = dict(backbone="scratch", epochs=2, batch_size=16, size=SIZE, width=8, depth=2, patience=5)


def _draw(cls: str, w: int, h: int, rng, background) -> Image.Image:
    im = Image.new("RGB", (w, h), background)
    d = ImageDraw.Draw(im)
    cx, cy = w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-2, 2)
    r = rng.uniform(0.25, 0.4) * min(w, h)
    if cls == "capacitor":
        d.line([cx - 4, cy - r, cx - 4, cy + r], fill="black", width=3)
        d.line([cx + 4, cy - r, cx + 4, cy + r], fill="black", width=3)
    elif cls == "diode":
        d.polygon([(cx - r, cy - r), (cx - r, cy + r), (cx + r, cy)], outline="black", width=3)
    elif cls == "inductor":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline="black", width=3)
    else:
        d.rectangle([cx - r, cy - r / 2, cx + r, cy + r / 2], outline="black", width=3)
    return im


def make_dataset(root, per: int = 10, seed: int = 0):
    """per images per class and domain: 60% train, 20% val, 20% test; mixed aspect ratios."""
    rng = np.random.default_rng(seed)
    rows = []
    for domain in ("schematic", "photo"):
        for cls in CLASSES4:
            for i in range(per):
                bg = (255, 255, 255) if domain == "schematic" else tuple(int(v) for v in rng.integers(80, 220, 3))
                im = _draw(cls, *((40, 30) if i % 2 else (30, 36)), rng, bg)
                f = f"{domain}/{cls}/{cls}_{i:02d}.png"
                (root / f).parent.mkdir(parents=True, exist_ok=True)
                im.save(root / f)
                split = "train" if i < per * 0.6 else "val" if i < per * 0.8 else "test"
                recipe = "test" if domain == "schematic" else ""  # photos are real images, not generated
                rows.append({"file": f, "label": cls, "domain": domain, "split": split, "recipe": recipe, "seed": seed})
    write_rows(root / "manifest.csv", rows)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def scratch_run(dataset, runs):
    summary = train(TrainConfig(data=str(dataset), name="tiny", runs_dir=str(runs), seed=1, **TINY))
    return runs / "tiny", summary


def cli_main(monkeypatch, capsys, *args):
    """image2circuit ARGS in this process (TensorFlow is already loaded): (exit code, stdout, stderr)."""
    from trainer import cli

    monkeypatch.setattr(sys, "argv", ["image2circuit", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


# --------------------------------------------------------------------------- pipeline


def test_pipeline_batches_shapes_labels_in_manifest_order(dataset):
    rows = D.dataset_rows(dataset)
    classes = D.class_names(rows)
    assert classes == CLASSES4
    split = D.split_of(dataset, rows, "train", classes)
    assert len(split) == 48 and set(split.domains) == {"schematic", "photo"}
    batches = D.collect(D.make_dataset(split, SIZE, 16), split.paths, SIZE)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (48, SIZE, SIZE, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255
    assert np.array_equal(y, split.labels)
    for p, label in zip(split.paths, y):
        assert f"/{classes[label]}/" in p


def test_padding_uses_the_border_colour_and_keeps_aspect(tmp_path):
    im = Image.new("RGB", (40, 10), (200, 30, 30))
    ImageDraw.Draw(im).line([0, 5, 39, 5], fill="black", width=2)  # a wire touching the border
    im.save(tmp_path / "wide.png")
    out = D.load_image(tmp_path / "wide.png", 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 30, 30] and out[-1, -1].tolist() == [200, 30, 30]
    assert out[16, 16].max() < 100  # the wire, scaled, stays in the middle row
    Image.new("RGB", (5, 5), "white").save(tmp_path / "anim.gif", save_all=True, append_images=[Image.new("RGB", (5, 5), "black")])
    assert D.load_image(tmp_path / "anim.gif", 8).shape == (8, 8, 3)  # first frame of an animation
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # transparent background: composited over white
    clear.putpixel((5, 5), (0, 0, 0, 255))
    clear.save(tmp_path / "clear.png")
    assert D.load_image(tmp_path / "clear.png", 10)[0, 0].tolist() == [255, 255, 255]
    Image.new("L", (6, 6), 77).save(tmp_path / "grey.png")
    assert D.load_image(tmp_path / "grey.png", 6)[3, 3].tolist() == [77, 77, 77]


def _ink_span(image: np.ndarray) -> float:
    ink = image.min(axis=-1) < 128
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return max(rows[-1] - rows[0], cols[-1] - cols[0]) / image.shape[0]


def test_content_crop_brings_a_small_drawing_to_a_common_scale(tmp_path):
    page = Image.new("RGB", (200, 160), (250, 248, 240))  # a symbol small in a big scanned cell
    ImageDraw.Draw(page).rectangle([120, 40, 150, 60], outline="black", width=2)
    page.save(tmp_path / "cell.png")
    assert _ink_span(D.load_image(tmp_path / "cell.png", 64)) > 0.7
    assert _ink_span(D.load_image(tmp_path / "cell.png", 64, content_crop=False)) < 0.2
    rng = np.random.default_rng(0)  # a busy background (a photo on a table): nothing to crop to
    busy = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    busy.save(tmp_path / "busy.png")
    assert np.array_equal(D.load_image(tmp_path / "busy.png", 32), D.load_image(tmp_path / "busy.png", 32, content_crop=False))
    # runs saved before the crop existed keep being fed uncropped images
    assert D.Preprocess(64).content_crop and not D.Preprocess.from_json({"size": 64}).content_crop


def test_augmentation_is_seeded_and_keeps_shapes(dataset):
    rows = D.dataset_rows(dataset)
    split = D.split_of(dataset, rows, "train", CLASSES4)

    def first_batch():
        keras.utils.set_random_seed(3)
        ds = D.make_dataset(split, SIZE, 8, shuffle=True, seed=3, augment=D.augmenter(1.0, seed=3))
        return next(iter(ds))

    a, b = first_batch(), first_batch()
    assert a[0].shape == (8, SIZE, SIZE, 3)
    assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1].numpy(), b[1].numpy())
    assert D.augmenter(0) is None


# --------------------------------------------------------------------------- models


def test_scratch_model_overfits_a_tiny_batch(dataset):
    keras.utils.set_random_seed(0)
    split = D.split_of(dataset, D.dataset_rows(dataset), "train", CLASSES4).subset(np.arange(48) % 6 == 0)
    (x, y), = D.collect(D.make_dataset(split, SIZE, 16), split.paths, SIZE)
    model = M.build_model("scratch", num_classes=4, size=SIZE, width=8, depth=2, dropout=0.0)
    assert model.output_shape == (None, 4)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=40, batch_size=len(x), verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert history.history["accuracy"][-1] == 1.0


def test_pretrained_parts_compose_to_the_full_model():
    parts = M.pretrained(3, size=32, dropout=0.2, trainable_blocks=2, weights=None)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(parts.head.predict(parts.frozen.predict(x, verbose=0), verbose=0),
                               parts.full.predict(x, verbose=0), atol=1e-5)
    assert parts.frozen.trainable_weights == []
    assert parts.head.trainable_weights and parts.full.output_shape == (None, 3)
    with pytest.raises(UserError, match="backbone"):
        M.build_model("resnet9000", num_classes=3)


# --------------------------------------------------------------------------- train + report


def test_training_writes_a_complete_run_folder(scratch_run, dataset):
    run_dir, summary = scratch_run
    for name in ("model.keras", "labels.json", "preprocess.json", "config.json", "history.csv", "metrics.json",
                 "report.md", "curves.png", "confusion_schematic.png", "confusion_photo.png"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "backup").exists() and not (run_dir / "best.weights.h5").exists()
    assert json.loads((run_dir / "labels.json").read_text()) == CLASSES4
    assert json.loads((run_dir / "preprocess.json").read_text())["size"] == SIZE
    with open(run_dir / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["domains"]) == {"schematic", "photo"}
    assert metrics["domains"]["photo"]["n"] == 8 and metrics["overall"]["n"] == 16
    assert summary["metrics"]["overall"]["n"] == 16 and summary["device"].startswith("training on")
    for png in run_dir.glob("*.png"):
        with Image.open(png) as im:
            assert im.size[0] > 50
    report = (run_dir / "report.md").read_text()
    assert report.splitlines()[2] == "| domain | n | accuracy | balanced accuracy |"
    assert f"Model: scratch, {SIZE} px, 4 mirror views averaged." in report  # what made the figures
    recipes = metrics["domains"]["schematic"]["by_generator"]["recipes"]  # which generated variants fail
    assert sum(r["n"] for r in recipes.values()) == metrics["domains"]["schematic"]["n"]
    assert "by_generator" not in metrics["domains"]["photo"] and "Generated test by recipe" in report


def test_evaluate_scores_an_extra_folder_as_its_own_domain(scratch_run, dataset, tmp_path, monkeypatch, capsys):
    run_dir, _ = scratch_run
    for cls in ("capacitor", "resistor"):  # a folder laid out <class>/<image>, plural names as people write them
        (tmp_path / f"{cls}s").mkdir()
        for i, src in enumerate(sorted((dataset / "schematic" / cls).glob("*.png"))[:3]):
            (tmp_path / f"{cls}s" / f"{i}.png").write_bytes(src.read_bytes())
    code, out, err = cli_main(monkeypatch, capsys, "evaluate", run_dir, "--images", tmp_path, "--domain", "drawn")
    assert code == 0, err
    assert "drawn" in out and "balanced accuracy" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    drawn = metrics["domains"]["drawn"]
    assert drawn["n"] == 6 and drawn["classes"]["capacitor"]["support"] == 3
    assert drawn["classes"]["diode"]["recall"] is None  # absent class: not scored
    assert metrics["overall"]["n"] == 22
    assert (run_dir / "confusion_drawn.png").is_file()
    assert "## drawn" in (run_dir / "report.md").read_text()


def test_predict_and_tflite_export_agree_with_keras(scratch_run, dataset, monkeypatch, capsys):
    run_dir, _ = scratch_run
    images = sorted((dataset / "photo").rglob("*.png"))[:3]
    code, out, err = cli_main(monkeypatch, capsys, "predict", run_dir, *images, "--json", "--top-k", "2")
    assert code == 0, err
    results = json.loads(out)
    assert [r["file"] for r in results] == [str(p) for p in images]
    assert all(len(r["top"]) == 2 and r["top"][0]["probability"] >= r["top"][1]["probability"] for r in results)

    code, out, err = cli_main(monkeypatch, capsys, "export", run_dir, "--format", "tflite")
    assert code == 0, err
    from trainer.export import tflite_predict
    from trainer.predict import load_run

    run = load_run(run_dir)
    x = np.stack([D.load_image(p, SIZE) for p in images]).astype(np.float32)
    keras_probs = run.model.predict(x, verbose=0)
    # the saved model averages the four mirror images (--tta 4): a mirrored drawing gets the same answer
    mirrored = np.ascontiguousarray(x[:, ::-1, ::-1])
    np.testing.assert_allclose(run.model.predict(mirrored, verbose=0), keras_probs, atol=1e-5)
    lite_probs = tflite_predict(run_dir / "model.tflite", x)
    np.testing.assert_allclose(lite_probs, keras_probs, atol=1e-4)
    assert [run.classes[i] for i in lite_probs.argmax(1)] == [r["top"][0]["class"] for r in results]


def test_resume_continues_from_the_interrupted_epoch(dataset, runs):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    class Record(keras.callbacks.Callback):
        epochs: list = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    cfg = TrainConfig(data=str(dataset), name="resume", runs_dir=str(runs), seed=2, **{**TINY, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Interrupt()], evaluate=False)
    run_dir = runs / "resume"
    assert (run_dir / "backup").is_dir() and not (run_dir / "model.keras").exists()
    with pytest.raises(UserError, match="other settings.*seed"):
        train(TrainConfig(**{**cfg.__dict__, "seed": 5}), evaluate=False)

    # `make train` passes --overwrite: an interrupted run with the same settings still resumes.
    summary = train(cfg, overwrite=True, callbacks=[Record()], evaluate=False)
    assert Record.epochs == [1, 2] and summary["epochs_run"] == 2
    with open(run_dir / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()
    with pytest.raises(UserError, match="already finished"):
        train(cfg, evaluate=False)
    Record.epochs = []
    train(cfg, overwrite=True, callbacks=[Record()], evaluate=False)  # a finished run is retrained
    assert Record.epochs == [0, 1, 2]


def test_pretrained_backbone_trains_on_cached_features(dataset, runs):
    import io

    from rich.console import Console

    cfg = TrainConfig(data=str(dataset), name="lite", runs_dir=str(runs), backbone="efficientnet_lite0", weights=None,
                      trainable_blocks=1, feature_passes=3, epochs=1, batch_size=16, size=SIZE)
    log = io.StringIO()
    summary = train(cfg, evaluate=False, console=Console(file=log, width=200))
    run_dir = runs / "lite"
    assert summary["epochs_run"] == 1
    # generated symbols are cached once, real photos once clean + twice augmented: 4 classes x 6 train images each
    assert f"for {4 * 6 + 3 * 4 * 6} training samples" in log.getvalue()
    assert not (run_dir / "features").exists()  # the cache is dropped once the model is saved
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.input_shape == (None, SIZE, SIZE, 3) and model.output_shape == (None, 4)
    x = D.load_image(next((dataset / "photo").rglob("*.png")), SIZE)[None].astype(np.float32)
    assert model.predict(x, verbose=0).sum() == pytest.approx(1.0, abs=1e-5)
    # the backbone model exports to TFLite like the scratch one, with the same predictions
    from trainer.export import export_run, tflite_predict

    lite = export_run(run_dir, "tflite")
    np.testing.assert_allclose(tflite_predict(lite, x), model.predict(x, verbose=0), atol=1e-4)


def test_pretrained_backbone_trains_without_photos(dataset, runs):
    """A user without photos still trains the schematic domain (only generated images to cache)."""
    cfg = TrainConfig(data=str(dataset), name="symbols-only", runs_dir=str(runs), backbone="efficientnet_lite0",
                      weights=None, trainable_blocks=0, domains=["schematic"], epochs=1, batch_size=16, size=SIZE)
    summary = train(cfg, evaluate=True)
    assert summary["epochs_run"] == 1 and summary["metrics"]["domains"]["schematic"]["n"] == 4 * 2


# --------------------------------------------------------------------------- bad input -> exit 2, one line


def test_bad_inputs_exit_2_with_one_line(dataset, runs, scratch_run, tmp_path, monkeypatch, capsys):
    run_dir, _ = scratch_run
    (runs / "unfinished").mkdir()
    (runs / "unfinished" / "config.json").write_text("{}")
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = next((dataset / "schematic").rglob("*.png"))
    unknown = make_dataset(tmp_path / "unknown", per=5)
    with open(unknown / "manifest.csv", "a") as f:
        f.write("schematic/x.png,flux_capacitor,schematic,train,,,,,\n")

    cases = [
        (["predict", "unfinished", good, "--runs-dir", runs], "has no model.keras"),
        (["predict", "never-trained", good, "--runs-dir", runs], "no run folder"),
        (["train", "--data", tmp_path / "missing", "--name", "x", "--runs-dir", runs], "does not exist"),
        (["train", "--data", unknown, "--name", "x", "--runs-dir", runs], "unknown class 'flux_capacitor'"),
        (["evaluate", run_dir, "--images", tmp_path], "--domain"),
        (["export", run_dir, "--format", "onnx2"], "unknown export format"),
        (["train", "--data", dataset, "--name", "x", "--runs-dir", runs, "--label-smoothing", "1.5"], "--label-smoothing 1.5 must be in [0, 1)"),
        (["train", "--data", dataset, "--name", "x", "--runs-dir", runs, "--ema", "1"], "--ema 1.0 must be in [0, 1)"),
        (["train", "--data", dataset, "--name", "x", "--runs-dir", runs, "--tta", "3"], "--tta 3 must be one of 1, 2, 4"),
    ]
    for args, expected in cases:
        code, out, err = cli_main(monkeypatch, capsys, *args)
        assert code == 2, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (args, err)

    # A corrupt file: one error line for it, the good file is still classified.
    code, out, err = cli_main(monkeypatch, capsys, "predict", run_dir, bad, good)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "corrupt.png: not a readable image" in err
    assert out.strip().startswith(f"{good}: ")


def test_real_entry_point_reports_a_missing_run_in_one_line(cli, tmp_path):
    """The installed command (subprocess): exit code 2 and a single `error:` line, no traceback."""
    result = cli("predict", "nothing-here", tmp_path / "a.png", "--runs-dir", tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("error: no run folder") and "Traceback" not in result.stderr
