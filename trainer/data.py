"""Input pipeline: manifest rows -> tf.data batches of square, padded RGB images in [0, 255].

Every image, in training, evaluation, prediction and export checks, goes through the same
`fit_square` graph function, so what the model sees at test time matches what it was trained on.
Normalisation (x/255 or the backbone's own) lives inside the model, so the saved model takes these
plain pixel values and `preprocess.json` fully describes the outside steps.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from generator import CLASSES
from generator.errors import UserError
from generator.manifest import MANIFEST, read_rows

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
PAD = "border-median"
"""Padding colour: the per-channel median of the image's outermost pixel ring.

Why not white: photos sit on wood, cloth, PCBs or dark tables; a white frame around them would be
an artificial edge that only photos have (schematics are already white), i.e. a domain shortcut and
a fake contour the filters would learn. The border median continues whatever background the image
has (white paper for schematics, grey paper for scans, the table for photos), and the median is
robust to a component or wire that touches the edge. The random rotations/shifts use fill_mode
"nearest" for the same reason."""
CROP = "content box: pixels differing from the border colour by > 25 (3x3 mean), plus a 10% margin"
"""Why crop to the content: real drawings sit at any size in their cell (a hand-drawn transistor can
fill a third of a scanned cell, a textbook crop all of it), and a small symbol reaches the backbone's
5x5 top feature map as one or two cells, where a "K" transistor and a diode look alike. Cropping to
what differs from the background puts every symbol at about the same scale in training and at test
time. Where the background is busy (photos on a table, shadows, ruled paper), the box is the whole
image and nothing changes."""
INK_THRESHOLD = 25.0
CROP_MARGIN = 0.1


@dataclass(frozen=True)
class Preprocess:
    """What happens to an image outside the model; saved as preprocess.json beside model.keras."""

    size: int
    pad: str = PAD
    resize: str = "aspect-preserving, bilinear with antialias, centred"
    channels: int = 3
    input_range: tuple = (0, 255)
    normalisation: str = "inside the model"
    crop: str = CROP  # "none": fed uncropped (runs saved before the crop existed)

    @property
    def content_crop(self) -> bool:
        return self.crop != "none"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Preprocess":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["input_range"] = tuple(known.get("input_range", (0, 255)))
        known.setdefault("crop", "none")  # runs saved before the crop existed were trained without it
        return cls(**known)


@dataclass
class Split:
    """Images of one split (or one evaluation folder): parallel arrays, labels as class indices."""

    paths: list[str] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    domains: list[str] = field(default_factory=list)
    generated: np.ndarray | None = None  # per image: rendered by the generator (None: none of them)

    def __len__(self) -> int:
        return len(self.paths)

    def is_generated(self) -> np.ndarray:
        return np.zeros(len(self), bool) if self.generated is None else np.asarray(self.generated, bool)

    def take(self, idx: np.ndarray) -> "Split":
        """The images at these indices, in this order (repeats allowed)."""
        return Split([self.paths[i] for i in idx], self.labels[idx], [self.domains[i] for i in idx],
                     self.is_generated()[idx])

    def subset(self, mask: np.ndarray) -> "Split":
        return self.take(np.flatnonzero(mask))


# --------------------------------------------------------------------------- manifest and folders


def dataset_rows(data: Path, domains: Sequence[str] | None = None) -> list[dict]:
    """Usable manifest rows (not skipped) of the chosen domains; every problem is a one-line UserError."""
    data = Path(data)
    if not data.is_dir():
        raise UserError(f"dataset folder {data} does not exist: build it first (image2circuit generate) or fix --data")
    rows = [r for r in read_rows(data / MANIFEST) if r["split"] != "skipped"]
    if not rows:
        raise UserError(f"{data / MANIFEST} lists no usable images; rebuild the dataset")
    present = sorted({r["domain"] for r in rows})
    if domains:
        unknown = [d for d in domains if d not in present]
        if unknown:
            raise UserError(
                f"domain(s) {', '.join(unknown)} not in {data / MANIFEST}; it has: {', '.join(present)}"
            )
        rows = [r for r in rows if r["domain"] in domains]
    for r in rows:
        if not (data / r["file"]).is_file():
            raise UserError(f"{data / r['file']} is listed in the manifest but missing; rebuild the dataset")
    return rows


def class_names(rows: Iterable[dict]) -> list[str]:
    """Classes that have training images, in the fixed CLASSES order (stable output indices)."""
    seen = {r["label"] for r in rows if r["split"] == "train"}
    return [c for c in CLASSES if c in seen]


def split_of(data: Path, rows: Sequence[dict], split: str, classes: Sequence[str]) -> Split:
    """One split as arrays; rows of classes the model does not know are left out."""
    index = {c: i for i, c in enumerate(classes)}
    chosen = [r for r in rows if r["split"] == split and r["label"] in index]
    return Split(
        [str(Path(data) / r["file"]) for r in chosen],
        np.array([index[r["label"]] for r in chosen], np.int32),
        [r["domain"] for r in chosen],
        np.array([bool(r.get("recipe")) for r in chosen], bool),
    )


def folder_class(name: str) -> str | None:
    """Map an evaluation folder's subfolder name to a class: the photo importer's synonyms if present."""
    try:
        from generator.photos import canonical_class  # written by the photo importer
    except ImportError:
        return name if name in CLASSES else None
    try:
        return canonical_class(name)
    except (KeyError, ValueError, UserError):
        return None


def folder_split(folder: Path, domain: str, classes: Sequence[str]) -> tuple[Split, dict]:
    """An extra evaluation folder laid out <folder>/<class>/<image>; returns the split and what was left out.

    Subfolders that name no known class, and classes the model was not trained on, are reported in
    the second value ({"unknown_folders": [...], "untrained": {class: n}}) instead of silently dropped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"evaluation folder {folder} does not exist; pass a folder of <class>/<image> subfolders")
    index = {c: i for i, c in enumerate(classes)}
    split, left_out = Split(), {"unknown_folders": [], "untrained": {}}
    paths, labels = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        cls = folder_class(sub.name)
        files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if cls is None:
            left_out["unknown_folders"].append(sub.name)
            continue
        if cls not in index:
            left_out["untrained"][cls] = left_out["untrained"].get(cls, 0) + len(files)
            continue
        paths += [str(p) for p in files]
        labels += [index[cls]] * len(files)
    if not paths:
        raise UserError(
            f"{folder} has no images in subfolders named after the model's classes ({', '.join(classes)})"
        )
    split.paths, split.labels, split.domains = paths, np.array(labels, np.int32), [domain] * len(paths)
    return split, left_out


