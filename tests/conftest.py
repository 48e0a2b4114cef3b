"""Shared fixtures.

Tests marked ``data`` read the real CIFAR-10 copy from ``$CIFAR10_ROOT`` (``make test`` and
``.ci/run`` unpack ``../shared/data/cifar10-jpeg.tar.gz`` and set it). Without it they fail with
a message saying how to provide it; deselect them with ``-m "not data"`` to run the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from _synthetic import write_image_folder

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    root = os.environ.get("CIFAR10_ROOT", "")
    if not root or not Path(root).is_dir():
        pytest.fail(
            "the real CIFAR-10 copy is needed: set CIFAR10_ROOT to an unpacked copy (e.g. `tar -xzf "
            "../shared/data/cifar10-jpeg.tar.gz -C .cache` then CIFAR10_ROOT=.cache/cifar10-jpeg), or run "
            "`make test`, which does both; or deselect these tests with -m 'not data'",
            pytrace=False,
        )
    return Path(root)


@pytest.fixture(scope="session")
def cifar(cifar_root):
    """The whole real copy, loaded once per session (decoded once, then from its cache)."""
    from cifarhelpers.data import load_cifar10

    return load_cifar10(cifar_root, progress=False)


@pytest.fixture(scope="session")
def cifar_stats(cifar):
    from cifarhelpers.data import dataset_statistics

    return dataset_statistics(cifar.x_train)


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "tiny")
