"""Generator commands: list the catalogue, preview a class, generate a dataset, time the generator."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import CLASSES


def register(app: typer.Typer) -> None:
    app.command("symbols")(symbols)
    app.command("preview")(preview)
    app.command("generate")(generate_cmd)


def symbols() -> None:
    """List the symbol catalogue: every class with its recipes (schemdraw element and sampled arguments)."""
    from rich.console import Console
    from rich.table import Table

    from .catalogue import CATALOGUE

    table = Table(title="symbol catalogue (generator/catalogue.py)")
    for col in ("class", "recipe", "element"):
        table.add_column(col, no_wrap=True)
    table.add_column("arguments (tuples are sampled)")
    table.add_column("weight")
    for cls in CLASSES:
        for r in CATALOGUE[cls]:
            table.add_row(cls, r.name, r.element, ", ".join(f"{k}={v}" for k, v in r.args.items()), f"{r.weight:g}")
    Console().print(table)


def preview(
    cls: str = typer.Argument(..., metavar="CLASS", help=f"one of: {', '.join(CLASSES)}, or 'all'"),
    n: int = typer.Option(32, help="how many random variants"),
    size: int = typer.Option(128, help="image size in pixels"),
    seed: int = typer.Option(0, help="seed of the first variant"),
    style: str = typer.Option("mixed", help="mixed | hand | cad: force the drawing style"),
    clean: bool = typer.Option(False, help="skip the realism mix (paper, scan, photo effects)"),
    recipe: Optional[str] = typer.Option(None, help="only this recipe of the class (see `symbols`)"),
    out: Optional[Path] = typer.Option(None, help="PNG to write [default: runs/preview_CLASS.png]"),
    beside: Optional[Path] = typer.Option(
        None, help="folder of real images in <class>/ sub-folders (your scans or screenshots, or "
        "../shared/data/handdrawn): each class's generated rows are followed by up to --n real ones, "
        "picked with --seed, to compare by eye"),
) -> None:
    """Write a contact sheet PNG of random variants of a class, to look at before generating.

    With --beside DIR the sheet puts real images of the same class under the generated ones: the quickest
    way to see whether the generator covers the drawings or screenshots you want recognised.
    """
    from PIL import Image, ImageOps

    from .augment import load_rgb
    from .catalogue import recipes
    from .errors import UserError
    from .generate import make_image
    from .render import StyleMix
    from .sheet import contact_sheet, save_png

    classes = list(CLASSES) if cls == "all" else [cls]
    for c in classes:
        recipes(c)
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    mix = StyleMix()
    if style == "hand":
        mix.hand = 1.0
    elif style == "cad":
        mix.hand = 0.0
    elif style != "mixed":
        raise UserError(f"--style must be mixed, hand or cad, got {style!r}")
    real = {}
    if beside is not None:
        from .photos import sample_real

        real = sample_real(beside, classes, n, seed)
    cols, cell = min(8, n), max(size, 96)
    images, captions = [], []

    def add_row_group(tiles, caps):  # pad to whole rows so each group starts on its own row
        blank = -len(tiles) % cols
        images.extend(list(tiles) + [None] * blank)
        captions.extend(list(caps) + [""] * blank)

    for c in classes:
        rendered = [make_image(c, seed, i, size, mix, realism=not clean, recipe=recipe) for i in range(n)]
        add_row_group([im for im, _ in rendered], [p["recipe"] for _, p in rendered])
        if c in real:  # scaled to the cell as the model scales them; the caption keeps the true size
            shown = [Image.fromarray(load_rgb(p)) for p in real[c]]
            add_row_group([ImageOps.contain(im, (cell, cell)) for im in shown],
                          [f"real {im.width}x{im.height} {p.stem}" for im, p in zip(shown, real[c])])
    out = out or Path("runs") / f"preview_{cls}.png"
    save_png(contact_sheet(images, captions, cols=cols, cell=cell), out)
    n_real = sum(len(v) for v in real.values())
    missing = [c for c in classes if beside is not None and c not in real]
    typer.echo(f"wrote {out} ({len(classes) * n} variants" + (f", {n_real} real images from {beside}" if real else "")
               + ")" + (f"; no real images of {', '.join(missing)}" if missing else ""))


def generate_cmd(
    out: Path = typer.Option(Path("datasets/default"), help="dataset folder to create or resume"),
    per_class: int = typer.Option(1000, help="images per class"),
    size: int = typer.Option(160, help="square image size in pixels (160: the default model's input, so nothing is rescaled)"),
    seed: int = typer.Option(0, help="seed: the same seed gives byte-identical images"),
    classes: Optional[List[str]] = typer.Option(None, "--classes", help="restrict to these classes (repeat the option)"),
    workers: int = typer.Option(0, help="worker processes [default: all cores]"),
    hand: float = typer.Option(0.45, help="share of hand-drawn style (0..1)"),
    realism: bool = typer.Option(True, help="pass images through the paper/scan/photo mix"),
) -> None:
    """Render schematic symbols into DATASET/schematic/<class>/, with manifest.csv and dataset.json.

    Interrupted, it resumes; with the same seed the images are byte-identical whatever --workers is.
    """
    from .errors import UserError
    from .generate import generate
    from .render import StyleMix

    if not 0 <= hand <= 1:
        raise UserError(f"--hand must be between 0 and 1, got {hand}")
    card = generate(out, per_class, size, seed, classes, workers or None, StyleMix(hand=hand), realism)
    counts = card["counts"].get("schematic", {})
    total = sum(sum(v.values()) for v in counts.values())
    typer.echo(f"{out}: {total} schematic images in {len(counts)} classes "
               f"({card.get('generation_seconds', 0)} s); manifest {out / 'manifest.csv'}")
