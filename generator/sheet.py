"""Contact sheets: a grid of labelled thumbnails, so a person can look before training."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .manifest import atomic_write_bytes


def contact_sheet(images: Sequence[np.ndarray | Image.Image | None], captions: Sequence[str] | None = None,
                  cols: int = 8, cell: int = 128) -> Image.Image:
    """Tile images (any size, RGB or grey) into a grid of cell x cell thumbnails with captions.

    A None leaves its cell blank, so a caller can start a group on a new row.
    """
    n = len(images)
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    cap_h = 14 if captions else 0
    sheet = Image.new("RGB", (cols * cell, rows * (cell + cap_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, im in enumerate(images):
        if im is None:
            continue
        if isinstance(im, np.ndarray):
            im = Image.fromarray(im)
        im = im.convert("RGB")
        im.thumbnail((cell, cell))
        x, y = (i % cols) * cell, (i // cols) * (cell + cap_h)
        sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
        if captions:
            draw.text((x + 2, y + cell), str(captions[i])[: cell // 6], fill="black")
    return sheet


def save_png(image: Image.Image, path: Path) -> Path:
    """Save a PNG atomically (temporary name, then rename)."""
    import io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path
