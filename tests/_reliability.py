"""Helpers shared by the reliability tests (checkpoints, resume, divergence, bad inputs).

The tests train on a *small real copy*: the first few JPEG files of every class of the real
CIFAR-10 copy at ``$CIFAR10_ROOT``, copied into a temporary image-folder root. Loading it and
measuring its statistics takes well under a second, where the full copy takes ~10 s per run on
2 CPU cores; the images are the real ones.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def small_root(cifar_root, tmp_path_factory) -> Path:
    """A real image-folder copy with 20 train and 10 test images per class (200 + 100)."""
    return make_small_copy(cifar_root, tmp_path_factory.mktemp("small") / "cifar10", 20, 10)


@pytest.fixture(scope="session")
def small_data(small_root):
    from cifarhelpers.data import load_cifar10

    return load_cifar10(small_root, progress=False)


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


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for the module's tests, then the previous count again.

    These tests train for a few steps on 2 CPU cores shared with other work; with 2 threads, a
    core taken by another process makes every step wait on the other thread (measured: 30x
    slower), while 1 thread runs at full speed. Results are compared within one thread count only.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: The environment of the ``cifar-train`` subprocesses: 1 thread each (see :func:`one_thread`),
#: the same in every process whose results are compared.
SUBPROCESS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}
