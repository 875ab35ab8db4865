"""Trainer: data -> model -> fit -> evaluate -> report, driven by the typer CLI."""
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
