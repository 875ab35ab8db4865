"""Photo import and fetch: every image these tests use is drawn here with PIL/numpy (tiny sizes)."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import importlib.util
import io
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

from generator import photos
from generator.errors import UserError
from generator.manifest import read_rows, write_rows

REPO = Path(__file__).resolve().parents[1]


# --- image makers ----------------------------------------------------------------------------------


def texture(seed: int, size=(96, 72)) -> Image.Image:
    """A random, smooth colour texture: distinct seeds give perceptually unrelated images."""
    rng = np.random.default_rng(seed)
    low = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(low).resize(size, Image.Resampling.BICUBIC)
    noise = rng.normal(0, 6, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def save(im: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


def jpeg_bytes(im: Image.Image, quality=90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def rows_by_source(out: Path) -> dict[str, dict]:
    return {r["source"]: r for r in read_rows(out / "manifest.csv")}


def run_import(src: Path, out: Path, **kw) -> dict:
    kw.setdefault("progress", False)
    return photos.import_photos(src, out, **kw)


# --- class names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("Resistor", "resistor"), ("resistors", "resistor"), ("RESISTORS", "resistor"),
    ("IC", "integrated_circuit"), ("ic", "integrated_circuit"), ("ICs", "integrated_circuit"),
    ("chip", "integrated_circuit"), ("chips", "integrated_circuit"),
    ("integrated circuit", "integrated_circuit"), ("Integrated_Circuits", "integrated_circuit"),
    ("integrated-circuit", "integrated_circuit"),
    ("battery", "voltage_source"), ("Batteries", "voltage_source"), ("cell", "voltage_source"),
    ("voltage_source", "voltage_source"),
    ("cap", "capacitor"), ("caps", "capacitor"), ("Capacitors", "capacitor"),
    ("led", "diode"), ("LEDs", "diode"), ("diodes", "diode"),
    ("transistors", "transistor"), ("BJT", "transistor"), ("mosfet", "transistor"),
    ("coil", "inductor"), ("Inductors", "inductor"), ("transformers", "transformer"),
    ("gizmos", None), ("Other", None), ("", None),
])
def test_canonical_class_aliases(name, expected):
    assert photos.canonical_class(name) == expected


# --- validation and normalisation ------------------------------------------------------------------


def test_bad_images_skipped_with_reasons_and_odd_modes_converted(tmp_path):
    src, out = tmp_path / "in", tmp_path / "ds"
    good = texture(1, (300, 150))
    save(good, src / "Resistors" / "good.png")
    (src / "Resistors" / "empty.jpg").write_bytes(b"")
    full = jpeg_bytes(texture(2, (200, 160)))
    (src / "Resistors" / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (src / "Resistors" / "text.jpg").write_text("this is not a picture\n")
    save(texture(3, (20, 60)), src / "Resistors" / "small.png")
    # odd modes, all in one class
    save(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), src / "caps" / "cmyk.jpg", quality=95)
    pal = Image.new("P", (64, 48), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.paste(0, (0, 0, 32, 48))
    save(pal, src / "caps" / "palette.png", transparency=0)  # left half transparent -> white
    rgba = Image.new("RGBA", (64, 48), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 32, 48))
    save(rgba, src / "caps" / "alpha.png")
    save(Image.fromarray(np.full((48, 64), 32768, dtype=np.uint16)), src / "caps" / "grey16.png")
    rot = Image.new("RGB", (120, 60), (255, 0, 0))
    rot.paste((0, 0, 255), (60, 0, 120, 60))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    save(rot, src / "caps" / "rotated.jpg", exif=exif, quality=95)

    report = run_import(src, out)

    assert report["skipped"] == {"empty": 1, "not_an_image": 1, "too_small": 1, "truncated": 1}
    rows = rows_by_source(out)
    for name, reason in [("empty", "empty"), ("truncated", "truncated"), ("text", "not_an_image")]:
        r = rows[f"Resistors/{name}.jpg"]
        assert (r["split"], r["note"], r["domain"]) == ("skipped", reason, "photo")
    assert rows["Resistors/small.png"]["note"] == "too_small"
    assert report["imported"] == {"capacitor": 5, "resistor": 1}

    def out_image(source):
        im = Image.open(out / rows[source]["file"])
        assert im.format == "JPEG" and im.mode == "RGB"
        return np.asarray(im, dtype=int)

    big = out_image("Resistors/good.png")
    assert big.shape[:2] == (128, 256)  # longer side capped at 256, aspect kept
    assert rows["Resistors/good.png"]["file"].startswith("photo/resistor/")
    cmyk = out_image("caps/cmyk.jpg")
    assert cmyk[24, 32, 0] > 200 and cmyk[24, 32, 1:].max() < 60  # cyan-free, full magenta+yellow = red
    for name in ("palette.png", "alpha.png"):
        a = out_image(f"caps/{name}")
        assert a[24, 8].min() > 235  # transparent half composited on white
        assert a[24, 56].min() < 60  # opaque half keeps its colour
    grey = out_image("caps/grey16.png")
    assert abs(grey.mean() - 128) < 3  # 16-bit mid-grey -> 8-bit mid-grey
    r = out_image("caps/rotated.jpg")
    assert r.shape[:2] == (120, 60)  # EXIF orientation applied: landscape became portrait
    assert r[10, 30, 0] > 200 and r[110, 30, 2] > 200  # left (red) half now on top


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    src = tmp_path / "in"
    save(texture(1, (100, 100)), src / "resistor" / "bomb_error.png")  # > 2x limit: Pillow raises
    save(texture(2, (70, 64)), src / "resistor" / "bomb_warning.png")  # > limit: Pillow warns
    save(texture(3, (60, 60)), src / "resistor" / "fine.png")
    report = run_import(src, tmp_path / "ds")
    assert report["skipped"] == {"decompression_bomb": 2}
    assert report["imported"] == {"resistor": 1}
    # the limit can also be passed explicitly
    with pytest.raises(photos.Skip, match="decompression_bomb"):
        photos.normalise_image(jpeg_bytes(texture(4, (40, 40))), max_pixels=1000)


# --- duplicates, splits, determinism ---------------------------------------------------------------


def near_copies(im: Image.Image) -> dict[str, tuple[Image.Image, dict]]:
    w, h = im.size
    return {
        "small.png": (im.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.BILINEAR), {}),
        "recompressed.jpg": (im, {"quality": 40}),
        "bright.png": (ImageEnhance.Brightness(im).enhance(1.12), {}),
        "cropped.png": (im.crop((3, 2, w - 3, h - 2)), {}),
    }


def make_family_tree(root: Path) -> dict[str, list[str]]:
    """Two classes of distinct textures; three per class get four near-copies each."""
    families = {}
    for c, cls in enumerate(("resistor", "diodes")):
        for i in range(14):
            seed = 100 * c + i
            base = texture(seed)
            save(base, root / cls / f"t{i:02d}.png")
            if i < 3:
                fam = [f"{cls}/t{i:02d}.png"]
                for name, (im, kw) in near_copies(base).items():
                    save(im, root / cls / f"t{i:02d}_{name}", **kw)
                    fam.append(f"{cls}/t{i:02d}_{name}")
                families[f"{cls}{i}"] = fam
    # an exact copy in the same class is kept once; one in two classes is ambiguous
    (root / "resistor" / "t05_copy.png").write_bytes((root / "resistor" / "t05.png").read_bytes())
    both = texture(999)
    save(both, root / "resistor" / "both.png")
    (root / "diodes" / "both.png").write_bytes((root / "resistor" / "both.png").read_bytes())
    return families


def test_near_copies_share_a_split_and_test_has_no_copy_of_train(tmp_path):
    src, out = tmp_path / "in", tmp_path / "ds"
    families = make_family_tree(src)
    report = run_import(src, out, seed=3)
    rows = rows_by_source(out)

    for fam in families.values():
        splits = {rows[s]["split"] for s in fam}
        assert len(splits) == 1 and splits <= {"train", "val", "test"}, fam
    dups = report["duplicate_groups"]
    assert dups["groups"] == len(families) and dups["images_in_groups"] == 5 * len(families)
    assert rows["resistor/t05_copy.png"]["note"] == "exact_duplicate"
    assert rows["resistor/t05_copy.png"]["split"] == "skipped"
    assert rows["resistor/t05.png"]["split"] != "skipped"
    assert rows["resistor/both.png"]["note"] == rows["diodes/both.png"]["note"] == "conflicting_labels"

    kept = [r for r in rows.values() if r["split"] != "skipped"]
    h = {r["file"]: int(json.loads(r["params"])["phash"], 16) for r in kept}
    train = [h[r["file"]] for r in kept if r["split"] == "train"]
    test = [h[r["file"]] for r in kept if r["split"] == "test"]
    assert test and train
    assert min(photos.hamming(a, b) for a in test for b in train) > photos.DUP_DISTANCE
    for cls in ("resistor", "diode"):  # stratified: every class in every split
        assert all(report["splits"][s].get(cls, 0) > 0 for s in ("train", "val", "test")), report["splits"]


def test_same_seed_same_bytes_rerun_idempotent_other_domains_kept(tmp_path):
    src = tmp_path / "in"
    make_family_tree(src)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    schematic = {"file": "schematic/resistor/x.png", "label": "resistor", "domain": "schematic", "split": "train"}
    write_rows(a / "manifest.csv", [schematic])

    run_import(src, a, seed=7)
    first = (a / "manifest.csv").read_bytes(), (a / "photo_import.json").read_bytes()
    run_import(src, a, seed=7)  # rerun replaces the photo domain with identical content
    assert ((a / "manifest.csv").read_bytes(), (a / "photo_import.json").read_bytes()) == first
    run_import(src, b, seed=7)
    b_rows = (b / "manifest.csv").read_bytes().decode()
    assert [r for r in read_rows(a / "manifest.csv") if r["domain"] == "schematic"][0]["file"] == schematic["file"]
    assert first[0].decode().replace(schematic["file"] + ",resistor,schematic,train,,,,,\n", "") == b_rows
    files = sorted(p.relative_to(a).as_posix() for p in (a / "photo").rglob("*.jpg"))
    assert files == sorted(p.relative_to(b).as_posix() for p in (b / "photo").rglob("*.jpg"))

    run_import(src, b, seed=8)
    assert (b / "manifest.csv").read_bytes().decode() != b_rows  # another seed, another split

    (src / "resistor" / "t13.png").unlink()  # a removed input disappears from the dataset
    gone = rows_by_source(a)["resistor/t13.png"]["file"]
    run_import(src, a, seed=7)
    assert "resistor/t13.png" not in rows_by_source(a) and not (a / gone).exists()


def test_unknown_folders_and_loose_files_reported(tmp_path):
    src = tmp_path / "in"
    save(texture(1), src / "resistors" / "a.png")
    save(texture(2), src / "gizmos" / "b.png")
    save(texture(3), src / "gizmos" / "c.png")
    (src / "notes.txt").write_text("hello")
    (src / "resistors" / "Thumbs.db").write_bytes(b"x")
    report = run_import(src, tmp_path / "ds")
    assert report["unknown_folders"] == {"gizmos": 2}
    assert report["loose_files"] == ["notes.txt"]
    assert report["other_files"] == ["resistors/Thumbs.db"]
    assert report["folders"] == {"resistors": "resistor"}
    assert report["imported"] == {"resistor": 1}
    saved = json.loads((tmp_path / "ds" / "photo_import.json").read_text())
    assert saved["unknown_folders"] == {"gizmos": 2}


# --- bad input -------------------------------------------------------------------------------------


def test_bad_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run_import(tmp_path / "missing", tmp_path / "ds")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        run_import(tmp_path / "file.txt", tmp_path / "ds")
    src = tmp_path / "in"
    save(texture(1), src / "gizmos" / "a.png")
    save(texture(2), src / "widgets" / "a.png")
    with pytest.raises(UserError, match=r"no class folders recognised.*gizmos, widgets.*resistor"):
        run_import(src, tmp_path / "ds")
    save(texture(3), src / "resistor" / "a.png")
    with pytest.raises(UserError, match="cannot write"):
        run_import(src, tmp_path / "file.txt" / "ds")  # --out beneath a file
    with pytest.raises(UserError, match="--val"):
        run_import(src, tmp_path / "ds", val=0.6, test=0.5)


def cli_app() -> typer.Typer:
    app = typer.Typer()
    photos.register(app)

    @app.callback()
    def _root():  # keeps `photos` a sub-command even with one group
        pass

    return app


def test_cli_import_prints_summary(tmp_path):
    src = tmp_path / "in"
    for i in range(3):
        save(texture(i), src / "Batteries" / f"{i}.png")
    result = CliRunner().invoke(cli_app(), ["photos", "import", str(src), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "voltage_source" in result.output and "imported" in result.output
    result = CliRunner().invoke(cli_app(), ["photos", "import", str(tmp_path / "nope"), "--out", str(tmp_path / "ds")])
    assert isinstance(result.exception, UserError)


@pytest.mark.skipif(importlib.util.find_spec("generator.cli") is None,
                    reason="generator/cli.py not written yet, so trainer.cli cannot start")
def test_cli_missing_dir_exit_code_2_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trainer.cli", "photos", "import", str(tmp_path / "nope"),
         "--out", str(tmp_path / "ds")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "does not exist" in lines[0]


# --- fetch -----------------------------------------------------------------------------------------


def make_archive(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def repo_archive(path: Path) -> str:
    """A GitHub-style archive: one REPO-COMMIT/ folder, class folders under Dataset/."""
    top = "Parts-abc123/Dataset"
    return make_archive(path, {
        **{f"{top}/Resistors/r{i}.png": png_bytes(texture(i)) for i in range(4)},
        **{f"{top}/caps/c{i}.png": png_bytes(texture(50 + i)) for i in range(3)},
        f"{top}/junk/x.png": png_bytes(texture(90)),
        "Parts-abc123/README.md": b"# parts\n",
    })


def write_sources(path: Path, url: str, sha256=None, class_map=None) -> Path:
    path.write_text(json.dumps({"version": 1, "sources": [{
        "name": "parts", "repo": "someone/Parts", "commit": "abc123", "url": url, "sha256": sha256,
        "subdir": "Dataset", "class_map": class_map or {"Resistors": "resistor"}, "licence": None,
        "note": "test archive"}]}))
    return path


@contextlib.contextmanager
def serve(directory: Path):
    """A loopback HTTP server for one test, shut down at the end."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def check_fetched(report: dict, sha: str) -> None:
    assert report["imported"] == {"capacitor": 3, "resistor": 4}  # caps via the alias fallback
    assert report["unknown_folders"] == {"parts:Dataset/junk": 1}
    assert report["sources"][0]["sha256"] == sha


