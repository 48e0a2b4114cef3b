"""Helpers shared by the reliability tests (checkpoints, resume, divergence, bad inputs); their
fixtures (``small_root``, ``small_data``, ``one_thread``) are in conftest.py.

The tests train on a *small real copy*: the first few JPEG files of every class of the real
CIFAR-10 copy at ``$CIFAR10_ROOT``, copied into a temporary image-folder root. Loading it and
measuring its statistics takes well under a second, where the full copy takes ~10 s per run on
2 CPU cores; the images are the real ones.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from cifarhelpers.data import CLASSES


def make_small_copy(source: Path, dest: Path, train_per_class: int, test_per_class: int, offset: int = 0) -> Path:
    """Copy images ``offset .. offset + n - 1`` (in file-name order) of every class and split of
    the real copy at ``source`` into a new image-folder root ``dest``."""
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for cls in CLASSES:
            folder = dest / split / cls
            folder.mkdir(parents=True)
            files = sorted((source / split / cls).iterdir(), key=lambda p: p.name)[offset : offset + n]
            assert len(files) == n, f"the real copy has too few {split}/{cls} images"
            for f in files:
                shutil.copy2(f, folder / f.name)
    return dest


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones included), by relative path; folders
    are listed too (value ``"<dir>"``), so a new empty run folder shows up."""
    if not folder.exists():
        return {}
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def temp_files(folder: Path) -> list[Path]:
    """What an interrupted atomic write would leave behind (``.*.tmp``), anywhere under ``folder``."""
    return sorted(folder.rglob(".*.tmp"))


def comparable(history: list[dict]) -> list[dict]:
    """A history without its wall-clock timings (everything else must match exactly)."""
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


#: The environment of the ``cifar-train`` subprocesses: 1 thread each (see :func:`one_thread`),
#: the same in every process whose results are compared.
SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}
