"""Schematic-symbol generator: catalogue -> render -> augment -> write."""
import os

# albumentations would otherwise check PyPI for updates on import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

CLASSES = (
    "capacitor",
    "diode",
    "inductor",
    "integrated_circuit",
    "resistor",
    "transformer",
    "transistor",
    "voltage_source",
)
