"""`image2circuit bench-realism --quick`: end to end on tiny inputs, report fields, caching of real features."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from generator.errors import UserError
from trainer import ablation as A

REAL_CLASSES = ("capacitor", "diode", "resistor")
RESULT_FIELDS = {"balanced_accuracy", "balanced_accuracy_std", "balanced_accuracy_runs", "accuracy", "recall",
                 "delta_vs_all"}


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Group mode, so the command is called by its name as in image2circuit."""

    A.register(app)
    return app


def _fake_real(root: Path) -> Path:
    """A tiny evaluation folder standing in for ../shared/data: handdrawn/ from clean generated symbols, no cad/."""
    from generator.generate import make_image

    for cls in REAL_CLASSES:
        (root / "handdrawn" / cls).mkdir(parents=True)
        for i in range(4):
            image, _ = make_image(cls, seed=123, index=i, size=48, realism=False)
            Image.fromarray(image).save(root / "handdrawn" / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Two quick runs sharing one cache, counting every backbone pass over the real images."""
    pytest.importorskip("tensorflow")
    tmp = tmp_path_factory.mktemp("ablation")
    real, runs, cache = _fake_real(tmp / "real"), tmp / "runs", tmp / "cache"
    from trainer import fit

    calls: list[str] = []
    original = fit.extract_features

    def counting(*args, **kwargs):
        what = kwargs.get("what", args[7] if len(args) > 7 else "")
        calls.append(what)
        return original(*args, **kwargs)

    args = ["bench-realism", "--quick", "--real", str(real), "--cache", str(cache), "--runs-dir", str(runs)]
    results = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fit, "extract_features", counting)
        for _ in range(2):
            result = CliRunner().invoke(_app(), args)
            assert result.exit_code == 0, (result.output[-3000:], result.exception)
            results.append((result, list(calls)))
    folders = sorted(runs.glob("bench-realism-*"))
    assert len(folders) == 2, folders
    return results, folders


@pytest.mark.slow
def test_quick_writes_json_and_markdown(quick_runs):
    results, folders = quick_runs
    report = json.loads((folders[0] / "ablation.json").read_text())
    assert report["quick"] is True and report["command"].startswith("image2circuit bench-realism --quick")
    assert [c["name"] for c in report["configs"]] == list(A.QUICK_CONFIGS)
    assert set(report["eval_sets"]) == {"handdrawn", "cad", "schematic_test"}
    hd = report["eval_sets"]["handdrawn"]
    assert hd["status"] == "ok" and hd["n"] == 3 * len(REAL_CLASSES)  # --quick caps at 3 per class
    assert set(hd["per_class_n"]) == set(REAL_CLASSES)
    assert report["eval_sets"]["cad"]["status"] == A.MISSING
    for c in report["configs"]:
        assert {"name", "description", "off", "mix", "realism", "train_images", "epochs_run", "results"} <= set(c)
        assert c["results"]["cad"] is None
        for k in ("handdrawn", "schematic_test"):
            res = c["results"][k]
            assert RESULT_FIELDS <= set(res) and 0 <= res["balanced_accuracy"] <= 1
        assert set(c["results"]["handdrawn"]["recall"]) == set(REAL_CLASSES)
    plain = next(c for c in report["configs"] if c["name"] == "plain")
    assert plain["realism"] is False and plain["mix"]["hand"] == 0 and plain["mix"]["wires"] == 0
    base = report["configs"][0]
    assert base["results"]["handdrawn"]["delta_vs_all"] == 0
    assert {n["feature"] for n in report["not_ablated"]} == {"tight crops", "bold CAD lines"}

    md = (folders[0] / "ablation.md").read_text()
    assert md.splitlines()[2] == f"Command: `{report['command']}`"
    table = [line for line in md.splitlines() if line.startswith("| plain |")]
    assert table and A.MISSING in table[0]  # the balanced-accuracy row shows the missing cad folder
    assert "Per-class recall on handdrawn" in md and "Per-class recall on cad" not in md
    assert "bench-realism" in results[0][0].output and "Balanced accuracy" in results[0][0].output


@pytest.mark.slow
def test_real_features_are_computed_once_and_cached(quick_runs):
    results, folders = quick_runs
    first_calls = results[0][1]
    # once for the handdrawn folder, not once per configuration
    assert sum("handdrawn" in w for w in first_calls) == 1
    assert json.loads((folders[0] / "ablation.json").read_text())["real_feature_extractions"] == 1
    # the rerun reuses every cache: no backbone pass at all, same figures
    assert results[1][1] == first_calls
    again = json.loads((folders[1] / "ablation.json").read_text())
    assert again["real_feature_extractions"] == 0 and again["eval_sets"]["handdrawn"]["from_cache"] is True
    assert all(c["dataset_from_cache"] for c in again["configs"])
    first = json.loads((folders[0] / "ablation.json").read_text())
    for a, b in zip(first["configs"], again["configs"]):
        assert a["results"]["schematic_test"]["balanced_accuracy"] == pytest.approx(
            b["results"]["schematic_test"]["balanced_accuracy"])


def test_bad_options_are_one_line_errors(tmp_path):
    for args, expected in ((["--configs", "all,bogus"], "unknown --configs bogus"),
                           (["--per-class", "0"], "--per-class 0 must be at least 2"),
                           (["--real", str(tmp_path / "nowhere")], "no such folder")):
        result = CliRunner().invoke(_app(), ["bench-realism", "--cache", str(tmp_path), *args])
        assert isinstance(result.exception, UserError), result.output
        assert expected in str(result.exception) and "\n" not in str(result.exception)


def test_configurations_switch_off_one_feature_each():
    from generator.render import StyleMix

    default = StyleMix()
    for name in A.DEFAULT_CONFIGS:
        mix, realism = A.mix_of(name)
        changed = [k for k, v in vars(mix).items() if v != getattr(default, k)] + ([] if realism else ["realism"])
        assert len(changed) == {"all": 0, "plain": 8}.get(name, 1), (name, changed)
    assert len({A._digest(A.generator_config(n, A.Settings())) for n in A.ABLATIONS}) == len(A.ABLATIONS)
