"""Capture conditions: put a clean symbol on paper and make it look screenshotted, scanned or photographed.

All albumentations pipelines of the project are defined here, once, with ``strict=True`` so a
misspelled argument fails at build time instead of being silently ignored.

Determinism (several worker processes, any order): a pipeline is built once per process and
cached; before each image :func:`reseed` hands the whole pipeline ONE fresh ``np.random.Generator``
and ``random.Random`` made from that image's own seed, so the output depends only on
(image, seed). Alternatives, measured by ``image2circuit preview-mix --timing``: building the
Compose per image is several times slower (pydantic validation of every transform), and
``Compose.set_random_seed(s)`` gives every transform its *own* generator seeded with the same
``s`` -- in albumentations 2.0.8 all transforms then draw the same first number, so transforms
with equal ``p`` fire all together or not at all. One shared state avoids both.
"""
from __future__ import annotations

import functools
import os
import random
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402  (albumentations' own dependency; only its border/interpolation constants)

from . import CLASSES  # noqa: E402
from .errors import UserError  # noqa: E402
from .textures import KINDS, paper_texture, smooth_noise  # noqa: E402

STRENGTHS = ("clean", "scan", "photo")
DEFAULT_MIX = {"clean": 0.3, "scan": 0.3, "photo": 0.4}

# Which surface each capture condition is likely to show (weights; normalised when used).
PAPER_MIX = {
    "clean": {"screen": 0.6, "plain": 0.3, "printed": 0.1},
    "scan": {"plain": 0.5, "ruled": 0.15, "grid": 0.15, "printed": 0.15, "cardboard": 0.05},
    "photo": {"plain": 0.32, "ruled": 0.12, "grid": 0.12, "whiteboard": 0.12, "printed": 0.08,
              "wood": 0.06, "cardboard": 0.08, "screen": 0.10},
}
# Ink: "as_rendered" keeps the renderer's colours; the others recolour the strokes.
INK_MIX = {
    "clean": {"as_rendered": 0.85, "black": 0.1, "blue": 0.05},
    "scan": {"as_rendered": 0.4, "black": 0.25, "blue": 0.2, "pencil": 0.15},
    "photo": {"as_rendered": 0.3, "black": 0.25, "blue": 0.25, "pencil": 0.2},
}
WHITEBOARD_INKS = {"black": 0.4, "blue": 0.3, "red": 0.15, "green": 0.15}
_INK_RGB = {  # (centre colour, per-channel jitter)
    "black": ((25, 25, 30), 12),
    "blue": ((40, 55, 150), 20),
    "pencil": ((70, 70, 78), 12),
    "red": ((175, 35, 40), 20),
    "green": ((30, 120, 60), 20),
}
_BORDER = cv2.BORDER_REFLECT_101  # edges continue the paper (and any lead) instead of a flat colour
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


# ---------------------------------------------------------------- compositing

def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)


