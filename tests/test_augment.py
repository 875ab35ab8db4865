"""Capture-condition augmentation: shapes, determinism, strict argument checks, ink survives, preview sheet."""
from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import typer  # noqa: E402
from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from generator import augment  # noqa: E402
from generator.errors import UserError  # noqa: E402
from generator.textures import KINDS, paper_texture  # noqa: E402

SIZE = 64


def symbol(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """A clean ink-on-white line drawing made here (no dependency on the renderer)."""
    return augment._standin_symbol("resistor", seed, size)


def lum(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def ink_visible(img: np.ndarray, margin: float = 15.0) -> bool:
    """Some pixels are clearly darker than the paper (the median pixel)."""
    y = lum(img)
    return float(np.percentile(y, 0.5)) < float(np.median(y)) - margin


@pytest.mark.parametrize("kind", KINDS)
def test_each_paper_kind_is_light_uint8_and_seeded(kind):
    a = paper_texture(kind, (40, 56), np.random.default_rng(3))
    b = paper_texture(kind, (40, 56), np.random.default_rng(3))
    c = paper_texture(kind, (40, 56), np.random.default_rng(4))
    assert a.shape == (40, 56, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert lum(a).mean() > 140  # a background, light enough for dark ink to read


def test_unknown_paper_kind_is_a_user_error():
    with pytest.raises(UserError, match="unknown paper kind"):
        paper_texture("papyrus", 32, np.random.default_rng(0))


@pytest.mark.parametrize("ink", ["as_rendered", "black", "blue", "pencil"])
def test_composite_keeps_ink_on_paper(ink):
    sym = symbol()
    out = augment.composite_on_paper(sym, np.random.default_rng(0), kind="grid", ink=ink)
    assert out.shape == sym.shape and out.dtype == np.uint8
    strokes = lum(sym) < 128
    assert lum(out)[strokes].mean() < lum(out)[~strokes].mean() - 60


def test_composite_accepts_an_ink_mask():
    sym = symbol()
    mask = (lum(sym) < 128).astype(np.float32)
    out = augment.composite_on_paper(sym, np.random.default_rng(0), kind="plain", mask=mask, ink="black")
    assert lum(out)[mask > 0].mean() < lum(out)[mask == 0].mean() - 60
    with pytest.raises(UserError, match="mask shape"):
        augment.composite_on_paper(sym, np.random.default_rng(0), mask=mask[:10])


@pytest.mark.parametrize("strength", augment.STRENGTHS)
def test_schematic_pipeline_shape_determinism_and_ink(strength):
    img = augment.composite_on_paper(symbol(), np.random.default_rng(1), kind="plain", ink="black")
    p1 = augment.schematic_pipeline(strength, seed=7, size=SIZE)
    p2 = augment.schematic_pipeline(strength, seed=7, size=SIZE)
    outs1 = [augment.apply(p1, img) for _ in range(4)]
    outs2 = [augment.apply(p2, img) for _ in range(4)]
    for a, b in zip(outs1, outs2):  # same seed, same sequence of calls -> identical
        assert a.shape == img.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)
    p3 = augment.schematic_pipeline(strength, seed=8, size=SIZE)
    outs3 = [augment.apply(p3, img) for _ in range(4)]
    assert any(not np.array_equal(a, c) for a, c in zip(outs1, outs3))
    # ink must survive every draw of the strongest settings
    for s in range(12):
        assert ink_visible(augment.apply(p1, img, seed=s)), f"{strength} seed {s} lost the ink"


def test_per_image_seed_ignores_call_order():
    """Workers process images in any order: apply(seed=s) depends only on (image, s)."""
    img = augment.composite_on_paper(symbol(), np.random.default_rng(1), kind="plain")
    pipe = augment.schematic_pipeline("photo", seed=0, size=SIZE)
    first = augment.apply(pipe, img, seed=42)
    for s in range(3):
        augment.apply(pipe, img, seed=s)
    other = augment.schematic_pipeline("photo", seed=99, size=SIZE)
    assert np.array_equal(first, augment.apply(pipe, img, seed=42))
    assert np.array_equal(first, augment.apply(other, img, seed=42))


def test_transforms_fire_independently_after_reseed():
    """Guards against albumentations' per-transform set_random_seed (all p=0.5 transforms fire together)."""
    pipe = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.Transpose(p=0.5)],
                     strict=True, save_applied_params=True)
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    seen = set()
    for s in range(20):
        augment.reseed(pipe, s)
        seen.add(tuple(t[0] for t in pipe(image=img)["applied_transforms"]))
    assert len(seen) > 2


