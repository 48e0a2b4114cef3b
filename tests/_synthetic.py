"""Tiny synthetic image-folder copies for layout and error tests (never a stand-in for CIFAR-10
results: the real copy is used for those)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_image_folder(root: Path, per_class: int = 2, size=(32, 32), mode="RGB", seed=0) -> Path:
    """A tiny synthetic image-folder copy (PNG files) for layout and error tests."""
    from PIL import Image

    from cifarhelpers.data import CLASSES

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                channels = len(mode)
                pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
                Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(folder / f"{i:04d}.png")
    return root
