"""A run's data: the subsets, the normalization statistics and the batch loaders, from its config.

:func:`prepare_data` is what training and the LR range test call. Both loaders share one small
interface, so the loops need not know which runs:

* ``len(loader)``: batches per epoch;
* ``loader.set_epoch(seed)``: fix the epoch's shuffling and augmentation from one integer;
* iterating yields ``(images, labels)``: (B, 3, 32, 32) float32 normalized, (B,) int64.

:class:`AlbumentationsLoader` is the reference path (per-image CPU augmentation in a DataLoader);
:class:`cifarhelpers.data.device_loader.DeviceLoader` keeps the data set on the training device.
``TrainConfig.loader="auto"`` (the default) picks one once the device is known: :func:`resolved_loader`.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import albumentations as A
import numpy as np
import torch

from cifarhelpers.data import (
    DEVICE_TRANSFORM_SETS,
    AugmentedDataset,
    ChannelStats,
    CIFAR10Data,
    DeviceLoader,
    balanced_subset,
    dataset_statistics,
    load_cifar10,
    seed_worker,
    test_transform,
    train_transform,
)
from cifarhelpers.errors import ConfigError

from .config import TrainConfig


def default_num_workers(device: torch.device) -> int:
    """Worker processes for a DataLoader: 0 on CPU (the model, not the data, sets the pace
    there, and workers would compete for the same cores), else the core count, at most 8."""
    return 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)


class AlbumentationsLoader:
    """A DataLoader over an :class:`AugmentedDataset`, reseeded per epoch.

    Args:
        images: (N, 32, 32, 3) uint8.
        labels: (N,) int labels.
        transform: albumentations pipeline ending in ``ToTensorV2``.
        batch_size: images per batch.
        train: shuffle and drop the last incomplete batch (as David Page's recipe does; the
            dropped images differ every epoch) when True; keep order and every image when False.
        num_workers: DataLoader workers (see :func:`default_num_workers`).
        pin_memory: pin host memory for faster copies to a GPU.
        persistent_workers: keep the workers alive from one pass to the next (with ``num_workers > 0``).
            Only for a pipeline that draws nothing at random (the test pipeline): workers are seeded
            when they start, so :meth:`set_epoch` cannot reseed persistent ones. The default, False,
            starts them afresh every pass. :func:`prepare_data` keeps the test loader's: on the H200
            report of 2026-11-26, 24 test passes with 16 workers started afresh each time took 12.0 s,
            against 0.8-1.0 s on the device loader (the first batch of a fresh loader came after 0.53 s).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: A.Compose, *, batch_size: int,
                 train: bool, num_workers: int = 0, pin_memory: bool = False, persistent_workers: bool = False):
        self.dataset = AugmentedDataset(images, labels, transform)
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, shuffle=train, drop_last=train, num_workers=num_workers,
            pin_memory=pin_memory, worker_init_fn=seed_worker, generator=self.generator,
            persistent_workers=persistent_workers and num_workers > 0,
        )

    def set_epoch(self, seed: int) -> None:
        """Fix this epoch's shuffle and augmentations: the DataLoader's generator (which also
        seeds the workers) and, for ``num_workers=0``, the pipeline in this process."""
        self.generator.manual_seed(seed)
        self.dataset.reseed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield images, labels


def resolved_loader(loader: str, transform_set: str, device_type: str) -> str:
    """The loader a run uses, ``"albumentations"`` or ``"device"``: ``loader`` itself unless it is
    ``"auto"``, which is the device loader on a CUDA GPU (the data set lives there, augmented in
    batches: no per-image Python, no host-to-device copies) when it implements ``transform_set``
    (:data:`~cifarhelpers.data.transforms.DEVICE_TRANSFORM_SETS`), else the albumentations DataLoader
    (CPU and MPS: there the reference path, and the pinned histories, stay as they were).

    Args:
        loader: ``TrainConfig.loader``: ``"auto"``, ``"albumentations"`` or ``"device"``.
        transform_set: ``TrainConfig.transform_set``.
        device_type: ``torch.device.type`` of the training device (``"cuda"``, ``"cpu"``, ``"mps"``).
    """
    if loader != "auto":
        return loader
    return "device" if device_type == "cuda" and transform_set in DEVICE_TRANSFORM_SETS else "albumentations"


