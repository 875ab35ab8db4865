"""The symbol generator: every recipe renders, output is deterministic and resumable, bad input is refused."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from generator import CLASSES
from generator.catalogue import CATALOGUE, Recipe, check_catalogue
from generator.errors import UserError
from generator.generate import generate
from generator.render import StyleMix, render


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("cls,recipe", [(c, r) for c in CLASSES for r in CATALOGUE[c]], ids=lambda x: getattr(x, "name", x))
@pytest.mark.parametrize("style", ["cad", "hand"])
def test_every_recipe_renders_a_visible_symbol_inside_the_frame(cls, recipe, style):
    mix = StyleMix(hand=1.0 if style == "hand" else 0.0, wires=0, labels=0, neighbour=0, lowres=0)
    for seed in range(3):
        r = render(cls, np.random.default_rng([seed, 1]), 64, mix, recipe=recipe.name)
        assert r.params["recipe"] == recipe.name
        assert r.image.shape == (64, 64, 3) and r.image.dtype == np.uint8
        ink = r.mask > 0.3
        assert ink.sum() > 15, "blank image"
        # the symbol stays inside the frame: ink touches at most two opposite borders (cut leads)
        assert sum([ink[0].any(), ink[-1].any(), ink[:, 0].any(), ink[:, -1].any()]) <= 2
        again = render(cls, np.random.default_rng([seed, 1]), 64, mix, recipe=recipe.name)
        assert np.array_equal(r.image, again.image), "same seed, same pixels"


@pytest.mark.parametrize("pnp", [False, True])
@pytest.mark.parametrize("meet", [False, True])
@pytest.mark.parametrize("head", ["filled", "open"])
def test_every_hand_drawn_bjt_variant_renders_in_frame(monkeypatch, pnp, meet, head):
    """The "K" transistor's knobs (arms from one point, open arrowheads) each draw a whole symbol."""
    recipe = Recipe("bjt_k", "SimpleBjt", {"pnp": pnp, "meet": meet, "head": head})
    monkeypatch.setitem(CATALOGUE, "transistor", [recipe])
    mix = StyleMix(hand=0.0, wires=0, labels=0, neighbour=0, lowres=0)
    r = render("transistor", np.random.default_rng(0), 64, mix)
    ink = r.mask > 0.3
    assert ink.sum() > 30 and not any([ink[0].any(), ink[-1].any(), ink[:, 0].any(), ink[:, -1].any()])
    assert r.params["args"] == {"pnp": pnp, "meet": meet, "head": head}


@pytest.mark.parametrize("gap", [0.15, 0.35])
@pytest.mark.parametrize("overhang", [0.0, 0.1])
@pytest.mark.parametrize("split,bubble,arrow", [(False, False, False), (True, True, True)])
def test_every_simple_mosfet_variant_renders_in_frame(monkeypatch, gap, overhang, split, bubble, arrow):
    """The blackboard MOSFET's knobs (wide gate gap, legs at the channel ends) each draw a whole symbol."""
    args = {"gap": gap, "overhang": overhang, "split": split, "bubble": bubble, "arrow": arrow, "lead": 0.3, "legs": 0.2}
    monkeypatch.setitem(CATALOGUE, "transistor", [Recipe("mos", "SimpleMosfet", args)])
    r = render("transistor", np.random.default_rng(0), 64, StyleMix(hand=0.0, wires=0, labels=0, neighbour=0, lowres=0))
    ink = r.mask > 0.3
    assert ink.sum() > 30 and not any([ink[0].any(), ink[-1].any(), ink[:, 0].any(), ink[:, -1].any()])
    assert r.params["args"] == args


