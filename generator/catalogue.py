"""The symbol catalogue: every class maps to schemdraw recipes; adding a variant is one entry here.

A recipe names a schemdraw element (by its class name in `schemdraw.elements`, or a custom element
defined below for forms schemdraw lacks) plus the keyword arguments to build it. Arguments given as
tuples/lists of choices are sampled per image, so one entry covers a family (e.g. 3-6 zig-zag peaks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import schemdraw.elements as elm
from schemdraw.elements import Element, Element2Term
from schemdraw.elements.elements import gap as GAP
from schemdraw.segments import Segment, SegmentArc, SegmentCircle, SegmentPoly, SegmentText

from . import CLASSES
from .errors import UserError


# --- custom elements: forms real schematics use that schemdraw does not draw ------------------
class ZigZagResistor(Element2Term):
    """US resistor with a chosen number of peaks and height (real drawings use 3-8)."""

    def __init__(self, *, peaks: int = 3, height: float = 0.25, width: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        n = 2 * peaks
        pts = [(0.0, 0.0)]
        for i in range(n):
            pts.append(((i + 0.5) * width / n, height if i % 2 == 0 else -height))
        pts.append((width, 0.0))
        self.segments.append(Segment(pts))


class CurvedCapacitor(Element2Term):
    """Capacitor with one flat and one curved plate (polarised, as in many US textbooks)."""

    def __init__(self, *, gap: float = 0.2, plate: float = 0.6, polar: bool = False, **kwargs):
        super().__init__(**kwargs)
        h = plate / 2
        self.segments.append(Segment([(0, 0), GAP, (0, h), (0, -h), GAP, (gap, 0)]))
        self.segments.append(SegmentArc((gap + 0.6, 0), 1.2, plate * 1.25, theta1=145, theta2=215))
        if polar:
            self.segments.append(Segment([(-0.25, 0.3), (-0.1, 0.3)]))
            self.segments.append(Segment([(-0.175, 0.225), (-0.175, 0.375)]))


class Cell(Element2Term):
    """Single battery cell as textbooks draw it: a long plate (+) and a short one (−), the short plate
    often thick, sometimes with the polarity written beside it. The thick short plate and the signs are
    what tell a cell from a capacitor's two equal plates."""

    def __init__(self, *, ratio: float = 0.5, thick: bool = True, signs: bool = False, gap: float = 0.18, **kwargs):
        super().__init__(**kwargs)
        h, s = 0.4, 0.4 * ratio
        self.segments.append(Segment([(0, 0), GAP, (0, h), (0, -h), GAP, (gap, 0)]))
        self.segments.append(Segment([(gap, s), (gap, -s)], lw=4 if thick else 2))
        if signs:  # + beside the long plate, − beside the short one, drawn upright like text
            self.segments.append(Segment([(-0.22, h + 0.1), (-0.08, h + 0.1)]))
            self.segments.append(Segment([(-0.15, h + 0.03), (-0.15, h + 0.17)]))
            self.segments.append(Segment([(gap + 0.08, h + 0.1), (gap + 0.22, h + 0.1)]))


