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
from _reliability import make_small_copy
from _synthetic import write_image_folder

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
#: Test processes (pytest-xdist's ``-n``; 1 without it): the cores are shared among them, so each takes its share of
#: torch threads, and so do the notebooks' kernels and other subprocesses (OMP_NUM_THREADS, read when torch loads).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(2, (os.cpu_count() or 1) // WORKERS))
torch.set_num_threads(THREADS)
if WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

#: The test files that take longest, longest first (seconds in one of ``make test``'s 2 processes, measured on
#: 2026-12-03: the notebooks' one execution 238, the small real training 183, the offline bundle 161, the GPU
#: report's smoke runs 80, the Ray cluster 80, the kill-and-resume runs 78, the sweeps 53, the recipes 49; all 708
#: tests, summed over both processes, 1,056).
#: pytest-xdist's ``--dist loadfile`` hands files to its processes in collection order (``make test`` passes
#: ``--no-loadscope-reorder``; by default it orders them by their number of tests), so a long file collected late
#: would run alone at the end while the other process waits.
LONGEST_FIRST = ("test_notebooks.py", "test_train.py", "test_bundle.py", "test_gpu_report.py", "test_ray_cluster.py",
                 "test_checkpoint.py", "test_sweep.py", "test_recipes.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the files of :data:`LONGEST_FIRST` first, in that order; every other test keeps its place (a stable sort)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="module")
def one_ray_at_a_time(tmp_path_factory):
    """Held by the tests that start Ray, for their module: under pytest-xdist (``make test`` runs the test files
    in 2 processes) two Ray instances starting at once on 2 cores miss Ray's own start-up timeouts."""
    import fcntl

    lock = tmp_path_factory.getbasetemp().parent / "ray.lock"  # the folder every worker's base temp is in
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


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
    # The notebooks' kernels (tests/test_notebooks.py) run in other folders and read $CIFAR10_ROOT: an absolute
    # path lets a relative one work there too (run_notebooks and `make test` do the same).
    os.environ["CIFAR10_ROOT"] = str(Path(root).resolve())
    return Path(root).resolve()


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


@pytest.fixture(scope="session")
def small_root(cifar_root, tmp_path_factory) -> Path:
    """A real image-folder copy with 20 train and 10 test images per class (200 + 100)."""
    return make_small_copy(cifar_root, tmp_path_factory.mktemp("small") / "cifar10", 20, 10)


@pytest.fixture(scope="session")
def small_data(small_root):
    from cifarhelpers.data import load_cifar10

    return load_cifar10(small_root, progress=False)


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