def _check_rgb(image: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise UserError(f"{what} must be an RGB uint8 array of shape HxWx3, got {got}")
    return image


def _paper_of(symbol: np.ndarray) -> np.ndarray:
    """The render's own background colour: median of the 1-px border (leads touching it are few)."""
    ring = np.concatenate([symbol[0], symbol[-1], symbol[1:-1, 0], symbol[1:-1, -1]]).astype(np.float32)
    return np.maximum(np.median(ring, axis=0), 1.0)


def ink_darkness(symbol_rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Ink coverage 0..1 per pixel: from `mask` if given, else 1 - luminance relative to the render's paper."""
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != symbol_rgb.shape[:2]:
            raise UserError(f"ink mask shape {m.shape} does not match the symbol's {symbol_rgb.shape[:2]}")
        if m.dtype == bool:
            return m.astype(np.float32)
        m = m.astype(np.float32)
        return np.clip(m / 255.0 if m.max() > 1.0 else m, 0.0, 1.0)
    bg = float(_luminance(_paper_of(symbol_rgb)))
    return np.clip(1.0 - _luminance(symbol_rgb.astype(np.float32)) / bg, 0.0, 1.0)


def composite_on_paper(symbol_rgb: np.ndarray, rng: np.random.Generator, kind: str | None = None,
                       mask: np.ndarray | None = None, ink: str = "as_rendered",
                       opacity: float = 1.0) -> np.ndarray:
    """Multiply the symbol's ink onto a paper texture, so it looks drawn or printed on that paper.

    `kind` None picks a paper uniformly; `ink` is "as_rendered" (keep the render's colours) or one of
    black/blue/pencil/red/green; `opacity` < 1 gives faint strokes (light pencil, dry pen).
    """
    _check_rgb(symbol_rgb, "symbol image")
    h, w = symbol_rgb.shape[:2]
    kind = KINDS[int(rng.integers(len(KINDS)))] if kind is None else kind
    paper = paper_texture(kind, (h, w), rng).astype(np.float32)
    if ink == "as_rendered":
        # multiply blend: paper * (symbol / its own paper colour) keeps coloured fills and grey levels
        ratio = np.minimum(symbol_rgb.astype(np.float32) / _paper_of(symbol_rgb), 1.0)
        if mask is not None:
            ratio = np.where(ink_darkness(symbol_rgb, mask)[..., None] > 0, ratio, 1.0)
        out = paper * (1.0 - opacity * (1.0 - ratio))
    elif ink in _INK_RGB:
        centre, jitter = _INK_RGB[ink]
        colour = np.clip(np.asarray(centre, np.float32) + rng.normal(0, jitter, 3), 0, 255) / 255.0
        d = ink_darkness(symbol_rgb, mask)
        # a pen stroke is fully dark even where the render anti-aliased a 1-px line to grey
        d = np.minimum(d / max(float(d.max()), 0.35), 1.0) * np.float32(opacity)
        if ink == "pencil":  # graphite catches only the paper's peaks: grainy strokes
            d = d * (0.7 + 0.3 * rng.random((h, w), dtype=np.float32))
        else:  # pen pressure / ink flow varies slowly along a stroke
            d = d * np.clip(1.0 - 0.12 * np.abs(smooth_noise(h, w, 3, rng)), 0.6, 1.0)
        out = paper * (1.0 - d[..., None] * (1.0 - colour[None, None, :]))
    else:
        raise UserError(f"unknown ink {ink!r}; choose as_rendered or one of: {', '.join(_INK_RGB)}")
    return np.clip(out, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- pipelines

def _compose(transforms: list, seed: int) -> A.Compose:
    """Compose with strict argument checking and one shared random state seeded from `seed`."""
    pipe = A.Compose(transforms, strict=True, seed=seed)
    return reseed(pipe, seed)


def reseed(pipeline: A.Compose, seed: int) -> A.Compose:
    """Give the whole pipeline one fresh generator from `seed`: its next output depends only on (image, seed)."""
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return pipeline


def schematic_pipeline(strength: str, seed: int, size: int = 128) -> A.Compose:
    """Capture conditions for a symbol already composited on paper; output has the input's shape.

    clean: screenshot/CAD export (identity or slight resampling, blur, JPEG);
    scan: flatbed scan (small rotation, stroke thickness, blur, contrast, specks, JPEG);
    photo: phone photo of paper (perspective, paper bend, uneven light, shadow, focus/motion blur,
    sensor noise, JPEG, downscale). `size` (the typical side in px) scales blur and stroke kernels.
    """
    k = max(0.5, size / 128.0)  # blur radii were chosen at 128 px
    low = max(0.35, 40.0 / size)  # never downscale below ~40 px
    if strength == "clean":
        t = [
            A.Affine(scale=(0.92, 1.08), translate_percent=(-0.03, 0.03), border_mode=_BORDER, p=0.3),
            A.OneOf([
                A.GaussianBlur(sigma_limit=(0.2 * k, 0.6 * k), p=1.0),
                A.Downscale(scale_range=(max(low, 0.6), 0.9),
                            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}, p=1.0),
            ], p=0.35),
            A.Morphological(scale=(2, 2), operation="erosion", p=0.1),  # bolder line style
            A.ImageCompression(quality_range=(60, 100), p=0.35),
        ]
    elif strength == "scan":
        t = [
            A.Affine(rotate=(-3, 3), scale=(0.93, 1.07), translate_percent=(-0.03, 0.03),
                     border_mode=_BORDER, p=0.7),
            # pen width: erosion of the bright paper thickens dark strokes (dilation would erase
            # 1-px strokes of small renders, so strokes are never thinned here)
            A.Morphological(scale=(2, max(2, round(3 * k))), operation="erosion", p=0.3),
            A.GaussianBlur(sigma_limit=(0.3 * k, 1.0 * k), p=0.5),
            A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.08), contrast_limit=(-0.2, 0.15), p=0.6),
            A.RandomGamma(gamma_limit=(80, 125), p=0.4),
            A.SaltAndPepper(amount=(0.0005, 0.002), salt_vs_pepper=(0.3, 0.7), p=0.25),
            A.ToGray(p=0.3),
            A.Downscale(scale_range=(max(low, 0.5), 0.9),
                        interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}, p=0.3),
            A.ImageCompression(quality_range=(40, 95), p=0.6),
        ]
    elif strength == "photo":
        t = [
            A.Perspective(scale=(0.02, 0.07), border_mode=_BORDER, p=0.6),
            A.Affine(rotate=(-8, 8), scale=(0.88, 1.12), translate_percent=(-0.04, 0.04),
                     border_mode=_BORDER, p=0.7),
            A.OneOf([  # paper not lying flat / lens bending straight lines / a shaky hand
                A.OpticalDistortion(distort_limit=(-0.08, 0.08), border_mode=_BORDER, p=1.0),
                A.GridDistortion(num_steps=3, distort_limit=(-0.08, 0.08), border_mode=_BORDER, p=1.0),
                A.ElasticTransform(alpha=30 * k, sigma=8 * k, approximate=True, border_mode=_BORDER, p=0.5),
            ], p=0.35),
            A.OneOf([
                A.Illumination(mode="linear", intensity_range=(0.05, 0.2), p=1.0),
                A.Illumination(mode="corner", intensity_range=(0.05, 0.2), p=1.0),
                A.Illumination(mode="gaussian", intensity_range=(0.05, 0.2), p=1.0),
            ], p=0.5),
            # soft blotchy shade of a hand/phone or a wavy sheet (hard-edged RandomShadow looked fake)
            A.PlasmaShadow(shadow_intensity_range=(0.03, 0.15), plasma_size=128, roughness=0.3, p=0.15),
            A.RandomBrightnessContrast(brightness_limit=(-0.15, 0.05), contrast_limit=(-0.2, 0.1), p=0.7),
            A.RandomGamma(gamma_limit=(80, 125), p=0.4),
            A.PlanckianJitter(mode="blackbody", temperature_limit=(5000, 9000), p=0.3),  # white balance of indoor light
            A.OneOf([
                A.Defocus(radius=(1, max(2, round(2 * k))), alias_blur=(0.1, 0.3), p=0.3),
                A.MotionBlur(blur_limit=(3, max(3, 2 * round(2 * k) + 1)), p=0.3),
                A.GaussianBlur(sigma_limit=(0.5 * k, 1.4 * k), p=0.4),
            ], p=0.6),
            A.OneOf([
                A.ISONoise(color_shift=(0.01, 0.04), intensity=(0.1, 0.3), p=0.3),  # p here = weight within OneOf
                A.GaussNoise(std_range=(0.01, 0.05), p=0.7),
            ], p=0.6),
            A.Downscale(scale_range=(max(low, 0.45), 0.85),
                        interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}, p=0.3),
            A.ImageCompression(quality_range=(35, 90), p=0.7),
        ]
    else:
        raise UserError(f"unknown augmentation strength {strength!r}; choose one of: {', '.join(STRENGTHS)}")
    return _compose(t, seed)


