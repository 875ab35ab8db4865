"""Render one catalogue symbol to a raster image, with all per-image variation drawn from one RNG.

schemdraw lays the symbol out; a recording figure (same interface as schemdraw's SVG backend)
captures its geometry as polylines, so we can rotate, stretch, perturb (hand-drawn style) and
decorate it (wires, labels, neighbours) before writing one small SVG that resvg rasterises.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import resvg_py
import schemdraw
from PIL import Image, ImageDraw, ImageFont

from . import CLASSES
from .catalogue import LABELS, choose_recipe, recipes
from .errors import UserError

TERMINALS = ("start", "end", "base", "collector", "emitter", "gate", "drain", "source",
             "in1", "in2", "out", "p1", "p2", "s1", "s2")


@dataclass
class Stroke:
    """A polyline (or polygon) in drawing units; lw is schemdraw's relative line width (2 = normal)."""

    pts: np.ndarray
    closed: bool = False
    filled: bool = False
    lw: float = 2.0
    dashed: bool = False


@dataclass
class Text:
    s: str
    xy: tuple[float, float]
    size: float


def _arc_points(center, width, height, theta1, theta2, angle=0.0, n=None) -> np.ndarray:
    t1, t2 = float(theta1), float(theta2)
    if t2 <= t1:
        t2 += 360
    n = n or max(8, int((t2 - t1) / 7.5))
    t = np.radians(np.linspace(t1, t2, n))
    x, y = width / 2 * np.cos(t), height / 2 * np.sin(t)
    a = math.radians(angle)
    return np.stack([center[0] + x * math.cos(a) - y * math.sin(a), center[1] + x * math.sin(a) + y * math.cos(a)], 1)


def _is_fill(fill) -> bool:
    return fill not in (None, False, "none", "")


