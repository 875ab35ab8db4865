"""`image2circuit bench`: what a GPU (and more cores, XLA, mixed precision, batch size) buys here.

Why worker processes: TensorFlow fixes its thread pools when it initialises and Keras fixes its
backend at import, so each (backend, device, threads) group runs in its own worker,
`python -m trainer.bench --worker SPEC.json`, which prints one `@@bench {json}` line per
measurement. The parent never imports TensorFlow or Keras: a machine with only JAX or PyTorch can
still run `--backend jax|torch` (the model-only timings use in-memory arrays and keras.* only).

Model-only timing: random uint8 images of the model's input size (as float32 in [0, 255], what
the tf.data pipeline yields), held on the device, trained with `train_on_batch` for a fixed number
of steps after `warmup` steps (tracing/XLA compilation, reported as warmup_s), then timed
`predict_on_batch` calls. Seconds per epoch are extrapolated: epoch_images / train_img_s.

bench.json fields (runs/bench-YYYYMMDD-HHMM/):
  machine   {cpu_model, cores, gpu_name, driver, python, tensorflow, keras, backend, jax, torch, platform}
  settings  [{device cpu|gpu, backend, backbone, threads (cpu) | null, xla, precision, batch_size,
              size, width (scratch) | null, steps, train_img_s, epoch_s, warmup_s, infer_img_s,
              infer_warmup_s, peak_rss_mb, peak_gpu_mb, speedup_vs_best_cpu, label, error?, skipped?}]
              peak_rss_mb: the process's peak resident memory during that setting (VmHWM, reset per
              setting via /proc/self/clear_refs; resource.getrusage's process peak where that fails)
  pipeline  {end_to_end_img_s, model_only_img_s, efficiency, pipeline_only_img_s, target, meets_target,
             images, epochs, batch_size, size, source, device, backend, xla, warmup_s, gpu: {...}?}
  generator generator.bench.run(): naive matplotlib vs shipped generator, images/s
  sweep     [{size, width, batch_size, train_img_s, ms_per_image, epoch_s_per_1000, epoch_s}]
  sweep_fit {width: {ms_per_image_at_96, exponent}}: ms/image ~ a * (size/96) ** exponent
  speedup   {no_gpu, message, headline, by_backbone: {backbone: {best_cpu, best_cpu_img_s, best_gpu,
             best_gpu_img_s, gpu_over_best_cpu, all_cores_over_1_thread, xla_over_no_xla_cpu}}}
  epoch_images {count, source}, quick, wall_s, budget_s, notes, workers (per-worker errors/devices)
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Callable, List, Optional

import typer

from generator import CLASSES
from generator.errors import UserError
from generator.manifest import MANIFEST, atomic_write_bytes

RESULT = "@@bench "
BACKENDS = ("tensorflow", "jax", "torch")
PARTS = ("settings", "pipeline", "generator", "sweep")
NO_GPU = "no GPU found: CPU only"
PIPELINE_TARGET = 0.9
# `make dataset` defaults (Makefile PER_CLASS, manifest.split_for fractions): the fallback epoch size.
DEFAULT_PER_CLASS = 1000
TRAIN_FRACTION = 0.8
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plan:
    """How much to measure: fixed step counts (not epochs) so the whole bench fits its time budget."""

    quick: bool
    backbones: tuple[str, ...]
    size: int | None  # None: the backbone's default input size
    width: int | None  # None: build_model's default width
    batch: int
    steps: int
    warmup: int
    infer_steps: int
    gpu_batches: tuple[int, ...]
    gpu_steps: int
    sweep_sizes: tuple[int, ...]
    sweep_widths: tuple[int, ...]
    sweep_steps: int
    pipeline_per_class: int
    pipeline_gen_size: int
    pipeline_max_images: int
    pipeline_epochs: int
    generator_n: int
    generator_size: int
    budget_s: float


def make_plan(quick: bool, backbones: tuple[str, ...] | None = None, budget: float | None = None) -> Plan:
    if quick:
        return Plan(True, backbones or ("scratch",), 32, 8, 8, 2, 1, 2, (8,), 2, (16, 32), (8,), 1,
                    2, 32, 16, 1, 8, 32, budget or 300.0)
    # Full mode is sized for `make bench` <= 10 min on 2 shared CPU cores (measured: ~5-7 min).
    return Plan(False, backbones or known_backbones(), None, None, 32, 4, 2, 4, (32, 256), 20,
                (32, 64, 96, 128), (16, 32), 3, 16, 128, 256, 2, 480, 128, budget or 480.0)


# =========================================================================== worker (subprocess)


def _emit(obj: dict) -> None:
    sys.stdout.write(RESULT + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _reset_rss_peak() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so each setting reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _init_backend(backend: str, device: str, threads: int | None) -> dict:
    """Configure threads/GPU memory BEFORE the framework initialises; report what it sees."""
    info: dict = {"backend": backend, "device": device, "threads": threads, "gpus": []}
    if backend == "tensorflow":
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        for g in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(g, True)  # else TF grabs all memory and the peak is meaningless
            info["gpus"].append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        info["version"] = tf.__version__
    elif backend == "jax":
        import jax

        info["gpus"] = [str(d.device_kind) for d in jax.devices() if d.platform != "cpu"]
        info["version"] = jax.__version__
    elif backend == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["version"] = torch.__version__
    import keras

    info["keras"] = keras.__version__
    info["keras_backend"] = keras.backend.backend()
    return info


def _gpu_reset(backend: str) -> None:
    """Reset the peak-memory counter so each setting reports its own (jax has no reset: process peak)."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        elif backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
    except Exception:  # noqa: BLE001 - a missing memory counter must not lose the timing
        pass