def test_strict_compose_rejects_a_misspelled_argument():
    with pytest.raises(ValueError, match="blurr_limit"):
        with pytest.warns(UserWarning):
            A.Compose([A.Blur(blurr_limit=3)], strict=True, seed=0)


def test_unknown_strength_is_a_user_error():
    with pytest.raises(UserError, match="unknown augmentation strength"):
        augment.schematic_pipeline("heavy", seed=0)


def test_photo_pipeline_any_input_to_target_size():
    rng = np.random.default_rng(0)
    pipe = augment.photo_pipeline(seed=3, size=48)
    for h, w in [(30, 80), (64, 64), (100, 40)]:
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        out = augment.apply(pipe, img, seed=5)
        assert out.shape == (48, 48, 3) and out.dtype == np.uint8
        assert np.array_equal(out, augment.apply(augment.photo_pipeline(seed=9, size=48), img, seed=5))
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert not np.array_equal(augment.apply(pipe, img, seed=1), augment.apply(pipe, img, seed=2))


def test_realistic_is_reproducible_and_reports_its_knobs():
    sym = symbol()
    a, pa = augment.realistic(sym, np.random.default_rng(11))
    b, pb = augment.realistic(sym, np.random.default_rng(11))
    assert np.array_equal(a, b) and pa == pb
    assert a.shape == sym.shape and a.dtype == np.uint8
    assert {"strength", "paper", "ink", "ink_opacity", "aug_seed"} <= set(pa)
    assert pa["strength"] in augment.STRENGTHS and pa["paper"] in KINDS
    c, _ = augment.realistic(sym, np.random.default_rng(12))
    assert not np.array_equal(a, c)


def test_realistic_follows_the_mix():
    sym = symbol(48)
    rng = np.random.default_rng(0)
    strengths = {augment.realistic(sym, rng, mix={"scan": 1.0, "photo": 0.0})[1]["strength"] for _ in range(8)}
    assert strengths == {"scan"}
    for bad in ({"blurry": 1.0}, {"scan": -1.0}, {"scan": 0.0}, {}):
        with pytest.raises(UserError):
            augment.realistic(sym, rng, mix=bad)


def test_bad_image_is_a_user_error():
    with pytest.raises(UserError, match="RGB uint8"):
        augment.realistic(np.zeros((8, 8), np.float32), np.random.default_rng(0))


def _cli():
    app = typer.Typer()
    augment.register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    return app


def test_preview_mix_schematic_writes_png(tmp_path):
    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(_cli(), ["preview-mix", "--n", "2", "--size", "48", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and Image.open(out).size[0] > 0


def test_preview_mix_photo_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("resistor", "diode"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "photos" / cls / "a.png")
    out = tmp_path / "photo.png"
    res = CliRunner().invoke(_cli(), ["preview-mix", "--domain", "photo", "--images", str(tmp_path / "photos"),
                                      "--n", "2", "--size", "48", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file()


def test_preview_mix_missing_folder_is_a_user_error(tmp_path):
    res = CliRunner().invoke(_cli(), ["preview-mix", "--domain", "photo", "--images", str(tmp_path / "nope"),
                                      "--out", str(tmp_path / "x.png")])
    assert isinstance(res.exception, UserError) and "does not exist" in str(res.exception)
    assert not (tmp_path / "x.png").exists()
