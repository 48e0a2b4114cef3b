"""Batch loaders for training and evaluation.

Both loaders used in training share one small interface, so the loops need not know which runs:

* ``len(loader)``: batches per epoch; ``loader.num_images``: images per epoch;
* ``loader.set_epoch(seed)``: fix the epoch's shuffling and augmentation from one integer;
* iterating yields ``(images, labels)``: (B, 3, 32, 32) float32 normalized, (B,) int64.

:class:`AlbumentationsLoader` is the reference path (per-image CPU augmentation in a DataLoader);
:class:`cifarhelpers.device_loader.DeviceLoader` keeps the data set on the training device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import albumentations as A
import numpy as np
import torch

from .transforms import AugmentedDataset, seed_worker


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
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: A.Compose, *, batch_size: int,
                 train: bool, num_workers: int = 0, pin_memory: bool = False):
        self.dataset = AugmentedDataset(images, labels, transform)
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, shuffle=train, drop_last=train, num_workers=num_workers,
            pin_memory=pin_memory, worker_init_fn=seed_worker, generator=self.generator,
            persistent_workers=False,
        )

    @property
    def num_images(self) -> int:
        """Images yielded per epoch (dropped remainder excluded)."""
        return len(self.loader) * self.loader.batch_size if self.loader.drop_last else len(self.dataset)

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


def check_batches(num_images: int, batch_size: int, what: str = "train_subset") -> None:
    """Raise ConfigError when a training set yields no full batch."""
    from .errors import ConfigError

    if num_images < batch_size:
        raise ConfigError(
            f"{what} gives {num_images} training images, fewer than batch_size={batch_size}: an epoch "
            f"would have no full batch. Use a larger {what} or a smaller batch_size."
        )