def check_batches(num_images: int, batch_size: int, what: str = "train_subset") -> None:
    """Raise ConfigError when a training set yields no full batch."""
    if num_images < batch_size:
        raise ConfigError(
            f"{what} gives {num_images} training images, fewer than batch_size={batch_size}: an epoch "
            f"would have no full batch. Use a larger {what} or a smaller batch_size."
        )


@dataclass
class Prepared:
    """Data, statistics and loaders of a run, built once from its config by :func:`prepare_data`.

    Attributes:
        data: the whole CIFAR-10 copy.
        stats: per-channel statistics of the whole training set ([0, 1] scale), used to normalize.
        train_loader, test_loader: the loaders (interface in the module docstring).
        train_images, test_images: images in the run's (sub)sets.
        loader: the loader in use, ``"albumentations"`` or ``"device"`` (``"auto"`` resolved).
    """

    data: CIFAR10Data
    stats: ChannelStats
    train_loader: Any
    test_loader: Any
    train_images: int
    test_images: int
    loader: str


#: The training-set statistics of each loaded copy, measured once per copy object (about 9 s for
#: 50,000 images on 2 CPU cores): the runs of a sweep or a notebook that share a copy share them.
#: Weak keys: a copy no longer used takes its entry with it.
_TRAIN_STATS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def train_statistics(data: CIFAR10Data) -> ChannelStats:
    """:func:`~cifarhelpers.data.statistics.dataset_statistics` of ``data.x_train``, measured once per
    loaded copy in this process (the arrays of a loaded copy are not changed in place)."""
    stats = _TRAIN_STATS.get(data)
    if stats is None:
        stats = _TRAIN_STATS[data] = dataset_statistics(data.x_train)
    return stats


def prepare_data(cfg: TrainConfig, device: torch.device, data: CIFAR10Data | None = None,
                 progress: bool = True) -> Prepared:
    """Load the data (unless given), measure the train statistics, draw subsets, build loaders.

    The normalization statistics always come from the whole training set, so a subset run
    normalizes exactly like the full run. ``cfg.loader``, resolved for ``device`` by
    :func:`resolved_loader`, picks the loader: the albumentations DataLoader (reference path) or
    :class:`~cifarhelpers.data.device_loader.DeviceLoader`. Test batches hold ``max(batch_size, 256)`` images.

    Raises:
        ConfigError: a subset larger than the data, or fewer training images than one batch.
        DataError / DataNotFoundError: as :func:`~cifarhelpers.data.cifar10.load_cifar10`.
    """
    data = data if data is not None else load_cifar10(cfg.data_root, download=cfg.download, progress=progress)
    stats = train_statistics(data)
    x_train, y_train = balanced_subset(data.x_train, data.y_train, cfg.train_subset, cfg.seed, name="train_subset")
    x_test, y_test = balanced_subset(data.x_test, data.y_test, cfg.test_subset, cfg.seed, name="test_subset")
    check_batches(len(x_train), cfg.batch_size)
    test_batch = max(cfg.batch_size, 256)
    loader = resolved_loader(cfg.loader, cfg.transform_set, device.type)
    if loader == "device":
        common = dict(mean=stats.mean, std=stats.std, device=device, channels_last=cfg.channels_last)
        train_loader = DeviceLoader(x_train, y_train, batch_size=cfg.batch_size, train=True,
                                    transform_set=cfg.transform_set, **common)
        test_loader = DeviceLoader(x_test, y_test, batch_size=test_batch, train=False, **common)
    else:
        workers = cfg.num_workers if cfg.num_workers is not None else default_num_workers(device)
        common = dict(num_workers=workers, pin_memory=device.type == "cuda")
        train_loader = AlbumentationsLoader(x_train, y_train, train_transform(stats.mean, stats.std, cfg.transform_set),
                                            batch_size=cfg.batch_size, train=True, **common)
        test_loader = AlbumentationsLoader(x_test, y_test, test_transform(stats.mean, stats.std),  # no randomness
                                           batch_size=test_batch, train=False, persistent_workers=True, **common)
    return Prepared(data, stats, train_loader, test_loader, len(x_train), len(x_test), loader)