def test_catalogue_entry_naming_a_missing_element_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(CATALOGUE, "resistor", CATALOGUE["resistor"] + [Recipe("typo", "ResistorIEEEE")])
    with pytest.raises(UserError, match="ResistorIEEEE.*does not exist"):
        check_catalogue()


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    a = generate(tmp_path / "a", per_class=3, size=48, seed=5, workers=1, progress=False)
    b = generate(tmp_path / "b", per_class=3, size=48, seed=5, workers=2, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert (tmp_path / "a/manifest.csv").read_bytes() == (tmp_path / "b/manifest.csv").read_bytes()
    assert a["counts"] == b["counts"]
    generate(tmp_path / "c", per_class=3, size=48, seed=6, workers=1, progress=False)
    assert digest(tmp_path / "c") != digest(tmp_path / "a")


def test_manifest_card_and_splits_are_consistent(tmp_path):
    out = tmp_path / "ds"
    card = generate(out, per_class=20, size=32, seed=1, classes=["resistor", "diode"], workers=1, progress=False)
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == 40
    assert {r["label"] for r in rows} == {"resistor", "diode"}
    for r in rows:
        assert (out / r["file"]).is_file()
        assert r["file"].startswith(f"schematic/{r['label']}/")
        assert r["split"] in ("train", "val", "test")
        assert json.loads(r["params"])["recipe"] == r["recipe"]
    assert {r["split"] for r in rows} >= {"train", "test"}
    counted = sum(n for c in card["counts"]["schematic"].values() for n in c.values())
    assert counted == 40
    assert json.loads((out / "dataset.json").read_text())["generator"]["seed"] == 1


def test_interrupted_run_resumes_without_redoing_finished_images(tmp_path, monkeypatch):
    import generator.generate as g

    out = tmp_path / "ds"
    calls = {"n": 0}
    real = g._work

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(g, "_work", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate(out, per_class=4, size=32, seed=2, classes=["resistor", "capacitor"], workers=1, progress=False)
    assert not (out / "manifest.csv").exists()
    assert not list(out.rglob("*.tmp"))
    calls["n"] = -100
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    assert len(before) == 4
    generate(out, per_class=4, size=32, seed=2, classes=["resistor", "capacitor"], workers=1, progress=False)
    assert calls["n"] == -100 + 4, "only the unfinished images are rendered again"
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    fresh = tmp_path / "fresh"
    generate(fresh, per_class=4, size=32, seed=2, classes=["resistor", "capacitor"], workers=1, progress=False)
    assert digest(out) == digest(fresh)


@pytest.mark.parametrize("args,message", [
    (["--classes", "resistr"], "unknown class 'resistr'"),
    (["--per-class", "0"], "--per-class must be positive"),
    (["--per-class", "-3"], "--per-class must be positive"),
])
def test_bad_arguments_give_one_line_and_exit_2(cli, tmp_path, args, message):
    r = cli("generate", "--out", tmp_path / "x", "--per-class", "2", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_folder_holding_a_different_dataset_is_refused(cli, tmp_path):
    out = tmp_path / "ds"
    generate(out, per_class=2, size=32, seed=0, classes=["resistor"], workers=1, progress=False)
    r = cli("generate", "--out", out, "--per-class", "2", "--size", "32", "--seed", "9", "--classes", "resistor")
    assert r.returncode == 2 and "holds a different dataset" in r.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    r = cli("generate", "--out", other, "--per-class", "2")
    assert r.returncode == 2 and "not an image2circuit dataset" in r.stderr


def test_unwritable_folder_is_refused(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = cli("generate", "--out", blocker / "ds", "--per-class", "2")
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_symbols_lists_every_recipe_and_preview_writes_a_sheet(cli, tmp_path):
    r = cli("symbols")
    assert r.returncode == 0
    for cls in CLASSES:
        assert cls in r.stdout
        for recipe in CATALOGUE[cls]:  # a user picks --recipe NAME from this list
            assert recipe.name in r.stdout, recipe.name
    out = tmp_path / "sheet.png"
    r = cli("preview", "diode", "--n", "4", "--size", "48", "--out", out)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(out).size[0] >= 4 * 48


def test_preview_beside_puts_real_images_under_the_generated_ones(cli, tmp_path):
    from PIL import Image

    real = tmp_path / "real"
    (real / "Diodes").mkdir(parents=True)  # any alias of a class name
    for i in range(3):
        Image.new("RGB", (40, 30), (255, 0, 0)).save(real / "Diodes" / f"d{i}.png")
    (real / "notes.txt").write_text("not an image")
    plain, beside = tmp_path / "plain.png", tmp_path / "beside.png"
    assert cli("preview", "diode", "--n", "4", "--size", "48", "--out", plain).returncode == 0
    r = cli("preview", "diode", "--n", "4", "--size", "48", "--out", beside, "--beside", real)
    assert r.returncode == 0, r.stderr
    assert "3 real images" in r.stdout
    rows_plain, rows_beside = Image.open(plain).size[1], Image.open(beside).size[1]
    assert rows_beside == 2 * rows_plain  # the generated row, then a row of real ones
    sheet = np.asarray(Image.open(beside).convert("RGB"))
    lower = sheet[rows_plain:]
    assert ((lower[..., 0] > 200) & (lower[..., 1] < 50)).any()  # the red real images are in the lower row


def test_preview_beside_refuses_a_folder_without_that_class(cli, tmp_path):
    (tmp_path / "resistor").mkdir()
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "resistor" / "r.png")
    r = cli("preview", "diode", "--n", "2", "--size", "48", "--out", tmp_path / "s.png", "--beside", tmp_path)
    assert r.returncode == 2 and "no images of diode" in r.stderr and "Traceback" not in r.stderr
    r = cli("preview", "diode", "--n", "2", "--size", "48", "--out", tmp_path / "s.png", "--beside", tmp_path / "nope")
    assert r.returncode == 2 and "does not exist" in r.stderr and not (tmp_path / "s.png").exists()