class RecordingFigure:
    """Duck-types schemdraw's Figure: records every primitive as geometry instead of drawing it."""

    def __init__(self):
        self.strokes: list[Stroke] = []
        self.texts: list[Text] = []

    def add_gradient(self, gradient):
        return "none"

    def plot(self, x, y, color="black", ls="-", lw=2, fill="none", capstyle=None, joinstyle=None, clip=None, zorder=2, **_):
        pts = np.stack([np.asarray(x, float), np.asarray(y, float)], 1)
        # NaN entries separate sub-paths.
        bad = np.isnan(pts).any(1)
        start = 0
        for i in list(np.flatnonzero(bad)) + [len(pts)]:
            if i - start >= 2:
                self.strokes.append(Stroke(pts[start:i], filled=_is_fill(fill), lw=lw or 2, dashed=ls not in ("-", None)))
            start = i + 1

    def poly(self, verts, closed=True, color="black", fill="none", lw=2, ls="-", hatch=False, capstyle=None,
             joinstyle=None, clip=None, zorder=1):
        self.strokes.append(Stroke(np.asarray(verts, float), closed=closed, filled=_is_fill(fill), lw=lw or 2))

    def circle(self, center, radius, color="black", fill="none", lw=2, ls="-", clip=None, zorder=1):
        pts = _arc_points(center, 2 * radius, 2 * radius, 0, 360, n=40)[:-1]
        self.strokes.append(Stroke(pts, closed=True, filled=_is_fill(fill), lw=lw if lw is not None else 2))

    def arc(self, center, width, height, theta1=0, theta2=90, angle=0, color="black", lw=2, ls="-", fill=None,
            zorder=1, arrow=None, arrowwidth=0.15, arrowlength=0.25, clip=None):
        pts = _arc_points(center, width, height, theta1, theta2, angle)
        self.strokes.append(Stroke(pts, filled=_is_fill(fill), lw=lw or 2))
        if arrow:
            end = pts[-1] if ">" in arrow else pts[0]
            prev = pts[-2] if ">" in arrow else pts[1]
            self.arrow(end, math.degrees(math.atan2(*(end - prev)[::-1])), arrowwidth, arrowlength)

    def arrow(self, xy, theta, arrowwidth=0.15, arrowlength=0.25, color="black", lw=2, clip=None, zorder=1):
        x, y = xy
        c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))
        base = (x - arrowlength * c, y - arrowlength * s)
        w = arrowwidth / 2
        pts = [(x, y), (base[0] - w * s, base[1] + w * c), (base[0] + w * s, base[1] - w * c)]
        self.strokes.append(Stroke(np.asarray(pts), closed=True, filled=True, lw=1))

    def bezier(self, p, color="black", lw=2, ls="-", capstyle=None, zorder=1, arrow=None, arrowlength=0.25,
               arrowwidth=0.15, clip=None):
        p = np.asarray([tuple(q) for q in p], float)
        t = np.linspace(0, 1, 24)[:, None]
        if len(p) == 4:
            pts = (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3]
        else:
            pts = (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t ** 2 * p[2]
        self.strokes.append(Stroke(pts, lw=lw or 2))

    def text(self, s, x, y, color="black", fontsize=14, fontfamily="sans", mathfont=None, rotation=0,
             halign="center", valign="center", rotation_mode="anchor", clip=None, zorder=3, **_):
        if str(s).strip():
            self.texts.append(Text(str(s).replace("$", ""), (x, y), fontsize))

    def path(self, *args, **kwargs):  # free-form SVG paths: no catalogue element uses them
        pass

    def image(self, *args, **kwargs):
        pass


@lru_cache(maxsize=4096)
def _captured(recipe_name: str, cls: str, args: tuple, unit: float) -> tuple[RecordingFigure, dict[str, np.ndarray]]:
    """Geometry of one (recipe, arguments, lead unit): schemdraw layout is the slow part, so reuse it."""
    from .catalogue import recipes

    recipe = next(r for r in recipes(cls) if r.name == recipe_name)
    return capture(recipe.element_class()(**dict(args)), unit)


def capture(element, unit: float = 3.0) -> tuple[RecordingFigure, dict[str, np.ndarray]]:
    """Lay out one element with schemdraw and record its geometry and terminal anchors."""
    d = schemdraw.Drawing(show=False, unit=unit)
    d.add(element)
    fig = RecordingFigure()
    for e in d.elements:
        e._draw(fig)
    anchors = {k: np.asarray(v, float) for k, v in element.absanchors.items() if k in TERMINALS}
    return fig, anchors


# --- style ---------------------------------------------------------------------------------------
INKS = {  # CAD tools and pens: black dominates, then blues, reds, greens, greys
    "black": "#101010", "ballpoint_blue": "#1c2f8a", "blue": "#1f4fd0", "navy": "#1a1a60", "red": "#b01818",
    "darkred": "#7a1010", "green": "#0f6b2a", "teal": "#0f7f7f", "pencil": "#4a4a4a", "grey": "#666666",
}
INK_WEIGHTS = {"black": 8, "ballpoint_blue": 2, "blue": 1.5, "navy": 1, "red": 1, "darkred": 0.7, "green": 0.7,
               "teal": 0.7, "pencil": 2, "grey": 1}
LOWRES_CANVAS = (24, 64)  # low-resolution renders are drawn on a canvas this many pixels wide, then scaled up
FILLS = ("#f5e6a0", "#ffd8a8", "#cfe3ff", "#d9f2d0", "#e8e8e8")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Oblique.ttf")

@dataclass
class StyleMix:
    """Probabilities of the style knobs; the defaults are the shipped dataset's. Tune per dataset."""

    hand: float = 0.45          # hand-drawn wobble instead of CAD-straight lines
    wires: float = 0.6          # wires leaving the terminals
    labels: float = 0.6         # designator / value text near the symbol
    neighbour: float = 0.25     # a fragment of another symbol at the image edge
    lowres: float = 0.25        # render small and scale up, like tiny crops of real figures
    axis_aligned: float = 0.75  # rotation near a multiple of 90 degrees (else any angle)
    fill_colour: float = 0.08   # closed shapes (op-amp triangles, IC boxes) filled with a pale colour


@lru_cache(maxsize=1)
def _font_dir() -> str:
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


@lru_cache(maxsize=512)
def _font(name: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(os.path.join(_font_dir(), name), px)


def _rot(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _densify(pts: np.ndarray, closed: bool, step: float) -> np.ndarray:
    if closed:
        pts = np.vstack([pts, pts[:1]])
    seg = np.diff(pts, axis=0)
    lens = np.hypot(seg[:, 0], seg[:, 1])
    out = [pts[:1]]
    for p, d, L in zip(pts[:-1], seg, lens):
        k = max(1, int(math.ceil(L / step)))
        out.append(p + d * (np.arange(1, k + 1)[:, None] / k))
    return np.vstack(out)


def _wobble(pts: np.ndarray, closed: bool, amp: float, rng: np.random.Generator) -> np.ndarray:
    """Hand-drawn stroke: smooth low-frequency displacement, jittered corners and overshooting ends.

    The wobble's wavelength is in absolute units (about 15-40 amplitudes), so short strokes bow
    gently while long ones meander, as a hand does.
    """
    if amp <= 0:
        return pts
    if len(pts) <= 16:  # corners and zig-zag peaks land off-grid (not for sampled curves)
        pts = pts + rng.normal(0, amp * 0.4, pts.shape)
    dense = _densify(pts, closed, step=max(0.75, amp))
    if closed:  # the pen does not return exactly to its start: overshoot or gap
        extra = int(rng.integers(-2, 4))
        dense = np.vstack([dense, dense[1:1 + extra]]) if extra > 0 else dense[: len(dense) + extra] if extra < 0 else dense
    n = len(dense)
    if n < 2:
        return dense
    arclen = np.r_[0, np.cumsum(np.hypot(*np.diff(dense, axis=0).T))][:, None]
    disp = np.zeros_like(dense)
    for _ in range(2):
        wavelength = amp * rng.uniform(15, 40)
        disp += rng.normal(0, amp * 0.7, 2) * np.sin(2 * math.pi * arclen / wavelength + rng.uniform(0, 2 * math.pi))
    dense = dense + disp
    for end, nxt in ((0, 1), (n - 1, n - 2)):  # ends overshoot or stop short along the stroke
        d = dense[end] - dense[nxt]
        norm = np.hypot(*d)
        if norm > 1e-6:
            dense[end] = dense[end] + d / norm * rng.uniform(-0.5, 1.5) * amp
    return dense


def _svg_path(pts: np.ndarray, closed: bool) -> str:
    d = "M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in pts)
    return d + (" Z" if closed else "")


@dataclass
class Rendered:
    """A rendered symbol: ink-on-white RGB, its ink mask (0..1), and the knobs used."""

    image: np.ndarray
    mask: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def _layout(cls: str, rng: np.random.Generator, size: int, mix: StyleMix, target: float,
            recipe_name: str | None = None):
    """Build, rotate, stretch and fit one symbol into a size x size frame (pixel coordinates)."""
    recipe = choose_recipe(cls, rng)
    if recipe_name is not None:
        recipe = next((r for r in recipes(cls) if r.name == recipe_name), None)
        if recipe is None:
            raise UserError(f"class {cls!r} has no recipe {recipe_name!r}; see `image2circuit symbols`")
    args = recipe.sample_args(rng)
    unit = round(float(rng.uniform(0.6, 2.8)) * 5) / 5  # lead length, down to none (tight CAD crops); quantised so layouts can be reused
    fig, anchors = _captured(recipe.name, cls, tuple(sorted(args.items())), unit)
    allpts = np.vstack([s.pts for s in fig.strokes])
    lo, hi = allpts.min(0), allpts.max(0)
    centre = (lo + hi) / 2
    if rng.random() < mix.axis_aligned:
        angle = 90 * int(rng.integers(4)) + rng.normal(0, 2.5)
    else:
        angle = rng.uniform(0, 360)
    flip = bool(rng.random() < 0.5)
    aspect = float(np.exp(rng.normal(0, 0.12)))
    m = _rot(angle) @ np.diag([aspect * (-1 if flip else 1), 1 / aspect])
    m = np.diag([1, -1]) @ m  # y up (schemdraw) -> y down (image)
    proj = (allpts - centre) @ m.T
    extent = max(np.ptp(proj[:, 0]), np.ptp(proj[:, 1]), 1e-6)
    scale = target * size / extent
    offset = np.array([size / 2, size / 2]) + rng.normal(0, 0.04 * size, 2)

    def tx(p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, float) - centre) @ m.T * scale + offset

    strokes = [Stroke(tx(s.pts), s.closed, s.filled, s.lw, s.dashed) for s in fig.strokes]
    texts = [Text(t.s, tuple(tx(t.xy)), t.size) for t in fig.texts]
    terms = {k: tx(v) for k, v in anchors.items()}
    params = {"recipe": recipe.name, "args": {k: v for k, v in args.items()}, "angle": round(float(angle), 2),
              "flip": flip, "aspect": round(aspect, 3)}
    return strokes, texts, terms, params, scale, tx(centre)


def render(cls: str, rng: np.random.Generator, size: int = 128, mix: StyleMix | None = None,
           recipe: str | None = None) -> Rendered:
    """Render one symbol of class `cls` (optionally a given recipe); every random choice comes from `rng`."""
    mix = mix or StyleMix()
    hand = bool(rng.random() < mix.hand)
    lowres = bool(rng.random() < mix.lowres)
    canvas = int(rng.integers(*LOWRES_CANVAS)) if lowres else size
    target = float(rng.uniform(0.45, 1.02))  # up to tight crops whose frame cuts the leads
    strokes, texts, terms, params, scale, centre = _layout(cls, rng, canvas, mix, target, recipe)

    ink_name = list(INKS)[int(rng.choice(len(INKS), p=np.array(list(INK_WEIGHTS.values())) / sum(INK_WEIGHTS.values())))]
    if hand and rng.random() < 0.5:
        ink_name = ("pencil", "ballpoint_blue", "black", "grey")[int(rng.integers(4))]
    ink = INKS[ink_name]
    # CAD line weights run from hairline to bold (log-uniform); pens are in between
    lw_px = canvas * float(np.exp(rng.uniform(np.log(0.007), np.log(0.055))) if not hand else rng.uniform(0.008, 0.025))
    lw_px = max(lw_px, 0.6)
    fill_colour = FILLS[int(rng.integers(len(FILLS)))] if (rng.random() < mix.fill_colour and cls == "integrated_circuit") else None
    amp = scale * float(rng.uniform(0.006, 0.022)) if hand else 0.0  # relative to the symbol, not the frame

    body: list[str] = []
    for s in strokes:
        pts = _wobble(s.pts, s.closed, amp * (0.3 if s.filled else 1.0), rng) if hand else s.pts
        closed = s.closed and not hand
        width = lw_px * s.lw / 2
        dash = f"stroke-dasharray:{3 * lw_px:.1f},{2 * lw_px:.1f};" if s.dashed else ""
        if s.filled:
            body.append(f'<path d="{_svg_path(pts, True)}" style="fill:{ink};stroke:{ink};stroke-width:{width:.2f};stroke-linejoin:round"/>')
        elif fill_colour and s.closed:
            body.append(f'<path d="{_svg_path(pts, True)}" style="fill:{fill_colour};stroke:{ink};stroke-width:{width:.2f};stroke-linejoin:round"/>')
        else:
            if hand and len(pts) > 12 and rng.random() < 0.5:  # uneven pressure: chunks of varying weight
                cuts = np.sort(rng.choice(np.arange(4, len(pts) - 4), size=2, replace=False))
                for idx in np.split(np.arange(len(pts)), cuts):
                    idx = np.r_[idx, idx[-1] + 1] if idx[-1] + 1 < len(pts) else idx
                    w = width * rng.uniform(0.65, 1.35)
                    body.append(f'<path d="{_svg_path(pts[idx], False)}" style="fill:none;stroke:{ink};stroke-width:{w:.2f};'
                                f'stroke-linecap:round;stroke-linejoin:round"/>')
            else:
                body.append(f'<path d="{_svg_path(pts, closed)}" style="fill:none;stroke:{ink};stroke-width:{width:.2f};'
                            f'stroke-linecap:round;stroke-linejoin:round;{dash}"/>')

    allpts = np.vstack([s.pts for s in strokes])
    lo, hi = allpts.min(0), allpts.max(0)
    extras: dict[str, Any] = {}

    # wires leaving the terminals, sometimes bending, sometimes with a junction dot
    if terms and rng.random() < mix.wires * (0.5 if hand else 1.0):  # drawn symbols often stand alone
        n_wire = 0
        for k, p in terms.items():
            if rng.random() < 0.25:
                continue
            d = p - centre
            if np.hypot(*d) < 1e-6:
                continue
            d = d / np.hypot(*d)
            if rng.random() < 0.8:  # snap to the nearest image axis: wires run horizontally/vertically
                d = np.array([np.sign(d[0]), 0.0]) if abs(d[0]) > abs(d[1]) else np.array([0.0, np.sign(d[1])])
            L = canvas * rng.uniform(0.05, 0.6)
            q = p + d * L
            path = [p, q]
            if rng.random() < 0.3:
                turn = np.array([-d[1], d[0]]) * (1 if rng.random() < 0.5 else -1)
                path.append(q + turn * canvas * rng.uniform(0.1, 0.5))
            pts = np.asarray(path)
            if hand:
                pts = _wobble(pts, False, amp, rng)
            body.append(f'<path d="{_svg_path(pts, False)}" style="fill:none;stroke:{ink};stroke-width:{lw_px:.2f};stroke-linecap:round"/>')
            if rng.random() < 0.2:
                jd = pts[len(pts) // 2] if len(pts) > 2 else q
                body.append(f'<circle cx="{jd[0]:.1f}" cy="{jd[1]:.1f}" r="{lw_px * 1.8:.1f}" fill="{ink}"/>')
            n_wire += 1
        extras["wires"] = n_wire

    # text: the element's own (IC pin numbers) plus designator/value labels beside the symbol
    font = FONTS[int(rng.integers(len(FONTS)))]
    words: list[tuple[str, float, float, float, str]] = []  # drawn by PIL: resvg reloads fonts per call
    labels = []
    if rng.random() < mix.labels:
        prefixes, values = LABELS[cls]
        labels.append(f"{prefixes[int(rng.integers(len(prefixes)))]}{int(rng.integers(1, 30))}")
        if rng.random() < 0.6:
            v = values[int(rng.integers(len(values)))]
            if v:
                labels.append(v)
        fs = canvas * float(rng.uniform(0.07, 0.14))
        side = int(rng.integers(4))
        for i, s in enumerate(labels):
            if side == 0:
                x, y, anchor = (lo[0] + hi[0]) / 2, lo[1] - fs * (0.3 + 1.1 * (len(labels) - 1 - i)), "middle"
            elif side == 1:
                x, y, anchor = (lo[0] + hi[0]) / 2, hi[1] + fs * (1.1 + 1.1 * i), "middle"
            elif side == 2:
                x, y, anchor = hi[0] + fs * 0.3, (lo[1] + hi[1]) / 2 + fs * (1.1 * i - 0.2), "start"
            else:
                x, y, anchor = lo[0] - fs * 0.3, (lo[1] + hi[1]) / 2 + fs * (1.1 * i - 0.2), "end"
            words.append((s, x, y, fs, anchor))
        extras["labels"] = labels
    for t in texts:
        fs = max(4.0, t.size * scale / 72 * 0.5 * 2)  # schemdraw fontsize is in points at 72 pt/inch, 2 units/inch
        words.append((t.s, t.xy[0], t.xy[1] + fs * 0.35, fs, "middle"))

    # a fragment of a neighbouring symbol cut by the image edge
    if rng.random() < mix.neighbour:
        other = CLASSES[int(rng.integers(len(CLASSES)))]
        n_strokes, _, _, _, _, _ = _layout(other, rng, canvas, mix, float(rng.uniform(0.4, 0.7)))
        edge = int(rng.integers(4))
        shift = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]][edge], float) * canvas * rng.uniform(0.72, 0.9)
        for s in n_strokes:
            pts = s.pts + shift
            body.append(f'<path d="{_svg_path(pts, s.closed)}" style="fill:{ink if s.filled else "none"};stroke:{ink};'
                        f'stroke-width:{lw_px:.2f};stroke-linecap:round"/>')
        extras["neighbour"] = other

    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas}" height="{canvas}" '
           f'viewBox="0 0 {canvas} {canvas}">{"".join(body)}</svg>')
    png = resvg_py.svg_to_bytes(svg_string=svg, skip_system_fonts=True)
    canvas_img = Image.open(io.BytesIO(png)).convert("RGBA")
    if words:
        draw = ImageDraw.Draw(canvas_img)
        colour = tuple(int(ink[i:i + 2], 16) for i in (1, 3, 5)) + (255,)
        for text, x, y, fs, anchor in words:
            draw.text((x, y), text, font=_font(font, max(4, int(round(fs)))), fill=colour,
                      anchor={"middle": "ms", "start": "ls", "end": "rs"}[anchor])
    rgba = np.asarray(canvas_img)
    if canvas != size:
        rgba = np.asarray(Image.fromarray(rgba).resize((size, size), Image.BILINEAR))
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
    params.update({"style": "hand" if hand else "cad", "ink": ink_name, "lw_px": round(lw_px, 2),
                   "canvas": canvas, "fill": target, "font": font, **extras})
    return Rendered(rgb.round().astype(np.uint8), alpha[..., 0], params)


def render_sample(cls: str, seed: int, size: int = 128, mix: StyleMix | None = None) -> np.ndarray:
    """Convenience for previews and tests: the clean render of one seeded sample."""
    return render(cls, np.random.default_rng(seed), size, mix).image