class CircleSource(Element2Term):
    """Independent source as a plain circle, optionally marked +/-, ~, an arrow, or DC bars."""

    def __init__(self, *, mark: str = "none", radius: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        r = radius
        self.segments.append(Segment([(0, 0), GAP, (2 * r, 0)]))
        self.segments.append(SegmentCircle((r, 0), r))
        if mark == "pm":  # + near the end terminal, - near the start, drawn upright
            s = 0.18 * r / 0.5
            self.segments.append(Segment([(r * 1.5 - s / 2, 0), (r * 1.5 + s / 2, 0)]))
            self.segments.append(Segment([(r * 1.5, -s / 2), (r * 1.5, s / 2)]))
            self.segments.append(Segment([(r * 0.5, -s / 2), (r * 0.5, s / 2)]))
        elif mark == "sine":
            xs = np.linspace(-0.6 * r, 0.6 * r, 25)
            self.segments.append(Segment([(r + 0.25 * r * math.sin(math.pi * x / (0.6 * r)), x) for x in xs]))
        elif mark == "arrow":
            self.segments.append(Segment([(0.35 * r, 0), (1.55 * r, 0)], arrow="->", arrowwidth=0.25 * r, arrowlength=0.35 * r))
        elif mark == "dc":
            self.segments.append(Segment([(0.8 * r, -0.45 * r), (0.8 * r, 0.45 * r)]))
            self.segments.append(Segment([(1.2 * r, -0.25 * r), (1.2 * r, 0.25 * r)]))
        self.elmparams["theta"] = 90


class CoreInductor(Element2Term):
    """Inductor as semicircular humps (2-6) with optional core lines (iron or ferrite)."""

    def __init__(self, *, humps: int = 4, core: int = 0, dashed: bool = False, **kwargs):
        super().__init__(**kwargs)
        w = 1.0 / humps
        self.segments.append(Segment([(0, 0), GAP, (1, 0)]))
        for i in range(humps):
            self.segments.append(SegmentArc(((i + 0.5) * w, 0), w, w, theta1=0, theta2=180))
        for k in range(core):
            y = 0.5 * w + 0.15 + 0.12 * k
            self.segments.append(Segment([(0, y), (1, y)], ls="--" if dashed else "-"))


class TwoCoilTransformer(Element):
    """Transformer as two facing coils of humps, core lines between them, optional dot marks."""

    def __init__(self, *, turns: int = 4, core: int = 2, dots: bool = False, loops: bool = False, **kwargs):
        super().__init__(**kwargs)
        h = 1.0 / turns
        gap = 0.55 if core else 0.35
        for side, x0 in ((-1, 0.0), (1, gap)):
            for i in range(turns):
                yc = -(i + 0.5) * h
                if side < 0:
                    self.segments.append(SegmentArc((x0, yc), h, h, theta1=90, theta2=270))
                else:
                    self.segments.append(SegmentArc((x0, yc), h, h, theta1=-90, theta2=90))
            ext = 0.35
            self.segments.append(Segment([(x0 + side * ext, 0), (x0, 0)]))
            self.segments.append(Segment([(x0 + side * ext, -1), (x0, -1)]))
        for k in range(core):
            x = gap / 2 + (k - (core - 1) / 2) * 0.1
            self.segments.append(Segment([(x, 0.05), (x, -1.05)]))
        if dots:
            self.segments.append(SegmentCircle((-0.3, -0.12), 0.05, fill=True))
            self.segments.append(SegmentCircle((gap + 0.3, -0.12), 0.05, fill=True))


class BoxIC(Element):
    """A rectangle with pin stubs on two or four sides and optional pin numbers: a generic IC/chip."""

    def __init__(self, *, pins_lr: int = 4, pins_tb: int = 0, numbers: bool = False, notch: bool = False, **kwargs):
        super().__init__(**kwargs)
        n = max(pins_lr, 1)
        h = 0.5 * (n + 1)
        w = max(1.2, 0.5 * (pins_tb + 1))
        self.segments.append(Segment([(0, 0), (w, 0), (w, h), (0, h), (0, 0)]))
        if notch:
            self.segments.append(SegmentArc((w / 2, h), 0.3, 0.3, theta1=180, theta2=360))
        pin = 1
        for i in range(pins_lr):
            y = h - 0.5 * (i + 1)
            self.segments.append(Segment([(-0.35, y), (0, y)]))
            self.segments.append(Segment([(w, y), (w + 0.35, y)]))
            if numbers:
                self.segments.append(SegmentText((-0.2, y + 0.12), str(pin), fontsize=7))
                self.segments.append(SegmentText((w + 0.2, y + 0.12), str(2 * pins_lr - pin + 1), fontsize=7))
            pin += 1
        for i in range(pins_tb):
            x = 0.5 * (i + 1)
            self.segments.append(Segment([(x, h), (x, h + 0.35)]))
            self.segments.append(Segment([(x, 0), (x, -0.35)]))


class FilledDiode(Element2Term):
    """Diode with the triangle filled or open and an optional bar style (plain, zener, schottky)."""

    def __init__(self, *, filled: bool = True, bar: str = "plain", size: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        s = size
        self.segments.append(Segment([(0, 0), GAP, (s, 0)]))
        self.segments.append(SegmentPoly([(0, s / 2), (s, 0), (0, -s / 2)], fill=filled))
        if bar == "plain":
            self.segments.append(Segment([(s, s / 2), (s, -s / 2)]))
        elif bar == "zener":
            self.segments.append(Segment([(s - 0.1, s / 2 + 0.05), (s, s / 2), (s, -s / 2), (s + 0.1, -s / 2 - 0.05)]))
        elif bar == "schottky":
            d = 0.1
            self.segments.append(Segment([(s + d, s / 2 - d), (s + d, s / 2), (s, s / 2), (s, -s / 2), (s - d, -s / 2), (s - d, -s / 2 + d)]))


class LabelledOpamp(elm.Opamp):
    """Op-amp as datasheets and simulators draw it: pin numbers, supply pins, a part name inside."""

    def __init__(self, *, pins: bool = True, supplies: bool = False, name: str = "", **kwargs):
        super().__init__(**kwargs)
        x = 0.625 if self.params["leads"] else 0  # schemdraw's op-amp lead length (oa_back / 4)
        if pins:
            for (px, py), num in (((x - 0.05, 0.75), "2"), ((x - 0.05, -0.5), "3"), ((x + 2.45, 0.12), "1")):
                self.segments.append(SegmentText((px, py), num, fontsize=8))
        if supplies:
            self.segments.append(Segment([(x + 0.8, 0.84), (x + 0.8, 1.3)]))
            self.segments.append(Segment([(x + 0.8, -0.84), (x + 0.8, -1.3)]))
        if name:
            self.segments.append(SegmentText((x + 0.95, 0.0), name, fontsize=9))


class Trapezoid(Element):
    """Amplifier block drawn as a trapezoid (OTA, transconductor), with +/- inputs and an output."""

    def __init__(self, *, sign: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.segments.append(Segment([(0, 1.0), (1.4, 0.45), (1.4, -0.45), (0, -1.0), (0, 1.0)]))
        self.segments.append(Segment([(-0.4, 0.5), (0, 0.5)]))
        self.segments.append(Segment([(-0.4, -0.5), (0, -0.5)]))
        self.segments.append(Segment([(1.4, 0), (1.8, 0)]))
        if sign:
            self.segments.append(Segment([(0.15, 0.5), (0.4, 0.5)]))
            self.segments.append(Segment([(0.15, -0.5), (0.4, -0.5)]))
            self.segments.append(Segment([(0.275, -0.625), (0.275, -0.375)]))


class SimpleMosfet(Element):
    """Textbook/blackboard MOSFET: gate plate, channel, drain and source legs; bubble and arrow optional.

    gap: gate plate to channel (hand drawings leave a wide one, which looks like a capacitor's
    plates unless the legs are read); overhang: channel beyond the legs (0: the legs leave its ends);
    lead: gate lead length."""

    def __init__(self, *, bubble: bool = False, arrow: bool = False, split: bool = False, legs: float = 0.45,
                 gap: float = 0.15, overhang: float = 0.1, lead: float = 0.6, **kwargs):
        super().__init__(**kwargs)
        g = -0.12 if bubble else 0.0
        self.segments.append(Segment([(-lead, 0), (g, 0)]))
        if bubble:
            self.segments.append(SegmentCircle((-0.06, 0), 0.06))
        self.segments.append(Segment([(0, -0.35), (0, 0.35)]))
        top = 0.35 + overhang
        if split:
            for y0, y1 in ((0.25, top), (-0.1, 0.1), (-top, -0.25)):
                self.segments.append(Segment([(gap, y0), (gap, y1)]))
        else:
            self.segments.append(Segment([(gap, -top), (gap, top)]))
        x = gap + 0.35
        self.segments.append(Segment([(gap, 0.35), (x, 0.35), (x, 0.35 + legs)]))
        self.segments.append(Segment([(gap, -0.35), (x, -0.35), (x, -0.35 - legs)]))
        if arrow:
            self.segments.append(Segment([(x - 0.05, 0), (gap, 0)], arrow="->", arrowwidth=0.15, arrowlength=0.15))
        self.anchors["gate"] = (-lead, 0)
        self.anchors["drain"] = (x, 0.35 + legs)
        self.anchors["source"] = (x, -0.35 - legs)


class SimpleBjt(Element):
    """BJT as drawn by hand or on a blackboard: bar, base lead, two diagonals, emitter arrow, no circle.

    meet: both diagonals leave the bar's centre (a "K", as most people draw it) instead of two
    points apart; head: a filled arrowhead or an open "V" of two strokes."""

    def __init__(self, *, pnp: bool = False, legs: bool = False, meet: bool = False, head: str = "filled", **kwargs):
        super().__init__(**kwargs)
        base, bar, y0, reach = (-0.45, 0.5, 0.0, (0.4, 0.5)) if meet else (-0.6, 0.4, 0.15, (0.45, 0.55))
        self.segments.append(Segment([(base, 0), (0, 0)]))
        self.segments.append(Segment([(0, -bar), (0, bar)]))
        c, e = np.array(reach), np.array([reach[0], -reach[1]])
        self.segments.append(Segment([(0, y0), tuple(c)] + ([(c[0], 0.85)] if legs else [])))
        start, tip = (e, np.array([0.0, -y0])) if pnp else (np.array([0.0, -y0]), e)
        if pnp:
            tip = start + (tip - start) * 0.55  # pnp: the arrow sits on the emitter, pointing at the bar
        if head == "open":
            d = (tip - start) / np.hypot(*(tip - start))
            n = np.array([-d[1], d[0]])
            self.segments.append(Segment([(0, -y0), tuple(e)]))
            self.segments.append(Segment([tuple(tip - 0.17 * d + 0.09 * n), tuple(tip), tuple(tip - 0.17 * d - 0.09 * n)]))
        else:
            self.segments.append(Segment([tuple(start), tuple(tip)], arrow="->", arrowwidth=0.16, arrowlength=0.18))
            if pnp:
                self.segments.append(Segment([tuple(tip), (0, -y0)]))
        if legs:
            self.segments.append(Segment([tuple(e), (e[0], -0.85)]))
        self.anchors["base"] = (base, 0)
        self.anchors["collector"] = (c[0], 0.85 if legs else c[1])
        self.anchors["emitter"] = (e[0], -0.85 if legs else e[1])


# --- the catalogue ------------------------------------------------------------------------------
CUSTOM: dict[str, type[Element]] = {
    cls.__name__: cls
    for cls in (ZigZagResistor, CurvedCapacitor, Cell, CircleSource, CoreInductor, TwoCoilTransformer, BoxIC, FilledDiode,
                LabelledOpamp, Trapezoid, SimpleMosfet, SimpleBjt)
}


@dataclass(frozen=True)
class Recipe:
    """One symbol variant: a schemdraw element name and its arguments (a tuple = choose one per image)."""

    name: str
    element: str
    args: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0

    def element_class(self) -> type[Element]:
        cls = CUSTOM.get(self.element) or getattr(elm, self.element, None)
        if not (isinstance(cls, type) and issubclass(cls, Element)):
            raise UserError(
                f"catalogue recipe {self.name!r} names schemdraw element {self.element!r}, which does not exist; "
                "fix the entry in generator/catalogue.py (see `python -c 'import schemdraw.elements as e; print(dir(e))'`)"
            )
        return cls

    def sample_args(self, rng: np.random.Generator) -> dict[str, Any]:
        """Pick one value for each argument given as a tuple of choices."""
        return {k: (v[int(rng.integers(len(v)))] if isinstance(v, tuple) else v) for k, v in self.args.items()}

    def build(self, rng: np.random.Generator) -> tuple[Element, dict[str, Any]]:
        args = self.sample_args(rng)
        return self.element_class()(**args), args


R = Recipe
CATALOGUE: dict[str, list[Recipe]] = {
    "resistor": [
        R("resistor_ieee", "ResistorIEEE", weight=2),
        R("resistor_zigzag", "ZigZagResistor", {"peaks": (3, 4, 5, 6, 7), "height": (0.18, 0.25, 0.32)}, weight=2),
        R("resistor_iec", "ResistorIEC", weight=2),
        R("resistor_var_ieee", "ResistorVarIEEE", weight=0.5),
        R("resistor_var_iec", "ResistorVarIEC", weight=0.5),
        R("potentiometer_ieee", "PotentiometerIEEE", weight=0.5),
        R("potentiometer_iec", "PotentiometerIEC", weight=0.5),
    ],
    "capacitor": [
        R("capacitor", "Capacitor", weight=3),
        R("capacitor_polar", "Capacitor", {"polar": True}),
        R("capacitor_curved", "Capacitor2"),
        R("capacitor_curved_polar", "CurvedCapacitor", {"polar": (True, False), "gap": (0.15, 0.2, 0.3)}),
        R("capacitor_var", "CapacitorVar", weight=0.5),
        R("capacitor_trim", "CapacitorTrim", weight=0.5),
    ],
    "inductor": [
        R("inductor_humps", "Inductor", weight=1.5),
        R("inductor_loops", "Inductor2", {"loops": (2, 3, 4, 5, 6)}, weight=1.5),
        R("inductor_loops_core", "Inductor2", {"loops": (3, 4, 5), "core": (1, 2)}),
        R("inductor_semicircles", "CoreInductor", {"humps": (3, 4, 5, 6), "core": (0, 0, 1, 2), "dashed": (False, True)}, weight=2),
    ],
    "voltage_source": [
        R("source_dc_pm", "SourceV", weight=1.5),
        R("source_sine", "SourceSin", weight=1.5),
        R("source_circle", "CircleSource", {"mark": ("none", "pm", "sine", "dc"), "radius": (0.4, 0.5, 0.6)}, weight=2),
        R("source_arrow", "CircleSource", {"mark": "arrow"}, weight=0.5),
        R("source_square", "SourceSquare", weight=0.3),
        R("battery", "Battery", weight=1.5),
        R("battery_cell", "BatteryCell", weight=0.7),
        R("cell", "Cell", {"ratio": (0.35, 0.5, 0.6), "thick": (True, True, False), "signs": (False, True)}, weight=1.2),
        R("battery_double", "BatteryDouble", weight=0.5),
    ],
    "diode": [
        R("diode", "Diode", weight=2),
        R("diode_filled", "Diode", {"fill": True}, weight=1),
        R("diode_custom", "FilledDiode", {"filled": (True, False), "bar": ("plain", "plain", "zener", "schottky"), "size": (0.4, 0.5, 0.6)}, weight=2),
        R("zener", "Zener"),
        R("schottky", "Schottky", weight=0.5),
        R("led", "LED"),
        R("led2", "LED2", weight=0.5),
        R("photodiode", "Photodiode", weight=0.5),
    ],
    "transistor": [
        R("bjt_npn", "BjtNpn", {"circle": (True, False)}, weight=2),
        R("bjt_pnp", "BjtPnp", {"circle": (True, False)}, weight=2),
        R("bjt_npn2", "BjtNpn2", {"circle": (True, False)}, weight=0.5),
        R("nmos", "NMos", {"bulk": (True, False)}, weight=1),
        R("pmos", "PMos", {"bulk": (True, False)}, weight=1),
        R("nfet", "NFet", {"bulk": (True, False)}, weight=1),
        R("pfet", "PFet", {"bulk": (True, False)}, weight=1),
        R("analog_nfet", "AnalogNFet", {"bulk": (True, False)}, weight=0.7),
        R("analog_pfet", "AnalogPFet", {"bulk": (True, False)}, weight=0.7),
        R("jfet_n", "JFetN", {"circle": (True, False)}, weight=0.5),
        R("jfet_p", "JFetP", {"circle": (True, False)}, weight=0.5),
        R("mosfet_simple", "SimpleMosfet", {"bubble": (False, False, True), "arrow": (False, True), "split": (False, True),
                                            "legs": (0.2, 0.45, 0.7), "gap": (0.15, 0.25, 0.35),
                                            "overhang": (0.1, 0.0), "lead": (0.6, 0.3)}, weight=2),
        R("bjt_simple", "SimpleBjt", {"pnp": (False, True), "legs": (False, False, True), "meet": (False, True),
                                        "head": ("filled", "open")}, weight=3),
    ],
    "integrated_circuit": [
        R("opamp", "Opamp", {"sign": (True, True, False), "leads": (True, False)}, weight=2),
        R("opamp_labelled", "LabelledOpamp", {"leads": (True, False), "pins": (True, False), "supplies": (True, False),
                                              "name": ("", "U1A", "IC1", "LM324", "A1", "U2")}, weight=2),
        R("ota", "Trapezoid", {"sign": (True, False)}, weight=0.7),
        R("ic_box", "BoxIC", {"pins_lr": (2, 3, 4, 5, 6), "pins_tb": (0, 0, 1, 2), "numbers": (True, False)}, weight=2),
        R("ic_dip", "IcDIP", {"pins": (8, 14, 16)}, weight=1),
        R("ic_555", "Ic555", weight=0.5),
    ],
    "transformer": [
        R("transformer_core", "Transformer", {"t1": (3, 4, 5, 6), "t2": (3, 4, 5, 6), "core": (True, False)}, weight=2),
        R("transformer_loop", "Transformer", {"t1": (3, 4, 5), "t2": (3, 4, 5), "loop": True, "core": (True, False)}),
        R("transformer_coils", "TwoCoilTransformer", {"turns": (3, 4, 5), "core": (0, 1, 2), "dots": (True, False)}, weight=2),
    ],
}

# Labels a drawing puts beside each class: designator prefixes and typical values.
LABELS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "resistor": (("R", "R", "RV", "VR"), ("10k", "4.7kΩ", "220Ω", "1M", "100", "2k2", "47kΩ", "330R")),
    "capacitor": (("C",), ("10µF", "100n", "1nF", "22pF", "470µ", "0.1µF", "10u")),
    "inductor": (("L",), ("10mH", "100µH", "1H", "4.7µH", "22uH")),
    "voltage_source": (("V", "B", "E", "Vs", "BAT"), ("9V", "5V", "12V", "1.5V", "Vin", "~230V", "3.3V", "AC")),
    "diode": (("D", "LED", "Z", "D"), ("1N4148", "1N4001", "5V1", "BAT54", "")),
    "transistor": (("Q", "T", "M", "J"), ("2N3904", "BC547", "IRF540", "2N7000", "BS170", "")),
    "integrated_circuit": (("U", "IC", "U", "A"), ("LM324", "NE555", "TL071", "741", "LM358", "74HC00", "")),
    "transformer": (("T", "TR"), ("1:10", "230/12V", "10:1", "")),
}


def recipes(cls: str) -> list[Recipe]:
    """The recipes of one class; an unknown class is a UserError listing the known ones."""
    if cls not in CATALOGUE:
        raise UserError(f"unknown class {cls!r}; known classes: {', '.join(CLASSES)}")
    return CATALOGUE[cls]


def choose_recipe(cls: str, rng: np.random.Generator) -> Recipe:
    """Pick a recipe of the class with probability proportional to its weight."""
    options = recipes(cls)
    w = np.array([r.weight for r in options], dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def check_catalogue() -> None:
    """Fail early, with the entry named, if any recipe names an element that does not exist."""
    assert set(CATALOGUE) == set(CLASSES), "catalogue and CLASSES disagree"
    for entries in CATALOGUE.values():
        for r in entries:
            r.element_class()
