"""`image2circuit bench`: the quick smoke run writes a complete report; the GPU headline logic; JAX backend."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from conftest import run_cli

from trainer import bench as B

SETTING_FIELDS = {"device", "backend", "threads", "xla", "precision", "batch_size", "size", "width", "train_img_s",
                  "epoch_s", "warmup_s", "infer_img_s", "peak_rss_mb", "peak_gpu_mb"}
MACHINE_FIELDS = {"cpu_model", "cores", "gpu_name", "driver", "python", "tensorflow", "keras", "backend"}


def _only_report(runs: Path) -> Path:
    folders = sorted(runs.glob("bench-*"))
    assert len(folders) == 1, folders
    return folders[0]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick bench through the CLI, shared by the tests below (it takes tens of seconds, not minutes)."""
    if not importlib.util.find_spec("tensorflow"):
        pytest.skip("tensorflow is not installed: the default bench (and its tf.data pipeline part) needs it")
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("bench", "--quick", "--runs-dir", runs, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = _only_report(runs)
    return result, folder, json.loads((folder / "bench.json").read_text())


@pytest.mark.slow
def test_quick_bench_writes_documented_report(quick):
    result, folder, report = quick
    assert folder.name.startswith("bench-") and len(folder.name) == len("bench-YYYYMMDD-HHMM")
    assert MACHINE_FIELDS <= set(report["machine"])
    assert report["machine"]["backend"] == "tensorflow" and report["quick"] is True

    settings = report["settings"]
    assert settings and all(SETTING_FIELDS <= set(s) for s in settings)
    for s in settings:
        assert s["train_img_s"] > 0 and s["infer_img_s"] > 0 and s["epoch_s"] > 0 and s["peak_rss_mb"] > 0, s
    threads = {s["threads"] for s in settings}
    assert {1, os.cpu_count()} == threads  # each thread setting ran in its own worker process

    p = report["pipeline"]
    assert {"end_to_end_img_s", "model_only_img_s", "efficiency"} <= set(p)
    assert p["efficiency"] == pytest.approx(p["end_to_end_img_s"] / p["model_only_img_s"], rel=0.02)
    assert {"naive_matplotlib_img_s", "shipped_1_worker_img_s", "shipped_all_cores_img_s"} <= set(report["generator"])
    assert report["sweep"] and all(r["ms_per_image"] > 0 and r["epoch_s"] > 0 for r in report["sweep"])
    assert {"headline", "by_backbone"} <= set(report["speedup"])
    assert report["epoch_images"]["count"] > 0 and report["epoch_images"]["source"]

    md = (folder / "bench.md").read_text()
    assert "Model-only settings" in md and "Input pipeline" in md and "Size sweep" in md
    png = (folder / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert not list(folder.glob(".*.tmp"))  # written atomically: no temporary files left
    assert "Model-only settings" in result.stdout  # the rich tables are printed too


@pytest.mark.slow
def test_no_gpu_is_said_clearly(quick):
    if B.nvidia_gpus():
        pytest.skip("this machine has a GPU: the CPU-only message does not apply")
    result, _, report = quick
    assert B.NO_GPU in result.stdout
    assert report["speedup"]["no_gpu"] is True and report["speedup"]["message"] == B.NO_GPU
    assert report["machine"]["gpu_name"] is None
    assert all(s["device"] == "cpu" for s in report["settings"])


@pytest.mark.parametrize("args, message", [
    (["--parts", "settings,nonsense"], "unknown --parts nonsense"),
    (["--backend", "mxnet"], "unknown --backend 'mxnet'"),
    (["--backbone", "resnet"], "unknown --backbone resnet"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    result = run_cli("bench", "--quick", "--runs-dir", tmp_path, *args, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def _setting(device, threads, img_s, backbone="scratch", xla=False):
    s = {"device": device, "backend": "tensorflow", "threads": threads, "xla": xla, "precision": "float32",
         "batch_size": 32, "backbone": backbone, "train_img_s": img_s}
    s["label"] = B._label(s)
    return s


def test_gpu_speedup_headline_is_over_the_best_cpu_setting():
    settings = [_setting("cpu", 1, 10.0), _setting("cpu", 2, 18.0), _setting("cpu", 2, 20.0, xla=True),
                _setting("gpu", None, 400.0), _setting("gpu", None, 100.0, xla=True)]
    sp = B.speedups(settings, gpu_found=True, gpu_note=None)
    v = sp["by_backbone"]["scratch"]
    assert v["gpu_over_best_cpu"] == 20.0 and v["all_cores_over_1_thread"] == 2.0
    assert v["xla_over_no_xla_cpu"] == pytest.approx(20 / 18, abs=0.01)
    assert "20.0x faster" in sp["headline"] and sp["no_gpu"] is False
    assert [s["speedup_vs_best_cpu"] for s in settings] == [0.5, 0.9, 1.0, 20.0, 5.0]


def test_sweep_fit_recovers_the_size_exponent():
    # ms/image growing with the pixel count (size squared) must give exponent 2 and the 96 px cost.
    sweep = [{"size": s, "width": 32, "batch_size": 32, "train_img_s": 1000 / (4.0 * (s / 96) ** 2)} for s in (32, 64, 96, 128)]
    rows, fit = B.sweep_summary(sweep, n_epoch=2000)
    assert fit["32"] == {"ms_per_image_at_96": 4.0, "exponent": 2.0}
    assert rows[2]["epoch_s"] == pytest.approx(8.0)  # 2000 images x 4 ms


@pytest.mark.slow
def test_jax_backend_runs_the_same_model_without_tensorflow(tmp_path):
    if not importlib.util.find_spec("jax"):
        pytest.skip("jax is not installed (pip install jax, or the project's jax extra) - the JAX backend is optional")
    result = run_cli("bench", "--quick", "--backend", "jax", "--parts", "settings", "--runs-dir", tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((_only_report(tmp_path) / "bench.json").read_text())
    assert report["machine"]["backend"] == "jax"
    assert report["settings"] and all(s["backend"] == "jax" and s["train_img_s"] > 0 for s in report["settings"])
    assert all(w.get("keras_backend") == "jax" and w.get("tensorflow_imported") is False for w in report["workers"])
    assert report["pipeline"] == {} and report["sweep"] == []