def photo_pipeline(seed: int, size: int) -> A.Compose:
    """Training augmentation for component photos: any input size -> size x size, object mostly kept.

    The crop may be up to 2:1 and is squashed to a square, so evaluation should resize the whole
    photo to size x size (no centre crop) to see the same geometry.
    """
    if int(size) < 8:
        raise UserError(f"photo augmentation size must be at least 8 px, got {size}")
    size = int(size)
    t = [
        A.RandomResizedCrop(size=(size, size), scale=(0.6, 1.0), ratio=(0.5, 2.0), p=1.0),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.2),
        A.RandomRotate90(p=0.25),
        A.Affine(rotate=(-20, 20), scale=(0.9, 1.1), border_mode=_BORDER, p=0.5),
        A.OneOf([
            A.ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2), saturation=(0.7, 1.3),
                          hue=(-0.03, 0.03), p=1.0),
            A.HueSaturationValue(hue_shift_limit=(-6, 6), sat_shift_limit=(-25, 25),
                                 val_shift_limit=(-15, 15), p=1.0),
        ], p=0.6),
        A.RandomBrightnessContrast(brightness_limit=(-0.2, 0.2), contrast_limit=(-0.2, 0.2), p=0.4),
        A.OneOf([
            A.GaussianBlur(sigma_limit=(0.3, 1.2), p=1.0),
            A.MotionBlur(blur_limit=(3, 5), p=1.0),
        ], p=0.2),
        A.OneOf([
            A.GaussNoise(std_range=(0.01, 0.04), p=1.0),
            A.ISONoise(color_shift=(0.01, 0.03), intensity=(0.1, 0.3), p=1.0),
        ], p=0.2),
        A.CLAHE(clip_limit=(1.0, 3.0), p=0.1),
        A.ToGray(p=0.05),
        A.ImageCompression(quality_range=(50, 95), p=0.3),
    ]
    return _compose(t, seed)