def sample_weights(split: Split, num_classes: int, balance: str = "class") -> np.ndarray:
    """Per-image loss weights, mean 1, so rare classes (and, with "class+domain", small domains) count equally.

    "class": w = n / (K * n_class) (sklearn's "balanced"). "class+domain": every domain gets the same
    total weight and, inside it, every class present does too. "none": all ones.
    """
    n = len(split)
    if n == 0 or balance == "none":
        return np.ones(n, np.float32)
    if balance == "class":
        counts = np.bincount(split.labels, minlength=num_classes)
        w = n / (np.count_nonzero(counts) * counts[split.labels])
    elif balance == "class+domain":
        doms = np.array(split.domains)
        w = np.zeros(n)
        names = sorted(set(split.domains))
        for d in names:
            m = doms == d
            counts = np.bincount(split.labels[m], minlength=num_classes)
            w[m] = 1.0 / (len(names) * np.count_nonzero(counts) * counts[split.labels[m]])
        w *= n
    else:
        raise UserError(f"unknown --balance {balance!r}; use class, class+domain or none")
    return (w / w.mean()).astype(np.float32)


# --------------------------------------------------------------------------- decoding


def content_box(img, colour):
    """(y0, y1, x0, x1) of what differs from the background colour, plus a margin; the whole image if nothing does."""
    import tensorflow as tf

    h, w = tf.shape(img)[0], tf.shape(img)[1]
    diff = tf.reduce_max(tf.abs(img - colour), axis=-1, keepdims=True)
    diff = tf.nn.avg_pool2d(diff[None], 3, 1, "SAME")[0, ..., 0]  # a lone noisy pixel is not content
    rows = tf.cast(tf.where(tf.reduce_any(diff > INK_THRESHOLD, axis=1))[:, 0], tf.int32)
    cols = tf.cast(tf.where(tf.reduce_any(diff > INK_THRESHOLD, axis=0))[:, 0], tf.int32)

    def box():
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        m = tf.cast(CROP_MARGIN * tf.cast(tf.maximum(y1 - y0, x1 - x0), tf.float32), tf.int32) + 2
        return tf.maximum(y0 - m, 0), tf.minimum(y1 + m, h), tf.maximum(x0 - m, 0), tf.minimum(x1 + m, w)

    return tf.cond(tf.size(rows) > 0, box, lambda: (0, h, 0, w))


