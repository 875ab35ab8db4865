"""Export a run's model for deployment: TFLite (LiteRT) or a TensorFlow SavedModel.

Uses Keras 3's own `model.export(format="litert" | "tf_saved_model")` (TF backend), which traces
the model and runs the TFLite converter; no extra packages. The exported model takes the same
square [0, 255] float32 images as model.keras (see preprocess.json), with a free batch size.
"""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from generator.errors import UserError

from .predict import load_run

FORMATS = {"tflite": "model.tflite", "savedmodel": "saved_model"}


def export_run(run_dir: Path, fmt: str = "tflite") -> Path:
    """Write runs/RUN/model.tflite (or saved_model/) beside model.keras; returns its path."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    run = load_run(run_dir)
    target = run.dir / FORMATS[fmt]
    tmp = run.dir / f".{FORMATS[fmt]}.{os.getpid()}.tmp"
    if fmt == "tflite":
        tmp = tmp.with_suffix(".tflite")
        run.model.export(str(tmp), format="litert", verbose=False)
        os.replace(tmp, target)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
        run.model.export(str(tmp), format="tf_saved_model", verbose=False)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def tflite_interpreter(path: Path):
    """The LiteRT interpreter if ai_edge_litert is installed, else TensorFlow's bundled tf.lite one."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it is deprecated in favour of LiteRT
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def tflite_predict(path: Path, images: np.ndarray) -> np.ndarray:
    """Run a .tflite model on a batch of square [0, 255] images; returns class probabilities."""
    if not Path(path).is_file():
        raise UserError(f"{path} does not exist; run image2circuit export RUN --format tflite first")
    interp = tflite_interpreter(path)
    inp = interp.get_input_details()[0]
    images = np.asarray(images, np.float32)
    interp.resize_tensor_input(inp["index"], list(images.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], images)
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))
