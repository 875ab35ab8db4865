"""Shared fixtures: paths, the CLI runner, and the real shared data (skipped with a reason when absent)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `image2circuit ARGS` as a user would, capturing output and exit code."""
    return subprocess.run([sys.executable, "-m", "trainer.cli", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def shared_folder(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real images not available: {path} is missing (it lies beside the checkout in dev and CI)")
    return path