def _gpu_peak_mb(backend: str) -> float | None:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
        if backend == "torch":
            import torch

            return round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return round(stats.get("peak_bytes_in_use", 0) / 2**20, 1) or None  # process peak: jax cannot reset it
    except Exception:  # noqa: BLE001 - a missing memory counter must not lose the timing
        return None
    return None


def _default_width() -> int:
    import inspect

    from . import model as M

    return int(inspect.signature(M.build_model).parameters["width"].default)


def _build(job: dict, xla):
    """The project's model (trainer.model.build_model) compiled like trainer.fit does it."""
    import keras

    from . import model as M

    backbone = job["backbone"]
    size = job.get("size") or M.default_size(backbone)
    width = job.get("width") or _default_width()
    model = M.build_model(backbone, len(CLASSES), size, width=width, weights=None)  # weights do not change speed
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=xla,
    )
    return model, size, (width if backbone == "scratch" else None)


def _train_job(job: dict, backend: str, device: str) -> dict:
    import gc

    import keras
    import numpy as np

    keras.backend.clear_session()
    gc.collect()
    keras.mixed_precision.set_global_policy(job["precision"])
    try:
        _reset_rss_peak()
        if device == "gpu":
            _gpu_reset(backend)
        model, size, width = _build(job, job["xla"])
        b = job["batch_size"]
        rng = np.random.default_rng(0)
        x = keras.ops.convert_to_tensor(rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8).astype(np.float32))
        y = keras.ops.convert_to_tensor(rng.integers(0, len(CLASSES), b).astype(np.int32))
        t = time.perf_counter()
        for _ in range(job["warmup"]):
            model.train_on_batch(x, y)  # returns numpy logs, i.e. waits for the device
        warmup = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(job["steps"]):
            model.train_on_batch(x, y)
        train = time.perf_counter() - t
        out = {"size": size, "width": width, "train_img_s": round(job["steps"] * b / train, 2),
               "warmup_s": round(warmup, 2), "infer_img_s": None, "infer_warmup_s": None}
        if job.get("infer_steps"):
            t = time.perf_counter()
            model.predict_on_batch(x)
            out["infer_warmup_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            for _ in range(job["infer_steps"]):
                model.predict_on_batch(x)
            out["infer_img_s"] = round(job["infer_steps"] * b / (time.perf_counter() - t), 2)
        out["peak_rss_mb"] = _peak_rss_mb()
        out["peak_gpu_mb"] = _gpu_peak_mb(backend) if device == "gpu" else None
        return out
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _pipeline_job(job: dict, backend: str, device: str) -> dict:
    """The real tf.data pipeline (decode, cache, shuffle, augment, prefetch) vs the same batches in memory."""
    if backend != "tensorflow":
        return {"skipped": "the input pipeline is tf.data: run it with --backend tensorflow"}
    import numpy as np

    from . import data as D

    _reset_rss_peak()
    split = D.Split(job["paths"], np.array(job["labels"], np.int32), job["domains"])
    model, size, width = _build({"backbone": "scratch", "size": job.get("size"), "width": job.get("width")}, "auto")
    b, epochs = job["batch_size"], job["epochs"]
    weights = D.sample_weights(split, len(CLASSES))
    ds = D.make_dataset(split, size, b, weights=weights, shuffle=True, augment=D.augmenter(1.0, 0), seed=0)
    t = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)  # fills the decode cache, traces the step (incl. the last partial batch)
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0)
    e2e = epochs * len(split) / (time.perf_counter() - t)

    t = time.perf_counter()
    for _ in range(epochs):
        for _batch in ds:
            pass
    pipe_only = epochs * len(split) / (time.perf_counter() - t)

    memory = ds.cache()  # the same augmented batches, held in memory after one pass
    for _batch in memory:
        pass
    model.fit(memory.take(1), epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(memory, epochs=epochs, verbose=0)
    model_only = epochs * len(split) / (time.perf_counter() - t)
    eff = e2e / model_only
    return {"end_to_end_img_s": round(e2e, 2), "model_only_img_s": round(model_only, 2),
            "efficiency": round(eff, 3), "pipeline_only_img_s": round(pipe_only, 2),
            "target": PIPELINE_TARGET, "meets_target": bool(eff >= PIPELINE_TARGET),
            "images": len(split), "epochs": epochs, "batch_size": b, "size": size, "width": width,
            "xla": bool(model.jit_compile), "warmup_s": round(warmup, 2), "peak_rss_mb": _peak_rss_mb()}


def worker(spec: dict) -> int:
    """Run one group's jobs, printing each result as it finishes (a timeout keeps what is done)."""
    backend, device, threads = spec["backend"], spec["device"], spec.get("threads")
    os.environ["KERAS_BACKEND"] = backend
    try:
        info = _init_backend(backend, device, threads)
    except Exception as e:  # noqa: BLE001 - reported to the parent as a line, not a traceback
        _emit({"kind": "worker", "error": f"{backend} does not start: {type(e).__name__}: {e}".splitlines()[0]})
        return 1
    if device == "gpu" and not info["gpus"]:
        info["error"] = f"{backend} sees no GPU (a CPU-only build installed?)"
        _emit({"kind": "worker", **info})
        return 0
    _emit({"kind": "worker", **info})
    for job in spec["jobs"]:
        base = {"backend": backend, "threads": threads if device == "cpu" else None,
                **{k: v for k, v in job.items() if k not in ("paths", "labels", "domains")}}
        if time.time() > spec["deadline"]:
            _emit({**base, "skipped": "time budget used up"})
            continue
        run = _pipeline_job if job["kind"] == "pipeline" else _train_job
        try:
            _emit({**base, **run(job, backend, device)})
        except Exception as e:  # noqa: BLE001 - e.g. bfloat16 unsupported on this GPU: keep the other settings
            _emit({**base, "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"})
    _emit({"kind": "done", "tensorflow_imported": "tensorflow" in sys.modules})
    return 0


# =========================================================================== parent


def _version(*dists: str) -> str | None:
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_gpus() -> list[dict]:
    """GPUs nvidia-smi reports ([] without one); the parent must not import a framework to ask."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2] if len(parts) > 2 else None})
    return gpus


def machine_info(backends: list[str], gpus: list[dict]) -> dict:
    return {
        "cpu_model": _cpu_model(), "cores": os.cpu_count(),
        "gpu_name": ", ".join(g["name"] for g in gpus) or None,
        "driver": gpus[0]["driver"] if gpus else None,
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow", "tensorflow-cpu", "tf-nightly"),
        "keras": _version("keras"), "backend": ", ".join(backends),
        "jax": _version("jax"), "torch": _version("torch"), "platform": platform.platform(),
    }


def known_backbones() -> tuple[str, ...]:
    """trainer.model.BACKBONES, read from its source: importing it would start Keras (and TF) in the parent."""
    import ast

    for node in ast.parse(Path(__file__).with_name("model.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "BACKBONES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ("scratch",)


def resolve_backends(names: list[str]) -> list[str]:
    """auto: tensorflow if installed, else jax, else torch; a named backend must be importable."""
    out: list[str] = []
    for n in names or ["auto"]:
        n = n.strip().lower()
        if n == "auto":
            found = [b for b in BACKENDS if importlib.util.find_spec(b)]
            if not found:
                raise UserError("no Keras backend installed: pip install -e '.[cpu]' (tensorflow), jax or torch")
            n = found[0]
        if n not in BACKENDS:
            raise UserError(f"unknown --backend {n!r}; choose tensorflow, jax, torch or auto")
        if not importlib.util.find_spec(n):
            raise UserError(f"--backend {n}: {n} is not installed in this Python; pip install it or choose another backend")
        if n not in out:
            out.append(n)
    return out


def epoch_images(data: Path | None) -> dict:
    """How many training images one epoch has, to turn img/s into seconds per epoch."""
    from . import data as D

    for folder in (data, Path("datasets/default")):
        if folder is not None and (Path(folder) / MANIFEST).is_file():
            rows = D.dataset_rows(Path(folder))
            return {"count": sum(r["split"] == "train" for r in rows), "source": f"train split of {folder}"}
    photos = ROOT.parent / "shared" / "data" / "photos"
    n_photos = sum(1 for p in photos.rglob("*") if p.suffix.lower() in D.IMAGE_SUFFIXES) if photos.is_dir() else 0
    count = round(TRAIN_FRACTION * (DEFAULT_PER_CLASS * len(CLASSES) + n_photos))
    return {"count": count, "source": f"estimate for `make dataset` defaults: {DEFAULT_PER_CLASS} schematics/class"
            + (f" + {n_photos} photos" if n_photos else "") + f", {TRAIN_FRACTION:.0%} train"}


def pipeline_split(data: Path | None, plan: Plan, tmp: Path, console) -> tuple[dict, str]:
    """Images for the input-pipeline test: --data's train split (thinned evenly) or a small generated set."""
    from . import data as D

    if data is not None and not (Path(data) / MANIFEST).is_file():
        console.print(f"note: --data {data} has no {MANIFEST}; using a small generated dataset instead")
        data = None
    if data is None:
        from generator.generate import generate

        data = tmp / "bench-data"
        generate(data, per_class=plan.pipeline_per_class, size=plan.pipeline_gen_size, seed=0, progress=False)
        rows = D.dataset_rows(data)
        source = f"generated: {plan.pipeline_per_class} schematics/class at {plan.pipeline_gen_size}px"
    else:
        rows = [r for r in D.dataset_rows(Path(data)) if r["split"] == "train"]
        if not rows:
            raise UserError(f"{Path(data) / MANIFEST} has no training images; pass another --data")
        source = f"train split of {data}"
    step = max(1, math.ceil(len(rows) / plan.pipeline_max_images))
    rows = rows[::step]
    return ({"paths": [str(Path(data) / r["file"]) for r in rows], "labels": [CLASSES.index(r["label"]) for r in rows],
             "domains": [r["domain"] for r in rows]}, f"{source}; {len(rows)} images")


def setting_jobs(backend: str, device: str, threads: int | None, plan: Plan) -> list[dict]:
    """The model-only settings of one worker. XLA: on/off under TF; JAX always compiles; torch runs eager."""
    xlas = {"tensorflow": [False, True], "jax": [True], "torch": [False]}[backend]
    jobs = []
    if device == "cpu":
        for bb in plan.backbones:
            # At 1 thread XLA is timed for the scratch CNN only (the pretrained model's compile alone costs
            # ~a minute there); a quick run skips XLA (a ~12 s compile for a smoke test).
            for xla in xlas[:1] if plan.quick or (threads == 1 and bb != "scratch") else xlas:
                jobs.append({"kind": "setting", "backbone": bb, "xla": xla, "precision": "float32",
                             "batch_size": plan.batch, "size": plan.size,
                             "width": plan.width, "steps": plan.steps, "warmup": plan.warmup,
                             "infer_steps": plan.infer_steps})
        return jobs
    for bb in plan.backbones:
        precisions = ["float32", "mixed_float16", "mixed_bfloat16"] if bb == "scratch" else ["float32", "mixed_float16"]
        for batch in plan.gpu_batches:
            for precision in precisions:
                for xla in xlas:
                    jobs.append({"kind": "setting", "backbone": bb, "xla": xla, "precision": precision,
                                 "batch_size": batch if bb == "scratch" else min(batch, 128),
                                 "size": plan.size, "width": plan.width,
                                 "steps": plan.gpu_steps, "warmup": max(plan.warmup, 3 if not plan.quick else 1),
                                 "infer_steps": plan.gpu_steps // 2 or 1})
    return jobs


def by_priority(jobs: list[dict]) -> list[dict]:
    """Run what answers the main questions first, so a used-up time budget only cuts the extras:
    default-precision settings, pipeline, sweep, then the pretrained model under XLA (very slow on a CPU)."""
    def rank(job: dict) -> int:
        if job["kind"] == "setting":
            return 3 if job["backbone"] != "scratch" and job["xla"] else 0
        return {"pipeline": 1, "sweep": 2}[job["kind"]]

    return sorted(jobs, key=rank)  # stable: keeps the order within a rank


def sweep_jobs(plan: Plan) -> list[dict]:
    return [{"kind": "sweep", "backbone": "scratch", "xla": False, "precision": "float32", "batch_size": plan.batch,
             "size": s, "width": w, "steps": plan.sweep_steps, "warmup": 1, "infer_steps": 0}
            for w in plan.sweep_widths for s in plan.sweep_sizes]


def run_worker(spec: dict, env_extra: dict, console, on_result: Callable[[dict], None], hard_deadline: float) -> dict:
    """Start `python -m trainer.bench --worker SPEC` and stream its results; kill it at the hard deadline."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "NO_ALBUMENTATIONS_UPDATE": "1",
           "KERAS_BACKEND": spec["backend"], **env_extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "trainer.bench", "--worker", str(spec_file)],
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=os.getcwd())
            timer = threading.Timer(max(1.0, hard_deadline - time.time()), proc.kill)
            timer.start()
            info: dict = {}
            try:
                for line in proc.stdout:
                    if not line.startswith(RESULT):
                        continue
                    obj = json.loads(line[len(RESULT):])
                    if obj.get("kind") in ("worker", "done"):
                        info.update({k: v for k, v in obj.items() if k != "kind"})
                    else:
                        on_result(obj)
                rc = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if rc != 0 and "error" not in info:
            tail = [ln for ln in err_path.read_text(errors="replace").splitlines() if ln.strip()][-1:]
            info["error"] = ("worker killed at the time budget" if rc in (-9, 137) else
                             f"worker exited with code {rc}: {tail[0][:200] if tail else 'no message'}")
    return info


# --------------------------------------------------------------------------- derived figures


def _label(s: dict) -> str:
    dev = f"cpu {s['threads']}t" if s["device"] == "cpu" else "gpu"
    prec = {"float32": "fp32", "mixed_float16": "fp16", "mixed_bfloat16": "bf16"}.get(s["precision"], s["precision"])
    backend = {"tensorflow": "tf"}.get(s["backend"], s["backend"])
    model = {"efficientnet_lite0": "effnet-lite0"}.get(s["backbone"], s["backbone"])
    size = f" {s['size']}px" if s.get("size") else ""
    return f"{dev} {backend} {model}{size} b{s['batch_size']} {prec}{' xla' if s['xla'] else ''}"


def _ok(s: dict) -> bool:
    return bool(s.get("train_img_s")) and not s.get("error") and not s.get("skipped")


def speedups(settings: list[dict], gpu_found: bool, gpu_note: str | None) -> dict:
    """Each setting against the best CPU setting of the same backbone; the best GPU one is the headline."""
    by_backbone = {}
    for bb in dict.fromkeys(s["backbone"] for s in settings):
        mine = [s for s in settings if s["backbone"] == bb and _ok(s)]
        cpu = [s for s in mine if s["device"] == "cpu"]
        gpu = [s for s in mine if s["device"] == "gpu"]
        best_cpu = max(cpu, key=lambda s: s["train_img_s"], default=None)
        best_gpu = max(gpu, key=lambda s: s["train_img_s"], default=None)
        for s in mine:
            s["speedup_vs_best_cpu"] = round(s["train_img_s"] / best_cpu["train_img_s"], 2) if best_cpu else None

        def ratio(a: list[dict], b: list[dict]) -> float | None:
            if not a or not b:
                return None
            return round(max(x["train_img_s"] for x in a) / max(x["train_img_s"] for x in b), 2)

        one = [s for s in cpu if s["threads"] == 1]
        many = [s for s in cpu if s["threads"] and s["threads"] > 1]
        most = max((s["threads"] or 0 for s in cpu), default=0)
        top = [s for s in cpu if s["threads"] == most]  # XLA's effect at the same thread count
        by_backbone[bb] = {
            "best_cpu": best_cpu["label"] if best_cpu else None,
            "best_cpu_img_s": best_cpu["train_img_s"] if best_cpu else None,
            "best_gpu": best_gpu["label"] if best_gpu else None,
            "best_gpu_img_s": best_gpu["train_img_s"] if best_gpu else None,
            "gpu_over_best_cpu": ratio(gpu, cpu),
            "all_cores_over_1_thread": ratio(many, one),
            "xla_over_no_xla_cpu": ratio([s for s in top if s["xla"]], [s for s in top if not s["xla"]]),
        }
    lines = []
    for bb, v in by_backbone.items():
        if v["gpu_over_best_cpu"]:
            lines.append(f"{bb}: best GPU setting ({v['best_gpu']}) trains {v['gpu_over_best_cpu']}x faster "
                         f"than the best CPU setting ({v['best_cpu']})")
    message = None if gpu_found else NO_GPU
    if not lines:
        cpu_lines = [f"{bb}: best CPU setting {v['best_cpu']} at {v['best_cpu_img_s']} img/s"
                     + (f", all cores {v['all_cores_over_1_thread']}x one thread" if v["all_cores_over_1_thread"] else "")
                     for bb, v in by_backbone.items() if v["best_cpu"]]
        lines = [gpu_note or message or "no GPU setting finished", *cpu_lines]
    return {"no_gpu": not gpu_found, "message": message or gpu_note, "headline": "; ".join(lines),
            "reference": "train img/s of the best CPU setting of the same backbone", "by_backbone": by_backbone}


def sweep_summary(sweep: list[dict], n_epoch: int) -> tuple[list[dict], dict]:
    """Per-image cost at each size/width and a power-law fit, so a user can price a bigger run."""
    rows = []
    for s in sweep:
        if not _ok(s):
            rows.append({k: s.get(k) for k in ("size", "width", "batch_size", "error", "skipped") if s.get(k) is not None})
            continue
        ms = 1000.0 / s["train_img_s"]
        rows.append({"size": s["size"], "width": s["width"], "batch_size": s["batch_size"],
                     "train_img_s": s["train_img_s"], "ms_per_image": round(ms, 2),
                     "epoch_s_per_1000": round(ms, 1), "epoch_s": round(n_epoch * ms / 1000, 1)})
    fit = {}
    for w in dict.fromkeys(r["width"] for r in rows if "ms_per_image" in r):
        pts = [(math.log(r["size"] / 96), math.log(1000.0 / r["train_img_s"])) for r in rows if r.get("width") == w and "ms_per_image" in r]
        if len(pts) < 2:
            continue
        mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        k = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0.0
        fit[str(w)] = {"ms_per_image_at_96": round(math.exp(my - k * mx), 2), "exponent": round(k, 2)}
    return rows, fit


# --------------------------------------------------------------------------- report


def _fmt(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for both the terminal (rich) and bench.md."""
    out = []
    n = report["epoch_images"]["count"]
    rows = []
    for s in report["settings"]:
        status = s.get("error") or s.get("skipped")
        rows.append([s["label"], _fmt(s.get("size")), _fmt(s.get("width")), _fmt(s.get("train_img_s")),
                     _fmt(s.get("epoch_s"), 0), _fmt(s.get("warmup_s")), _fmt(s.get("infer_img_s")),
                     _fmt(s.get("peak_rss_mb"), 0), _fmt(s.get("peak_gpu_mb"), 0),
                     (f"{s['speedup_vs_best_cpu']:.2f}x" if s.get("speedup_vs_best_cpu") else "-") + (f" ({status})" if status else "")])
    out.append((f"Model-only settings (device, threads, backend, model, size, batch, precision, xla if on; epoch s = {n} images / train img/s)",
                ["setting", "size", "width", "train img/s", "epoch s", "warm-up s", "infer img/s", "RSS MB", "GPU MB",
                 "vs best CPU"], rows))
    p = report.get("pipeline") or {}
    if p.get("efficiency") is not None or p.get("error") or p.get("skipped"):
        prow = [[p.get("device", "cpu"), _fmt(p.get("end_to_end_img_s")), _fmt(p.get("model_only_img_s")),
                 _fmt(p.get("pipeline_only_img_s")), _fmt(p.get("efficiency"), 2),
                 ("yes" if p.get("meets_target") else "no") if p.get("efficiency") is not None else (p.get("error") or p.get("skipped"))]]
        g = p.get("gpu")
        if g:
            prow.append(["gpu", _fmt(g.get("end_to_end_img_s")), _fmt(g.get("model_only_img_s")),
                         _fmt(g.get("pipeline_only_img_s")), _fmt(g.get("efficiency"), 2),
                         ("yes" if g.get("meets_target") else "no") if g.get("efficiency") is not None else (g.get("error") or g.get("skipped") or "-")])
        out.append((f"Input pipeline ({p.get('source', '')})",
                    ["device", "end-to-end img/s", "model-only img/s", "pipeline-only img/s", "efficiency", f">= {PIPELINE_TARGET}"], prow))
    gen = report.get("generator") or {}
    if gen:
        out.append((f"Generator ({gen.get('images', '?')} images at {gen.get('size', '?')}px, {gen.get('cores', '?')} cores)",
                    ["measure", "value"], [[k, _fmt(v, 2)] for k, v in gen.items() if k not in ("size", "images", "cores")]))
    if report.get("sweep"):
        srows = [[_fmt(r.get("size")), _fmt(r.get("width")), _fmt(r.get("batch_size")), _fmt(r.get("train_img_s")),
                  _fmt(r.get("ms_per_image"), 2), _fmt(r.get("epoch_s_per_1000"), 1),
                  _fmt(r.get("epoch_s"), 0) if r.get("epoch_s") is not None else (r.get("error") or r.get("skipped") or "-")]
                 for r in report["sweep"]]
        out.append(("Size sweep, scratch CNN, CPU all cores (epoch s ~ images x ms/image)",
                    ["size", "width", "batch", "train img/s", "ms/image", "s per 1000 images", f"epoch s ({n} images)"], srows))
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# image2circuit benchmark", "",
             f"{report['created']} · {'quick smoke run' if report['quick'] else 'full run'} · {report['wall_s']:.0f} s",
             "", f"**{report['speedup']['headline']}**", "",
             f"- CPU: {m['cpu_model']} ({m['cores']} cores); GPU: {m['gpu_name'] or 'none'}"
             + (f" (driver {m['driver']})" if m["driver"] else ""),
             f"- Python {m['python']}, TensorFlow {m['tensorflow'] or '-'}, Keras {m['keras']}, backend(s): {m['backend']}",
             f"- Epoch size for the epoch estimates: {report['epoch_images']['count']} images "
             f"({report['epoch_images']['source']})", ""]
    for note in report["notes"]:
        lines.append(f"- {note}")
    for title, header, rows in tables(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    if report.get("sweep_fit"):
        lines += ["", "Fit: ms per image ~ a x (size/96)^k: "
                  + "; ".join(f"width {w}: a={v['ms_per_image_at_96']} ms, k={v['exponent']}" for w, v in report["sweep_fit"].items())]
    return "\n".join(lines) + "\n"


def chart(report: dict) -> bytes:
    """Horizontal bars of training img/s per setting, each labelled with its speed-up over the best CPU one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [s for s in report["settings"] if _ok(s)]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * max(1, len(ok))))
    if ok:
        colours = ["#2a9d8f" if s["device"] == "gpu" else "#577590" for s in ok]
        y = range(len(ok))
        ax.barh(list(y), [s["train_img_s"] for s in ok], color=colours)
        ax.set_yticks(list(y), [s["label"] for s in ok], fontsize=8)
        ax.invert_yaxis()
        for i, s in enumerate(ok):
            ax.text(s["train_img_s"], i, f" {s.get('speedup_vs_best_cpu') or 0:.2f}x", va="center", fontsize=8)
        values = [s["train_img_s"] for s in ok]
        if max(values) > 50 * min(values):
            ax.set_xscale("log")
        ax.set_xlabel("training images/s (model only, synthetic batches); label: x the best CPU setting of the same model")
        ax.margins(x=0.15)
    else:
        ax.text(0.5, 0.5, "no setting finished", ha="center", va="center")
        ax.set_axis_off()
    sub = report["speedup"]["message"] or ""
    ax.set_title(f"image2circuit bench: {report['machine']['cpu_model']} / {report['machine']['gpu_name'] or 'no GPU'}"
                 + (f"\n{sub}" if sub else ""), fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def out_dir(runs_dir: Path, prefix: str = "bench") -> Path:
    """runs/PREFIX-YYYYMMDD-HHMM, with -2, -3... when two runs start in the same minute."""
    base = Path(runs_dir) / f"{prefix}-{datetime.now():%Y%m%d-%H%M}"
    path, i = base, 2
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    return path


# --------------------------------------------------------------------------- orchestration


def run_bench(*, quick: bool = False, data: Path | None = None, backends: list[str] | None = None,
              backbones: list[str] | None = None, parts: list[str] | None = None, budget: float | None = None,
              runs_dir: Path = Path("runs"), console=None) -> tuple[Path, dict]:
    """Run every part, write bench.json/bench.md/bench.png; returns (folder, report)."""
    from rich.console import Console

    console = console or Console()
    t_start = time.time()
    parts = list(parts or PARTS)
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise UserError(f"unknown --parts {', '.join(bad)}; choose from {', '.join(PARTS)}")
    if backbones:
        known = known_backbones()
        unknown = [b for b in backbones if b not in known]
        if unknown:
            raise UserError(f"unknown --backbone {', '.join(unknown)}; choose from {', '.join(known)}")
    backends = resolve_backends(backends or ["auto"])
    if budget is not None and budget <= 0:
        raise UserError(f"--budget {budget:g} must be a positive number of seconds")
    plan = make_plan(quick, tuple(backbones) if backbones else None, budget)
    deadline = t_start + plan.budget_s
    folder = out_dir(runs_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)

    gpus = nvidia_gpus()
    machine = machine_info(backends, gpus)
    if not gpus:
        console.print(f"[bold yellow]{NO_GPU}[/]")
    else:
        console.print(f"GPU found: {machine['gpu_name']} (driver {machine['driver']})")
    cores = os.cpu_count() or 1
    n_epoch = epoch_images(data)
    settings: list[dict] = []
    sweep: list[dict] = []
    pipeline: dict = {}
    workers: list[dict] = []
    notes = ["figures are noisy when other programs share the CPU: compare settings from the same run",
             f"model-only timings: {plan.steps} timed training steps per CPU setting ({plan.gpu_steps} on a GPU) "
             f"after {plan.warmup} warm-up step(s), synthetic uint8 images; epoch s is extrapolated"]

    def collect(obj: dict, group: str) -> None:
        kind = obj.pop("kind", "setting")
        if kind == "pipeline":
            obj["device"] = group
            (pipeline.setdefault("gpu", {}) if group == "gpu" else pipeline).update(obj)
            if obj.get("efficiency") is not None:
                console.print(f"  pipeline ({group}): end-to-end {obj['end_to_end_img_s']} img/s, model-only "
                              f"{obj['model_only_img_s']} img/s, efficiency {obj['efficiency']:.2f}", soft_wrap=True)
            return
        s = {**obj, "device": group}
        s["label"] = _label(s)
        (sweep if kind == "sweep" else settings).append(s)
        status = s.get("error") or s.get("skipped")
        console.print(f"  {s['label']}: " + (status or
                      f"train {s['train_img_s']} img/s (warm-up {s['warmup_s']} s)"
                      + (f", infer {s['infer_img_s']} img/s" if s.get("infer_img_s") else "")), soft_wrap=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pipe_spec, pipe_source = None, None
        if "pipeline" in parts and "tensorflow" in backends:
            console.print("preparing the input-pipeline dataset ...")
            pipe_spec, pipe_source = pipeline_split(data, plan, tmp, console)
        # Per backend: the GPU first (the headline), then the CPU at 1 thread, then at all cores with the
        # extras last, so a used-up time budget cuts the least important measurements.
        groups = []
        for i, backend in enumerate(backends):
            if gpus:
                jobs = setting_jobs(backend, "gpu", None, plan) if "settings" in parts else []
                if pipe_spec and backend == "tensorflow":
                    jobs.append({"kind": "pipeline", **pipe_spec, "size": plan.size, "width": plan.width,
                                 "batch_size": min(plan.gpu_batches[-1], 128), "epochs": plan.pipeline_epochs})
                if jobs:
                    groups.append(("gpu", backend, None, by_priority(jobs), {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}))
            for threads in dict.fromkeys([1, cores]):
                jobs = setting_jobs(backend, "cpu", threads, plan) if "settings" in parts else []
                if threads == cores:
                    if pipe_spec and backend == "tensorflow":
                        jobs.append({"kind": "pipeline", **pipe_spec, "size": plan.size, "width": plan.width,
                                     "batch_size": plan.batch, "epochs": plan.pipeline_epochs})
                    if "sweep" in parts and i == 0:
                        jobs += sweep_jobs(plan)
                env = {"CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}
                if backend == "jax" and threads == 1:
                    env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                        " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
                if jobs:
                    groups.append(("cpu", backend, threads, by_priority(jobs), env))
        # Leave time for the generator benchmark and the report after the workers.
        reserve = (8 if quick else 25) if "generator" in parts else 0
        for device, backend, threads, jobs, env in groups:
            what = f"{device}{f' {threads} thread(s)' if threads else ''} {backend}"
            console.print(f"[bold]{what}[/]: {len(jobs)} measurement(s)")
            spec = {"backend": backend, "device": device, "threads": threads, "jobs": jobs,
                    "deadline": deadline - reserve}
            t0 = time.time()
            info = run_worker(spec, env, console, lambda o, g=device: collect(o, g), deadline - reserve + 60)
            info.update({"group": what, "wall_s": round(time.time() - t0, 1)})
            workers.append(info)
            if info.get("error"):
                console.print(f"  [red]{what}: {info['error']}[/]")
            if device == "gpu" and info.get("gpus"):
                machine["gpu_seen_by"] = {**machine.get("gpu_seen_by", {}), backend: info["gpus"]}
        if pipe_spec is None and "pipeline" in parts:
            pipeline = {"skipped": "needs --backend tensorflow (tf.data)"}
        elif pipe_spec is not None:
            if not pipeline:
                pipeline["error"] = "not measured: its worker stopped first (see workers)"
            pipeline["source"] = pipe_source

    generator = {}
    if "generator" in parts:
        console.print("generator benchmark ...")
        from generator import bench as gbench

        try:
            generator = gbench.run(plan.generator_n, plan.generator_size)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - keep the model figures even if the generator bench breaks
            generator = {"error": f"{type(e).__name__}: {e}"}

    for s in settings:
        if _ok(s):
            s["epoch_s"] = round(n_epoch["count"] / s["train_img_s"], 1)
            if s["backbone"] != "scratch" and s.get("infer_img_s"):
                s["note"] = ("backbone frozen: `train` caches its outputs once (feature passes x images / infer img/s), "
                             "then each epoch only trains the small head")
    gpu_workers = [w for w in workers if w["group"].startswith("gpu")]
    gpu_seen = any(w.get("gpus") for w in gpu_workers)
    gpu_note = None
    if gpus and not gpu_seen:
        gpu_note = (f"GPU {machine['gpu_name']} found but no backend used it ("
                    + "; ".join(w.get("error", "?") for w in gpu_workers) + "): install the `gpu` extra")
    elif not gpus:
        notes.insert(0, NO_GPU)
    sweep_rows, sweep_fit = sweep_summary(sweep, n_epoch["count"])
    report = {
        "version": 1, "created": datetime.now().isoformat(timespec="seconds"), "quick": quick,
        "machine": machine, "settings": settings, "pipeline": pipeline, "generator": generator,
        "sweep": sweep_rows, "sweep_fit": sweep_fit, "speedup": speedups(settings, gpu_seen, gpu_note),
        "epoch_images": n_epoch, "notes": notes, "workers": workers, "budget_s": plan.budget_s,
        "wall_s": 0.0,
    }
    if pipeline.get("efficiency") is not None and not pipeline.get("meets_target"):
        notes.append(f"input pipeline efficiency {pipeline['efficiency']:.2f} < {PIPELINE_TARGET} on the CPU: decoding/"
                     "augmentation share the same cores as training (pipeline-only img/s shows its own ceiling)")
    if any(s.get("skipped") for s in settings + sweep):
        notes.append(f"some measurements were skipped: the {plan.budget_s:.0f} s time budget ran out (--budget)")
    report["wall_s"] = round(time.time() - t_start, 1)
    write_report(folder, report)
    print_tables(report, console)
    console.print(f"wrote {folder / 'bench.json'}, bench.md, bench.png in {report['wall_s']:.0f} s")
    return folder, report


def write_report(folder: Path, report: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "bench.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(folder / "bench.md", markdown(report).encode())
    atomic_write_bytes(folder / "bench.png", chart(report))


def print_tables(report: dict, console) -> None:
    from rich.console import Console
    from rich.table import Table

    if not console.is_terminal:  # a log file or pipe: do not fold the tables into 80 columns
        console = Console(file=console.file, width=160)
    for title, header, rows in tables(report):
        t = Table(title=title, title_justify="left", show_lines=False)
        for h in header:
            t.add_column(h, overflow="fold")
        for r in rows:
            t.add_row(*[str(c) for c in r])
        console.print(t)
    console.print(f"[bold]{report['speedup']['headline']}[/]")


# --------------------------------------------------------------------------- CLI


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Smoke run: tiny sizes, few steps (seconds, for tests).")] = False,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder for the input-pipeline test (default: a small generated one).")] = None,
    backend: Annotated[Optional[List[str]], typer.Option("--backend", help="tensorflow, jax, torch or auto (TF if installed); repeat to compare.")] = None,
    backbone: Annotated[Optional[List[str]], typer.Option("--backbone", help="Models to time (default: scratch and efficientnet_lite0; quick: scratch).")] = None,
    parts: Annotated[str, typer.Option("--parts", help=f"Comma-separated parts to run: {','.join(PARTS)}.")] = ",".join(PARTS),
    budget: Annotated[Optional[float], typer.Option("--budget", help="Seconds after which no new measurement starts (default 480; quick 300).")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder for runs/bench-YYYYMMDD-HHMM.")] = Path("runs"),
) -> None:
    """Benchmark training/inference speed on every device found (CPU threads, XLA, GPU precision/batch),
    the input pipeline, the generator and input sizes; writes runs/bench-*/bench.{json,md,png}."""
    run_bench(quick=quick, data=data, backends=backend, backbones=backbone,
              parts=[p.strip() for p in parts.split(",") if p.strip()], budget=budget, runs_dir=runs_dir)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def main(argv: list[str]) -> int:
    """`python -m trainer.bench --worker SPEC.json|JSON`: the measuring subprocess."""
    if len(argv) != 2 or argv[0] != "--worker":
        print("usage: python -m trainer.bench --worker SPEC.json   (started by `image2circuit bench`)", file=sys.stderr)
        return 2
    text = argv[1] if argv[1].lstrip().startswith("{") else Path(argv[1]).read_text()
    return worker(json.loads(text))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
