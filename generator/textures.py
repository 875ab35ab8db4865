"""Procedural backgrounds a symbol can be drawn on: paper, ruled and grid paper, whiteboard, desk, screen.

Real drawings are never on pure white: the model must learn to ignore paper tone, fibres, printed
guide lines and faint background text. Everything here is numpy only and driven by a caller's
``np.random.Generator`` so a texture is reproducible from the image's own seed.
"""
from __future__ import annotations

import numpy as np

from .errors import UserError

KINDS = ("plain", "ruled", "grid", "whiteboard", "wood", "cardboard", "printed", "screen")


def _size(size) -> tuple[int, int]:
    """Accept S or (H, W); anything else is a programming error, said plainly."""
    h, w = (size, size) if np.isscalar(size) else tuple(size)
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise UserError(f"texture size must be positive, got {size!r}")
    return h, w


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of a small 2-D grid to (h, w), separably: cheap smooth noise without scipy/cv2."""
    gh, gw = grid.shape

    def taps(n_out: int, n_in: int):
        pos = np.linspace(0.0, n_in - 1.0, n_out, dtype=np.float32)
        i0 = np.minimum(pos.astype(np.int32), max(n_in - 2, 0))
        return i0, np.minimum(i0 + 1, n_in - 1), pos - i0

    x0, x1, fx = taps(w, gw)
    rows = grid[:, x0] * (1 - fx) + grid[:, x1] * fx  # (gh, w)
    y0, y1, fy = taps(h, gh)
    fy = fy[:, None]
    return (rows[y0] * (1 - fy) + rows[y1] * fy).astype(np.float32, copy=False)


def _randn(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


def smooth_noise(h: int, w: int, cells: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-ish smooth field with about `cells` blobs across the longer side."""
    n = max(2, int(round(cells)) + 1)
    gh = max(2, int(round(n * h / max(h, w))) + 1)
    gw = max(2, int(round(n * w / max(h, w))) + 1)
    return _upsample(_randn(rng, (gh, gw)), h, w)