def apply(pipeline: A.Compose, image: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Run a pipeline on one RGB uint8 image; with `seed`, the result depends only on (image, seed)."""
    _check_rgb(image, "image to augment")
    if seed is not None:
        reseed(pipeline, int(seed))
    return pipeline(image=image)["image"]


@functools.lru_cache(maxsize=32)
def _cached_schematic(strength: str, size_bucket: int) -> A.Compose:
    """One pipeline per (strength, size bucket) per process; reseeded per image, so the build seed is moot."""
    return schematic_pipeline(strength, seed=0, size=size_bucket)


def _pick(weights: dict, rng: np.random.Generator) -> str:
    names = list(weights)
    w = np.asarray([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def check_mix(mix: dict | None) -> dict:
    """Validate a strength mix (e.g. from a config file): known names, non-negative, not all zero."""
    if mix is None:
        return dict(DEFAULT_MIX)
    if not isinstance(mix, dict) or not mix:
        raise UserError(f"augmentation mix must be a mapping like {DEFAULT_MIX}, got {mix!r}")
    bad = [k for k in mix if k not in STRENGTHS]
    if bad:
        raise UserError(f"unknown augmentation strength(s) {', '.join(map(repr, bad))} in mix; "
                        f"choose from: {', '.join(STRENGTHS)}")
    try:
        vals = {k: float(v) for k, v in mix.items()}
    except (TypeError, ValueError):
        raise UserError(f"augmentation mix weights must be numbers, got {mix!r}") from None
    if any(not np.isfinite(v) or v < 0 for v in vals.values()) or sum(vals.values()) <= 0:
        raise UserError(f"augmentation mix weights must be >= 0 with a positive sum, got {mix!r}")
    return vals


def realistic(symbol_rgb: np.ndarray, rng: np.random.Generator, mix: dict | None = None,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Clean render -> realistic capture. Returns (image, params) where params are the knobs used.

    Draws everything from `rng` (strength by `mix`, paper, ink, opacity, augmentation seed), so the
    same rng state gives the same image in any worker process.
    """
    _check_rgb(symbol_rgb, "symbol image")
    weights = check_mix(mix)
    strength = _pick(weights, rng)
    paper = _pick(PAPER_MIX[strength], rng)
    ink = _pick(WHITEBOARD_INKS if paper == "whiteboard" else INK_MIX[strength], rng)
    lo = {"clean": 0.9, "scan": 0.75, "photo": 0.65}[strength]
    opacity = float(rng.uniform(lo, 1.0))
    aug_seed = int(rng.integers(0, 2**31 - 1))
    image = composite_on_paper(symbol_rgb, rng, kind=paper, mask=mask, ink=ink, opacity=opacity)
    size = max(image.shape[:2])
    pipe = _cached_schematic(strength, int(min(256, max(64, 32 * round(size / 32)))))
    out = apply(pipe, image, seed=aug_seed)
    params = {"strength": strength, "paper": paper, "ink": ink, "ink_opacity": round(opacity, 3),
              "aug_seed": aug_seed}
    return out, params


# ---------------------------------------------------------------- preview command

def _standin_symbol(cls: str, seed: int, size: int) -> np.ndarray:
    """A crude PIL line drawing per class, used only until generator.render exists."""
    from PIL import Image, ImageDraw

    r = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    s, c = size, size / 2
    lw = max(1, int(round(size * r.uniform(0.015, 0.035))))
    ink = (0, 0, 0)
    d.line([(0.05 * s, c), (0.3 * s, c)], fill=ink, width=lw)
    d.line([(0.7 * s, c), (0.95 * s, c)], fill=ink, width=lw)
    if cls == "resistor":
        pts = [(0.3 * s + i * 0.4 * s / 6, c + (0 if i in (0, 6) else (-1) ** i * 0.12 * s)) for i in range(7)]
        d.line(pts, fill=ink, width=lw)
    elif cls == "capacitor":
        d.line([(0.3 * s, c), (0.45 * s, c)], fill=ink, width=lw)
        d.line([(0.55 * s, c), (0.7 * s, c)], fill=ink, width=lw)
        for x in (0.45, 0.55):
            d.line([(x * s, c - 0.2 * s), (x * s, c + 0.2 * s)], fill=ink, width=lw)
    elif cls == "inductor":
        for i in range(4):
            x0 = 0.3 * s + i * 0.1 * s
            d.arc([x0, c - 0.06 * s, x0 + 0.1 * s, c + 0.06 * s], 180, 360, fill=ink, width=lw)
    elif cls == "diode":
        d.polygon([(0.35 * s, c - 0.15 * s), (0.35 * s, c + 0.15 * s), (0.62 * s, c)], outline=ink, width=lw)
        d.line([(0.62 * s, c - 0.15 * s), (0.62 * s, c + 0.15 * s)], fill=ink, width=lw)
        d.line([(0.3 * s, c), (0.35 * s, c)], fill=ink, width=lw)
        d.line([(0.62 * s, c), (0.7 * s, c)], fill=ink, width=lw)
    elif cls in ("voltage_source", "transformer"):
        d.ellipse([0.3 * s, c - 0.2 * s, 0.7 * s, c + 0.2 * s], outline=ink, width=lw)
        d.line([(0.42 * s, c), (0.5 * s, c - 0.06 * s), (0.58 * s, c)], fill=ink, width=lw)
    else:  # integrated_circuit, transistor: a box with pins / a bar with legs
        d.rectangle([0.3 * s, 0.3 * s, 0.7 * s, 0.7 * s], outline=ink, width=lw)
        d.line([(0.5 * s, 0.3 * s), (0.5 * s, 0.05 * s)], fill=ink, width=lw)
    return np.asarray(img)


def _schematic_source():
    """render_sample(cls, seed, size) from generator.render once it exists, else the PIL stand-in."""
    try:
        from .render import render_sample
    except ImportError:
        return _standin_symbol, "stand-in"
    return render_sample, "render"


def _list_images(folder: Path) -> list[tuple[Path, str]]:
    """Image files under `folder`; the label is the class folder name (or '' for loose files)."""
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist; pass --images DIR with one sub-folder per class")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_EXTS)}) under {folder}; pass a folder of class folders")
    return [(p, p.parent.name if p.parent != folder else "") for p in files]


