"""Generator speed: the naive path (a matplotlib schemdraw figure per image) against the shipped one."""
from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from . import CLASSES
from .catalogue import choose_recipe


def naive_images_per_second(n: int, size: int, seed: int = 0) -> float:
    """The obvious way: one schemdraw Drawing per image rendered by matplotlib to PNG, then rotated,
    resized, passed through the same realism mix and written."""
    import matplotlib

    matplotlib.use("Agg")
    import schemdraw
    from PIL import Image

    from .augment import realistic

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i in range(n):
            cls = CLASSES[i % len(CLASSES)]
            element, _ = choose_recipe(cls, rng).build(rng)
            d = schemdraw.Drawing(show=False, canvas="matplotlib")
            d.add(element)
            png = d.get_imagedata("png")
            img = Image.open(io.BytesIO(png)).convert("RGB").rotate(float(rng.uniform(0, 360)), expand=True, fillcolor="white")
            image, _ = realistic(np.asarray(img.resize((size, size))), rng)
            Image.fromarray(image).save(Path(tmp) / f"{i}.png")
            import matplotlib.pyplot as plt

            plt.close("all")
        return n / (time.perf_counter() - start)


def shipped_images_per_second(n: int, size: int, seed: int = 0, workers: int | None = None) -> float:
    """The generator as shipped (all variation, realism mix, PNG writing, manifest), end to end."""
    from .generate import generate

    per_class = max(1, n // len(CLASSES))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(Path(tmp) / "bench", per_class=per_class, size=size, seed=seed, workers=workers, progress=False)
        return per_class * len(CLASSES) / (time.perf_counter() - start)


def run(n: int = 160, size: int = 128) -> dict:
    """Time both paths on the same classes and size; the ratio is the headline."""
    naive = naive_images_per_second(max(8, n // 4), size)
    one = shipped_images_per_second(n, size, workers=1)
    all_cores = shipped_images_per_second(n, size, workers=None)
    return {"size": size, "images": n, "cores": os.cpu_count(),
            "naive_matplotlib_img_s": round(naive, 2), "shipped_1_worker_img_s": round(one, 2),
            "shipped_all_cores_img_s": round(all_cores, 2),
            "speedup_per_core": round(one / naive, 1), "speedup_all_cores": round(all_cores / naive, 1)}