def test_fetch_from_file_url(tmp_path):
    sha = repo_archive(tmp_path / "parts.zip")
    sources = write_sources(tmp_path / "sources.json", (tmp_path / "parts.zip").as_uri(), sha256=sha)
    out = tmp_path / "ds"
    report = photos.fetch_photos(out, sources, tmp_path / "cache", yes=True, progress=False)
    check_fetched(report, sha)
    rows = read_rows(out / "manifest.csv")
    assert {r["source"] for r in rows} >= {"parts:Dataset/Resistors/r0.png", "parts:Dataset/caps/c2.png"}
    assert all((out / r["file"]).is_file() for r in rows)
    # a second run reuses the cached archive and gives the same dataset
    first = (out / "manifest.csv").read_bytes()
    (tmp_path / "parts.zip").unlink()
    photos.fetch_photos(out, sources, tmp_path / "cache", yes=True, progress=False)
    assert (out / "manifest.csv").read_bytes() == first


def test_fetch_over_loopback_http(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "www"
    served.mkdir()
    sha = repo_archive(served / "parts.zip")
    with serve(served) as base:
        sources = write_sources(tmp_path / "sources.json", base + "/parts.zip")  # no sha256: still recorded
        report = photos.fetch_photos(tmp_path / "ds", sources, tmp_path / "cache", yes=True, progress=False)
    check_fetched(report, sha)


def test_fetch_refuses_sha256_mismatch_and_needs_consent(tmp_path):
    repo_archive(tmp_path / "parts.zip")
    url = (tmp_path / "parts.zip").as_uri()
    sources = write_sources(tmp_path / "sources.json", url, sha256="0" * 64)
    cache, out = tmp_path / "cache", tmp_path / "ds"
    with pytest.raises(UserError, match="sha256 mismatch"):
        photos.fetch_photos(out, sources, cache, yes=True, progress=False)
    assert not any(cache.rglob("*.zip")) and not any(cache.rglob("*.part"))
    assert not (out / "manifest.csv").exists()

    sources = write_sources(tmp_path / "sources.json", url)
    with pytest.raises(UserError, match="--yes"):  # no licence stated, not confirmed
        photos.fetch_photos(out, sources, cache, progress=False)
    with pytest.raises(UserError, match="--yes"):
        photos.fetch_photos(out, sources, cache, confirm=lambda question: False, progress=False)
    report = photos.fetch_photos(out, sources, cache, confirm=lambda question: "licence" in question, progress=False)
    assert report["imported_total"] == 7


def test_fetch_refuses_unsafe_archive_and_bad_sources(tmp_path):
    make_archive(tmp_path / "evil.zip", {"Parts/Dataset/resistor/a.png": png_bytes(texture(1)),
                                         "../escaped.png": b"x"})
    sources = write_sources(tmp_path / "sources.json", (tmp_path / "evil.zip").as_uri())
    with pytest.raises(UserError, match="unsafe member"):
        photos.fetch_photos(tmp_path / "ds", sources, tmp_path / "cache", yes=True, progress=False)
    assert not (tmp_path / "escaped.png").exists()

    bad = write_sources(tmp_path / "bad.json", "file:///x.zip", class_map={"Resistors": "resistorz"})
    with pytest.raises(UserError, match="unknown class"):
        photos.load_sources(bad)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        photos.load_sources(tmp_path / "broken.json")


def test_shipped_sources_file_is_valid():
    sources = photos.load_sources(REPO / "datasets" / "photo_sources.json")
    assert {s.repo for s in sources} == {
        "pouria-faraji/Electronic-Components-Classification",
        "mehmetzmn/Electronic-component-classifier",
        "FriedrichZhao/Singapore_Battery_Dataset",
    }
    assert all(s.archive_url.startswith("https://codeload.github.com/") and s.commit in s.archive_url for s in sources)