def load_rgb(path: Path) -> np.ndarray:
    """An image file as an RGB array, or a one-line error naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"cannot read image {path}: {e}; remove or replace the file") from None


def _default_photos() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"


def _square(img: np.ndarray, size: int) -> np.ndarray:
    """Squash-resize to size x size (what evaluation does), for the 'before' column."""
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def preview_mix(domain: str = "schematic", images: Path | None = None, n: int = 16, size: int = 128,
                seed: int = 0, out: Path = Path("runs/preview_mix.png"), mix: dict | None = None) -> Path:
    """Write a before/after contact sheet of the realistic pipeline (schematic) or photo pipeline."""
    from .sheet import contact_sheet, save_png

    if domain not in ("schematic", "photo"):
        raise UserError(f"unknown domain {domain!r}; choose schematic or photo")
    if n < 1 or size < 16:
        raise UserError(f"--n must be >= 1 and --size >= 16 (got n={n}, size={size})")
    rng = np.random.default_rng(seed)
    befores: list[np.ndarray] = []
    labels: list[str] = []
    if images is None and domain == "photo":
        images = _default_photos()
        if not images.is_dir():
            raise UserError(f"no photos at {images}; pass --images DIR (one sub-folder per class)")
    if images is not None:
        found = _list_images(Path(images))
        picks = rng.choice(len(found), size=min(n, len(found)), replace=False)
        for i in sorted(picks):
            befores.append(load_rgb(found[i][0]))
            labels.append(found[i][1])
    else:
        make, _ = _schematic_source()
        for i in range(n):
            cls = CLASSES[i % len(CLASSES)]
            befores.append(make(cls, seed * 100_003 + i, size))
            labels.append(cls)
    tiles, caps = [], []
    if domain == "photo":
        pipe = photo_pipeline(seed, size)
        for i, (img, lab) in enumerate(zip(befores, labels)):
            tiles += [_square(img, size), apply(pipe, img, seed=seed * 100_003 + i)]
            caps += [lab or "photo", "augmented"]
    else:
        for img, lab in zip(befores, labels):
            img = img if img.shape[:2] == (size, size) else _square(img, size)
            after, params = realistic(img, rng, mix=mix)
            tiles += [img, after]
            caps += [lab, f"{params['strength']} {params['paper']} {params['ink']}"]
    return save_png(contact_sheet(tiles, caps, cols=8, cell=max(96, size)), Path(out))


def time_realistic(size: int, n: int = 200, seed: int = 0) -> float:
    """Mean CPU milliseconds per image of realistic() on a stand-in symbol of side `size`."""
    rng = np.random.default_rng(seed)
    sym = _standin_symbol("resistor", seed, size)
    realistic(sym, rng)  # warm the pipeline cache
    t = time.process_time()  # CPU time: other processes on a busy machine do not inflate it
    for _ in range(n):
        realistic(sym, rng)
    return (time.process_time() - t) / n * 1000


def time_seeding(strength: str = "photo", size: int = 128, n: int = 50) -> dict[str, float]:
    """CPU milliseconds per image of the three ways to seed per image (the reason for :func:`reseed`)."""
    img = composite_on_paper(_standin_symbol("resistor", 0, size), np.random.default_rng(0), kind="plain")
    pipe = schematic_pipeline(strength, 0, size)

    def rebuild(s):
        schematic_pipeline(strength, s, size)(image=img)

    def seed_each(s):
        pipe.set_random_seed(s)
        pipe(image=img)

    def shared_state(s):
        apply(pipe, img, seed=s)

    out = {}
    for name, fn in (("rebuild per image", rebuild), ("set_random_seed", seed_each),
                     ("set_random_state (used)", shared_state)):
        fn(0)
        t = time.process_time()
        for s in range(n):
            fn(s)
        out[name] = (time.process_time() - t) / n * 1000
    return out


def register(app) -> None:
    """Add `preview-mix` to the image2circuit CLI."""
    import typer

    @app.command("preview-mix")
    def preview_mix_cmd(
        domain: str = typer.Option("schematic", help="schematic (render -> paper -> capture) or photo"),
        images: Path = typer.Option(None, help="folder of class folders to augment instead of renders"),
        n: int = typer.Option(16, help="how many before/after pairs"),
        size: int = typer.Option(128, help="image side in px"),
        seed: int = typer.Option(0, help="random seed (same seed, same sheet)"),
        out: Path = typer.Option(Path("runs/preview_mix.png"), help="PNG to write"),
        timing: bool = typer.Option(False, help="also print ms/image of realistic() and of 3 seeding methods"),
    ) -> None:
        """Before/after contact sheet of the capture-condition augmentations, to look at before training."""
        path = preview_mix(domain, images, n, size, seed, out)
        typer.echo(f"wrote {path}")
        if timing:
            typer.echo(f"realistic(): {time_realistic(size):.2f} ms/image at {size} px")
            for name, ms in time_seeding("photo", size).items():
                typer.echo(f"photo pipeline, {name}: {ms:.2f} ms/image")