def fit_square(image, size: int, content_crop: bool = True):
    """uint8 HxWx3 tensor -> uint8 size x size x 3: optional content crop (see CROP), then aspect-preserving
    resize, centred, border-median padding."""
    import tensorflow as tf

    img = tf.cast(image, tf.float32)
    ring = tf.concat([img[0], img[-1], img[:, 0], img[:, -1]], axis=0)
    colour = tf.sort(ring, axis=0)[tf.shape(ring)[0] // 2]
    if content_crop:
        y0, y1, x0, x1 = content_box(img, colour)
        img = img[y0:y1, x0:x1]
    resized = tf.image.resize(img, [size, size], preserve_aspect_ratio=True, antialias=True)
    h, w = tf.shape(resized)[0], tf.shape(resized)[1]
    padded = tf.image.pad_to_bounding_box(resized - colour, (size - h) // 2, (size - w) // 2, size, size) + colour
    return tf.cast(tf.clip_by_value(tf.round(padded), 0.0, 255.0), tf.uint8)


def decode(data, size: int, content_crop: bool = True):
    """Encoded bytes (PNG/JPEG/GIF first frame/BMP/WebP) -> square uint8 RGB image.

    Grey images become RGB; a transparent background (PNG symbols exported from drawing tools)
    is composited over white paper rather than left to whatever RGB the transparent pixels hold
    (usually black, which would invert the symbol's look)."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=0, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, None])
    x = tf.cast(image, tf.float32)

    def over_white(rgb, alpha):
        a = alpha / 255.0
        return rgb * a + 255.0 * (1.0 - a)

    x = tf.switch_case(
        tf.shape(x)[2] - 1,
        [
            lambda: tf.tile(x[..., :1], [1, 1, 3]),  # grey
            lambda: over_white(tf.tile(x[..., :1], [1, 1, 3]), x[..., 1:2]),  # grey + alpha
            lambda: x[..., :3],  # RGB
            lambda: over_white(x[..., :3], x[..., 3:4]),  # RGBA
        ],
    )
    x.set_shape([None, None, 3])
    return fit_square(tf.cast(tf.round(x), tf.uint8), size, content_crop)


def load_image(path: str | Path, size: int, content_crop: bool = True) -> np.ndarray:
    """One file -> square uint8 array, eagerly; unreadable or not an image -> UserError naming the file."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return decode(tf.io.read_file(str(path)), size, content_crop).numpy()
    except (tf.errors.OpError, ValueError) as e:
        reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", getattr(e, "message", str(e))).strip().splitlines()[0][:120]
        raise UserError(f"{path}: not a readable image ({reason})") from None


def first_unreadable(paths: Sequence[str], size: int) -> str | None:
    """Slow path after a decode failure inside tf.data: find the file to name in the error."""
    for p in paths:
        try:
            load_image(p, size)
        except UserError as e:
            return str(e)
    return None


# --------------------------------------------------------------------------- tf.data


def augmenter(strength: float = 1.0, seed: int = 0):
    """Online augmentation as Keras preprocessing layers (run inside tf.data, off the training step).

    Flips and rotations: component photos come in any orientation and symbols in all four.
    Zoom/translation: parts are not always centred or the same size. Contrast/brightness/greyscale:
    lighting and colour differ between photos, scans and renderings. fill_mode="nearest" continues
    the image border, like the padding does. strength scales every range; 0 disables augmentation.
    """
    import keras

    if strength <= 0:
        return None
    s = float(strength)
    L = keras.layers
    return keras.Sequential(
        [
            L.RandomFlip("horizontal_and_vertical", seed=seed),
            L.RandomRotation(0.08 * s, fill_mode="nearest", seed=seed + 1),
            L.RandomZoom((-0.15 * s, 0.15 * s), fill_mode="nearest", seed=seed + 2),
            L.RandomTranslation(0.08 * s, 0.08 * s, fill_mode="nearest", seed=seed + 3),
            L.RandomContrast(min(0.9, 0.3 * s), value_range=(0, 255), seed=seed + 4),
            L.RandomBrightness(min(0.9, 0.2 * s), value_range=(0, 255), seed=seed + 5),
            L.RandomGrayscale(min(1.0, 0.1 * s), seed=seed + 6),
        ],
        name="augment",
    )


def make_dataset(
    split: Split,
    size: int,
    batch_size: int,
    *,
    weights: np.ndarray | None = None,
    shuffle: bool = False,
    augment=None,
    seed: int = 0,
    cache: bool | str = True,
    with_labels: bool = True,
    one_hot: int = 0,
    content_crop: bool = True,
):
    """tf.data: parallel decode -> cache (uint8) -> shuffle (seeded) -> batch -> augment -> prefetch.

    Decoding runs once (cached as uint8 to keep memory at size*size*3 bytes per image); the
    augmentation model runs on whole batches in the input pipeline, so with prefetch it overlaps the
    training step instead of stalling it. Yields float32 images in [0, 255], then labels (class
    indices, or one-hot rows of `one_hot` classes) and weights.
    """
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    parts = [tf.constant(split.paths, tf.string)]
    if with_labels:
        parts.append(tf.constant(split.labels, tf.int32))
        if weights is not None:
            parts.append(tf.constant(weights, tf.float32))
    ds = tf.data.Dataset.from_tensor_slices(tuple(parts))
    ds = ds.map(
        lambda p, *rest: (decode(tf.io.read_file(p), size, content_crop), *rest),
        num_parallel_calls=auto,
        deterministic=True,
    )
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(max(1, len(split)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=auto, deterministic=True)
    if augment is not None:
        # One call at a time: the layers' seed state must advance in a fixed order to stay reproducible.
        ds = ds.map(lambda x, *rest: (augment(x, training=True), *rest))
    if with_labels and one_hot:
        ds = ds.map(lambda x, y, *rest: (x, tf.one_hot(y, one_hot), *rest), num_parallel_calls=auto, deterministic=True)
    if not with_labels:
        ds = ds.map(lambda x: x)  # unwrap the 1-tuples: plain image batches
    return ds.prefetch(auto)


def steps(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def collect(ds, paths: Sequence[str], size: int):
    """Iterate a dataset into numpy; a decode failure becomes a UserError naming the bad file."""
    import tensorflow as tf

    try:
        return [tuple(np.asarray(t) for t in batch) if isinstance(batch, tuple) else np.asarray(batch) for batch in ds]
    except tf.errors.OpError:
        raise UserError(first_unreadable(paths, size) or "an image could not be decoded") from None