def _fibres(h: int, w: int, rng: np.random.Generator, amp: float) -> np.ndarray:
    """Paper fibre: short streaks in both directions plus per-pixel grain (grey levels, zero mean)."""
    sx = max(2, w // int(rng.integers(4, 9)))
    sy = max(2, h // int(rng.integers(4, 9)))
    horiz = _upsample(_randn(rng, (h, sx)), h, w)
    vert = _upsample(_randn(rng, (sy, w)), h, w)
    grain = _randn(rng, (h, w))
    return amp * (0.5 * horiz + 0.5 * vert + 0.6 * grain)


def _base(h: int, w: int, rng: np.random.Generator, colour, tone: float, fibre: float) -> np.ndarray:
    """Flat colour + low-frequency tone drift + fibre noise, as float32 0..255."""
    colour = np.asarray(colour, np.float32)
    field = tone * smooth_noise(h, w, rng.uniform(1.5, 4.0), rng) + _fibres(h, w, rng, fibre)
    return colour[None, None, :] + field[:, :, None]


def _paper_colour(rng: np.random.Generator, lo: float = 228, hi: float = 252) -> np.ndarray:
    """White, cream or light grey paper; a slight warm bias like most office and notebook paper."""
    level = rng.uniform(lo, hi)
    warm = rng.uniform(-2.0, 6.0)
    tint = rng.normal(0.0, 1.5, 3) + np.array([warm, warm * 0.4, -warm])
    return np.clip(level + tint, 0, 255)


def _lines(coord: np.ndarray, pitch: float, phase: float, half_width: float) -> np.ndarray:
    """Anti-aliased coverage (0..1) of thin lines every `pitch` px along one axis."""
    d = np.abs(((coord - phase + pitch / 2) % pitch) - pitch / 2)
    return np.clip(1.0 - d / max(half_width, 1e-3), 0.0, 1.0).astype(np.float32)


def _blend(img: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    a = alpha[:, :, None]
    return img * (1 - a) + np.asarray(colour, np.float32)[None, None, :] * a


def _plain(h, w, rng):
    return _base(h, w, rng, _paper_colour(rng), rng.uniform(1.5, 6.0), rng.uniform(0.8, 2.5))


def _ruled(h, w, rng):
    img = _plain(h, w, rng)
    pitch = max(5.0, rng.uniform(0.09, 0.25) * h)
    hw = rng.uniform(0.5, 1.1) * max(1.0, h / 160)
    ys = np.arange(h, dtype=np.float32)[:, None]
    rows = np.broadcast_to(_lines(ys, pitch, rng.uniform(0, pitch), hw), (h, w))
    colour = (rng.uniform(140, 190), rng.uniform(175, 210), rng.uniform(215, 245))
    img = _blend(img, rows * rng.uniform(0.35, 0.8), colour)
    if rng.random() < 0.3:  # red/pink margin line of a notebook page
        xs = np.arange(w, dtype=np.float32)[None, :]
        x = rng.uniform(0.05, 0.35) * w
        margin = np.broadcast_to(np.clip(1.0 - np.abs(xs - x) / hw, 0, 1), (h, w))
        img = _blend(img, margin * rng.uniform(0.3, 0.7), (rng.uniform(220, 245), rng.uniform(110, 160), 150))
    return img


def _grid(h, w, rng):
    img = _plain(h, w, rng)
    pitch = max(4.0, rng.uniform(0.05, 0.15) * max(h, w))
    hw = rng.uniform(0.4, 0.9) * max(1.0, max(h, w) / 160)
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    py, px = rng.uniform(0, pitch, 2)
    ly, lx = _lines(ys, pitch, py, hw), _lines(xs, pitch, px, hw)
    palette = [(150, 185, 230), (170, 175, 185), (150, 205, 170), (235, 175, 130)]
    colour = np.asarray(palette[int(rng.integers(len(palette)))], np.float32) + rng.normal(0, 8, 3)
    if rng.random() < 0.2:  # dot-grid paper
        cover = ly * lx * 1.0
    else:
        cover = np.maximum(ly, lx)
        if rng.random() < 0.4:  # engineering paper: every 5th line stronger
            major = np.maximum(_lines(ys, pitch * 5, py, hw * 1.4), _lines(xs, pitch * 5, px, hw * 1.4))
            cover = np.maximum(cover * 0.6, major)
    return _blend(img, cover * rng.uniform(0.3, 0.75), np.clip(colour, 0, 255))


def _whiteboard(h, w, rng):
    level = rng.uniform(238, 254)
    colour = np.clip(level + np.array([-2.0, 0.0, 2.5]) + rng.normal(0, 1.5, 3), 0, 255)
    img = _base(h, w, rng, colour, rng.uniform(1.0, 3.0), rng.uniform(0.2, 0.8))
    # faint smudges of old, badly erased marker: thresholded smooth noise, soft edges
    smudge = np.clip(smooth_noise(h, w, rng.uniform(3, 7), rng) - rng.uniform(0.6, 1.4), 0, None)
    # wipe streaks: noise stretched along the direction the eraser moved
    shape = (max(2, h // 3), 3) if rng.random() < 0.5 else (3, max(2, w // 3))
    streak = _upsample(_randn(rng, shape), h, w)
    ghost = np.clip(smudge * rng.uniform(8, 25) + np.abs(streak) * rng.uniform(0, 3), 0, 40)
    tint = np.array([1.0, 1.0, 0.9]) if rng.random() < 0.5 else np.array([0.9, 0.95, 1.0])
    img = img - ghost[:, :, None] * tint[None, None, :]
    # glossy surface: a soft highlight blob
    glare = np.clip(smooth_noise(h, w, 1.5, rng), 0, None) * rng.uniform(0, 8)
    return img + glare[:, :, None]


def _brown(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """Tan/brown: lightness first, then fixed-sign drops to green and blue (never olive or pink)."""
    level = rng.uniform(lo, hi)
    return np.array([level, level - rng.uniform(18, 32), level - rng.uniform(45, 75)])


def _wood(h, w, rng):
    img = _base(h, w, rng, _brown(rng, 195, 235), rng.uniform(2, 5), rng.uniform(0.5, 1.2))
    vertical = rng.random() < 0.5
    n = max(h, w)
    across = (np.arange(w) if vertical else np.arange(h)).astype(np.float32) / n
    along_len, across_len = (h, w) if vertical else (w, h)
    # grain runs along one axis: a field that varies slowly along it and fast across it
    warp = _upsample(_randn(rng, (3, 4)), along_len, across_len) * rng.uniform(0.05, 0.2)
    freq = rng.uniform(8, 20)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (across[None, :] * freq + warp))
    rings = rings ** rng.uniform(3, 8)  # narrow dark late-wood bands
    fine = _upsample(_randn(rng, (4, max(2, across_len // 2))), along_len, across_len)
    dark = rings * rng.uniform(0.05, 0.14) + np.abs(fine) * rng.uniform(0.01, 0.03)
    if not vertical:  # built as (along, across) = (w, h)
        dark = dark.T
    return img * (1 - dark[:, :, None] * np.array([0.8, 1.0, 1.25])[None, None, :])


def _cardboard(h, w, rng):
    img = _base(h, w, rng, _brown(rng, 180, 215), rng.uniform(3, 7), rng.uniform(1.5, 3.0))
    if rng.random() < 0.5:  # corrugation showing through the liner
        coord = (np.arange(h, dtype=np.float32)[:, None] if rng.random() < 0.5
                 else np.arange(w, dtype=np.float32)[None, :])
        pitch = max(4.0, rng.uniform(0.05, 0.1) * max(h, w))
        img = img * (1 - rng.uniform(0.01, 0.03) * (0.5 + 0.5 * np.sin(2 * np.pi * coord / pitch)))[..., None]
    flecks = rng.random((h, w)) < rng.uniform(0.0005, 0.003)  # recycled-fibre specks
    img[flecks] *= rng.uniform(0.75, 0.9)
    return img


def _printed(h, w, rng):
    """A printed page behind/around the symbol: faint grey rows of word-like blocks."""
    img = _plain(h, w, rng)
    line_h = max(2, int(rng.uniform(0.025, 0.055) * h))
    pitch = line_h + max(2, int(rng.uniform(0.6, 1.2) * line_h))
    n_lines = h // pitch + 2
    phase = int(rng.integers(0, pitch))
    y = np.arange(h) + phase
    line_idx = y // pitch
    in_band = (y % pitch) < line_h
    # words: runs along x; each line has its own random word/gap pattern, then letter gaps
    word_len = max(3, int(rng.uniform(0.04, 0.12) * w))
    cells = rng.random((n_lines, w // 2 + 2)) < 0.8
    words = np.repeat(rng.random((n_lines, w // word_len + 2)) < 0.75, word_len, axis=1)[:, :w]
    letters = np.repeat(cells, 2, axis=1)[:, :w]
    ragged = np.arange(w)[None, :] < (w * rng.uniform(0.5, 1.0, (n_lines, 1)))  # short last lines
    mask = (words & letters & ragged)[line_idx % n_lines] & in_band[:, None]
    if rng.random() < 0.5:  # text only in part of the frame, as in a figure crop
        region = smooth_noise(h, w, 1.5, rng) > rng.uniform(-0.5, 0.5)
        mask &= region
    return _blend(img, mask.astype(np.float32) * rng.uniform(0.04, 0.18), (60, 60, 65))


def _screen(h, w, rng):
    level = rng.uniform(236, 255)
    cast = rng.choice([np.array([-3.0, 0.0, 4.0]), np.array([3.0, 1.0, -4.0]), np.zeros(3)])
    img = _base(h, w, rng, np.clip(level + cast, 0, 255), rng.uniform(0.3, 2.0), rng.uniform(0.0, 0.4))
    if rng.random() < 0.4:  # moire / pixel-grid beat of a photographed monitor
        ys = np.arange(h, dtype=np.float32)[:, None]
        xs = np.arange(w, dtype=np.float32)[None, :]
        ang, period = rng.uniform(0, np.pi), rng.uniform(3, 12)
        moire = np.sin(2 * np.pi * (xs * np.cos(ang) + ys * np.sin(ang)) / period)
        img = img + (moire * rng.uniform(0.5, 3.0))[:, :, None]
    return img


_MAKERS = {
    "plain": _plain,
    "ruled": _ruled,
    "grid": _grid,
    "whiteboard": _whiteboard,
    "wood": _wood,
    "cardboard": _cardboard,
    "printed": _printed,
    "screen": _screen,
}
assert tuple(_MAKERS) == KINDS


def paper_texture(kind: str, size, rng: np.random.Generator) -> np.ndarray:
    """A light background of the given kind, uint8 H x W x 3; `size` is S or (H, W)."""
    if kind not in _MAKERS:
        raise UserError(f"unknown paper kind {kind!r}; choose one of: {', '.join(KINDS)}")
    h, w = _size(size)
    img = _MAKERS[kind](h, w, rng)
    return np.clip(img, 0, 255).astype(np.uint8)
