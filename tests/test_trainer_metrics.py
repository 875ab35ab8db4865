"""Trainer bookkeeping without TensorFlow: metrics from a hand-made confusion, weights, report, folders."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from generator.errors import UserError
from generator.manifest import write_rows
from trainer import data as D
from trainer import evaluate as E
from trainer import report as R

CLASSES3 = ["capacitor", "diode", "resistor"]


def test_metrics_match_hand_computed_example():
    # true capacitor x4: 3 right, 1 -> diode; true diode x2: 1 right, 1 -> resistor; true resistor x4: all right.
    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    cm = E.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[3, 1, 0], [0, 1, 1], [0, 0, 4]]
    s = E.scores(cm, CLASSES3)
    assert s["n"] == 10
    assert s["accuracy"] == pytest.approx(0.8)
    assert s["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    c = s["classes"]
    assert (c["capacitor"]["precision"], c["capacitor"]["recall"]) == (pytest.approx(1.0), pytest.approx(0.75))
    assert c["capacitor"]["f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert c["diode"]["precision"] == pytest.approx(0.5) and c["diode"]["f1"] == pytest.approx(0.5)
    assert c["resistor"]["precision"] == pytest.approx(0.8) and c["resistor"]["recall"] == pytest.approx(1.0)
    assert c["resistor"]["f1"] == pytest.approx(2 * 0.8 / 1.8)
    assert [c[k]["support"] for k in CLASSES3] == [4, 2, 4]
    assert s["macro_f1"] == pytest.approx(np.mean([2 * 0.75 / 1.75, 0.5, 2 * 0.8 / 1.8]))


def test_class_absent_from_a_domain_does_not_count_in_balanced_accuracy():
    # No diode images in this domain; one capacitor was wrongly called a diode.
    cm = E.confusion_matrix([0, 0, 2, 2], [0, 1, 2, 2], 3)
    s = E.scores(cm, CLASSES3)
    assert s["classes"]["diode"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert s["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["accuracy"] == pytest.approx(0.75)
    empty = E.scores(np.zeros((3, 3), int), CLASSES3)
    assert empty["accuracy"] is None and empty["balanced_accuracy"] is None


def test_summary_pools_domains_and_report_starts_with_the_domain_table():
    def result(name, labels, preds):
        probs = np.eye(3, dtype=np.float32)[preds]
        return E.DomainResult(name, "src", D.Split([f"{i}.png" for i in labels], np.array(labels), [name] * len(labels)), probs)

    m = E.summarise(CLASSES3, [result("photo", [0, 1, 2], [0, 1, 1]), result("handdrawn", [0, 0], [0, 0])])
    assert m["overall"]["n"] == 5 and m["overall"]["accuracy"] == pytest.approx(0.8)
    assert m["domains"]["photo"]["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["domains"]["handdrawn"]["balanced_accuracy"] == pytest.approx(1.0)
    json.dumps(m)  # metrics.json must be plain JSON
    md = R.markdown({**m, "run": "r"}).splitlines()
    table = [line for line in md if line.startswith("|")]
    assert table[0] == "| domain | n | accuracy | balanced accuracy |"
    assert table[2:5] == ["| photo | 3 | 66.7% | 66.7% |", "| handdrawn | 2 | 100.0% | 100.0% |", "| overall | 5 | 80.0% | 66.7% |"]


def test_generated_test_is_broken_down_by_recipe_and_knob():
    """A user who adds a variant sees its accuracy and what it is taken for; photos are not counted."""
    def row(recipe, label, **params):
        return {"recipe": recipe, "label": label, "params": json.dumps({"recipe": recipe, **params}) if recipe else ""}

    rows = [row("cell", "capacitor", style="hand", canvas=30, mix={"strength": "scan", "paper": "grid"}, labels=["B1"]),
            row("cell", "capacitor", style="hand", canvas=160, mix={"strength": "clean", "paper": "plain"}),
            row("cell", "capacitor", style="cad", canvas=160, mix={"strength": "clean", "paper": "plain"}),
            row("zigzag", "resistor", style="cad", canvas=160, mix={"strength": "clean", "paper": "plain"}, wires=2),
            row("", "resistor")]  # a photo
    predicted = np.array([1, 1, 0, 2, 0])  # both hand-drawn cells taken for diodes
    m = E.summarise(CLASSES3, [E.DomainResult("schematic", "src", D.Split([str(i) for i in range(5)], np.array([0, 0, 0, 2, 2]),
                                                                       ["schematic"] * 5), np.eye(3)[predicted], rows=rows)])
    b = m["domains"]["schematic"]["by_generator"]
    assert list(b["recipes"]) == ["cell", "zigzag"]  # hardest first
    assert b["recipes"]["cell"] == {"class": "capacitor", "n": 3, "accuracy": pytest.approx(1 / 3), "taken_for": {"diode": 2}}
    assert b["knobs"]["style"] == {"cad": {"n": 2, "accuracy": 1.0}, "hand": {"n": 2, "accuracy": 0.0}}
    assert b["knobs"]["resolution"]["low-res (scaled up)"] == {"n": 1, "accuracy": 0.0}
    assert b["knobs"]["labels"]["yes"]["n"] == 1 and b["knobs"]["wires"]["yes"] == {"n": 1, "accuracy": 1.0}
    json.dumps(m)
    md = R.markdown({**m, "run": "r"})
    assert "| cell | capacitor | 3 | 33.3% | diode 2 |" in md
    assert "| style | hand | 2 | 0.0% |" in md
    assert R.hardest_recipes(m) == "schematic: hardest generated recipes cell 33.3%"  # printed after training


def test_balanced_weights_equalise_classes_and_domains():
    labels = np.array([0] * 6 + [1] * 2 + [0] * 2 + [1] * 2)
    domains = ["schematic"] * 8 + ["photo"] * 4
    split = D.Split([str(i) for i in range(12)], labels, domains)
    w = D.sample_weights(split, 2, "class")
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == 0].sum() == pytest.approx(w[labels == 1].sum())
    w = D.sample_weights(split, 2, "class+domain")
    doms = np.array(domains)
    assert w[doms == "schematic"].sum() == pytest.approx(w[doms == "photo"].sum())
    m = doms == "schematic"
    assert w[m & (labels == 0)].sum() == pytest.approx(w[m & (labels == 1)].sum())
    assert np.all(D.sample_weights(split, 2, "none") == 1)


def _png(path, colour=(255, 255, 255)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), colour).save(path)


def test_evaluation_folder_maps_folder_names_and_reports_the_rest(tmp_path):
    for name, n in (("resistor", 2), ("diode", 1), ("Transistors", 1), ("mystery", 1)):
        for i in range(n):
            _png(tmp_path / name / f"{i}.png")
    split, left = D.folder_split(tmp_path, "handmade", ["diode", "resistor"])
    assert sorted(zip(split.labels.tolist(), [p.split("/")[-2] for p in split.paths])) == [(0, "diode"), (1, "resistor"), (1, "resistor")]
    assert left["unknown_folders"] == ["mystery"]
    assert left["untrained"] == {"transistor": 1}  # mapped by the photo importer's synonyms, but not trained
    with pytest.raises(UserError, match="does not exist"):
        D.folder_split(tmp_path / "nope", "x", ["diode"])


def _manifest(root, rows):
    for r in rows:
        _png(root / r["file"])
    write_rows(root / "manifest.csv", rows)


def test_dataset_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist") as e:
        D.dataset_rows(tmp_path / "missing")
    assert "\n" not in str(e.value)
    ok = [{"file": "photo/diode/a.png", "label": "diode", "domain": "photo", "split": "train"}]
    _manifest(tmp_path / "ds", ok)
    with pytest.raises(UserError, match="domain.*schematic.*photo"):
        D.dataset_rows(tmp_path / "ds", ["schematic"])
    _manifest(tmp_path / "bad", ok + [{"file": "photo/x/b.png", "label": "flux_capacitor", "domain": "photo", "split": "test"}])
    with pytest.raises(UserError, match="unknown class 'flux_capacitor'"):
        D.dataset_rows(tmp_path / "bad")
    (tmp_path / "ds" / "photo/diode/a.png").unlink()
    with pytest.raises(UserError, match="missing"):
        D.dataset_rows(tmp_path / "ds")


def test_real_evaluation_folders_map_to_classes():
    from conftest import shared_folder

    for name in ("handdrawn", "cad"):
        folder = shared_folder(name)
        split, left = D.folder_split(folder, name, list(D.CLASSES))
        assert not left["unknown_folders"], f"{name}: folders not mapped to a class: {left['unknown_folders']}"
        assert len(set(split.labels.tolist())) >= 6 and len(split) > 500
