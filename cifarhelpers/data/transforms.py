"""Augmentation pipelines (albumentations 2.x) and the torch Dataset that applies them.

The train pipeline of the main job (transform set ``"cutout8"``), after David Page's 24-epoch
ResNet recipe (https://github.com/davidcpage/cifar10-fast) and the cutout paper (DeVries & Taylor,
2017, "Improved Regularization of Convolutional Neural Networks with Cutout",
https://arxiv.org/abs/1708.04552):

1. pad 4 pixels each side (32 -> 40) with reflect-101 padding, then a random 32x32 crop;
2. horizontal flip with probability 0.5;
3. one 8x8 cutout hole (``CoarseDropout``) filled with the data set's mean colour, always applied
   (``"cutout8_p05"``: with probability 0.5 per image, the course's albumentations template); the
   hole lies wholly inside the image (albumentations 2.x draws its top-left corner uniformly from
   [0, 32 - 8]);
4. normalize with the measured per-channel mean and std, then to a (3, 32, 32) float32 tensor.

Each named set is a :class:`TransformSet` of :data:`TRANSFORM_SETS` (its parameters);
:data:`DEVICE_TRANSFORM_SETS`, derived from them, are the sets
:class:`cifarhelpers.data.device_loader.DeviceLoader` implements too.

The test pipeline is step 4 alone. Every ``Compose`` is built with ``strict=True`` so a misspelt
argument raises instead of being dropped with a warning.

Example::

    from cifarhelpers.data import AugmentedDataset, train_transform
    tf = train_transform(stats.mean, stats.std)
    ds = AugmentedDataset(data.x_train, data.y_train, tf)
    image, label = ds[0]      # (3, 32, 32) float32 tensor, int
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

from cifarhelpers.errors import ConfigError  # noqa: E402

PAD = 4  # pixels added on each side before the random crop: 32 -> 40
CROP = 32  # output side, pixels
CUTOUT_SIZE = 8  # side of the cutout hole of the main job, pixels
# Reflect-101 (edge pixel not repeated): cv2.BORDER_REFLECT_101 == torch F.pad(mode="reflect")
# == np.pad(mode="reflect"), so the device loader pads exactly like this pipeline.
PAD_BORDER = cv2.BORDER_REFLECT_101

Stats = Sequence[float]


def mean_fill(mean: Stats) -> tuple[int, ...]:
    """The mean colour on the 0-255 scale, rounded: the fill of cutout holes on uint8 images.

    Args:
        mean: per-channel mean on the [0, 1] scale, e.g. ``dataset_statistics(x).mean``.
    """
    return tuple(int(round(255.0 * float(m))) for m in mean)


def _check_stats(mean: Stats, std: Stats | None) -> None:
    """Raise ValueError unless ``mean`` and ``std`` (None: not checked) are 3 values each on the [0, 1] scale."""
    std_ = (1.0, 1.0, 1.0) if std is None else std
    if len(mean) != 3 or len(std_) != 3:
        raise ValueError(f"mean and std need 3 values (R, G, B), got {len(mean)} and {len(std_)}")
    if not all(0.0 <= float(m) <= 1.0 for m in mean) or not all(0.0 < float(s) <= 1.0 for s in std_):
        raise ValueError(
            f"mean {list(mean)} and std {list(std_)} must be on the [0, 1] scale (std > 0): pass "
            "dataset_statistics(x).mean/.std, not values on the 0-255 scale"
        )


def _normalize(mean: Stats, std: Stats) -> list:
    return [A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()]


def pad_crop(pad: int = PAD, size: int = CROP) -> list:
    """Steps that pad ``pad`` pixels each side (reflect-101) then crop a random ``size`` x ``size`` window."""
    return [
        A.PadIfNeeded(min_height=size + 2 * pad, min_width=size + 2 * pad, border_mode=PAD_BORDER),
        A.RandomCrop(height=size, width=size),
    ]


def cutout(mean: Stats, size: int = CUTOUT_SIZE, p: float = 1.0) -> A.CoarseDropout:
    """One ``size`` x ``size`` hole filled with the mean colour (uint8 input), cut with probability ``p``
    per image (cutout: DeVries & Taylor, 2017, https://arxiv.org/abs/1708.04552); the hole's top-left
    corner is uniform in [0, side - size] on each axis, so it lies wholly inside the image."""
    return A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(size, size),
                           hole_width_range=(size, size), fill=mean_fill(mean), p=p)


def shift_scale_rotate(mean: Stats, p: float = 0.5) -> A.Affine:
    """Shift up to 6.25% of the side, scale 0.9-1.1, rotate up to 15 degrees, the uncovered corners
    filled with the mean colour (uint8 input), with probability ``p``. ``Affine`` replaces
    albumentations 1.x's ``ShiftScaleRotate(shift 0.0625, scale 0.1, rotate 15)``."""
    return A.Affine(translate_percent=(-0.0625, 0.0625), scale=(0.9, 1.1), rotate=(-15, 15),
                    border_mode=cv2.BORDER_CONSTANT, fill=mean_fill(mean), p=p)


@dataclass(frozen=True)
class TransformSet:
    """A named train augmentation set: its uint8 -> uint8 steps, in this order, each present when its
    parameter is non-zero.

    Attributes:
        pad: pixels added on each side (reflect-101) before a random ``CROP`` x ``CROP`` crop; 0: no crop.
        flip_p: probability of a horizontal flip.
        affine_p: probability of :func:`shift_scale_rotate`.
        cutout_size: side of the one square cutout hole, pixels (DeVries & Taylor, 2017); 0: no cutout.
        cutout_p: probability, per image, that the hole is cut.
    """

    pad: int = 0
    flip_p: float = 0.0
    affine_p: float = 0.0
    cutout_size: int = 0
    cutout_p: float = 1.0

    def steps(self, mean: Stats) -> list:
        """The albumentations steps; ``mean`` ([0, 1] scale) gives the fill of holes and corners."""
        return [*(pad_crop(self.pad) if self.pad else []),
                *([A.HorizontalFlip(p=self.flip_p)] if self.flip_p else []),
                *([shift_scale_rotate(mean, self.affine_p)] if self.affine_p else []),
                *([cutout(mean, self.cutout_size, self.cutout_p)] if self.cutout_size else [])]

    @property
    def on_device(self) -> bool:
        """Whether :class:`~cifarhelpers.data.device_loader.DeviceLoader` implements the set: any pad-and-crop
        and cutout, a flip with p 0.5, no affine step."""
        return self.affine_p == 0 and self.flip_p == 0.5


#: Named augmentation sets: name -> :class:`TransformSet`.
TRANSFORM_SETS: dict[str, TransformSet] = {
    "cutout8": TransformSet(pad=PAD, flip_p=0.5, cutout_size=CUTOUT_SIZE, cutout_p=1.0),  # the main job's
    "cutout8_p05": TransformSet(pad=PAD, flip_p=0.5, cutout_size=CUTOUT_SIZE, cutout_p=0.5),  # the course template's
    # the DilatedNet variant's: flip, shift-scale-rotate, one 16x16 hole, each with p 0.5
    "affine_cutout16": TransformSet(flip_p=0.5, affine_p=0.5, cutout_size=16, cutout_p=0.5),
}
#: The sets the device loader implements, in registry order (derived from :data:`TRANSFORM_SETS`).
DEVICE_TRANSFORM_SETS: tuple[str, ...] = tuple(name for name, spec in TRANSFORM_SETS.items() if spec.on_device)


def check_device_transform_set(loader: str, transform_set: str) -> None:
    """Raise ConfigError when ``loader`` is ``"device"`` and the device loader does not implement
    ``transform_set`` (``"auto"`` falls back to albumentations for such a set instead)."""
    if loader == "device" and transform_set not in DEVICE_TRANSFORM_SETS:
        raise ConfigError(f"loader='device' implements transform_set in {list(DEVICE_TRANSFORM_SETS)} only, got "
                          f"{transform_set!r}: use loader='albumentations' or 'auto' for other augmentation sets")


def augmentation_steps(mean: Stats, transform_set: str = "cutout8") -> list:
    """The uint8 -> uint8 albumentations steps of a transform set, before normalization.

    Raises:
        ConfigError: unknown ``transform_set`` (the message lists the known ones).
    """
    if transform_set not in TRANSFORM_SETS:
        raise ConfigError(f"unknown transform_set {transform_set!r}; choose one of {sorted(TRANSFORM_SETS)}")
    return TRANSFORM_SETS[transform_set].steps(mean)


def train_transform(mean: Stats, std: Stats, transform_set: str = "cutout8", seed: int | None = None) -> A.Compose:
    """The train pipeline: augmentation steps of ``transform_set``, normalize, to tensor.

    Args:
        mean, std: per-channel statistics on the [0, 1] scale (from ``dataset_statistics``).
        transform_set: a key of :data:`TRANSFORM_SETS`.
        seed: seed of the pipeline's own random state (albumentations ignores global seeds).

    Returns:
        ``A.Compose`` mapping ``image=`` (32, 32, 3) uint8 to ``{"image": (3, 32, 32) float32 tensor}``.

    Raises:
        ValueError: mean/std are not three values on the [0, 1] scale.
        ConfigError: unknown ``transform_set``.
    """
    _check_stats(mean, std)
    return A.Compose([*augmentation_steps(mean, transform_set), *_normalize(mean, std)], strict=True, seed=seed)


def test_transform(mean: Stats, std: Stats) -> A.Compose:
    """The test pipeline: normalize with ``mean``/``std`` ([0, 1] scale), to a (3, 32, 32) float32 tensor."""
    _check_stats(mean, std)
    return A.Compose(_normalize(mean, std), strict=True)


class AugmentedDataset(torch.utils.data.Dataset):
    """A map-style Dataset of uint8 images passed through an albumentations pipeline.

    Args:
        images: (N, H, W, 3) uint8 array (HWC, RGB).
        labels: (N,) integer labels.
        transform: albumentations ``Compose`` ending in ``ToTensorV2`` (see :func:`train_transform`).

    Item ``i`` is ``(image, label)``: image a (3, H, W) float32 tensor, label a Python int.

    Seeding: albumentations keeps its own random state and DataLoader workers are forked with
    identical copies of it, so every worker would draw the same augmentations. Pass
    :func:`seed_worker` as the DataLoader's ``worker_init_fn``
    (:class:`cifarhelpers.training.loaders.AlbumentationsLoader` does) and call :meth:`reseed` before an
    epoch in the main process.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: A.Compose):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: they must match one to one")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(image=self.images[index])["image"], int(self.labels[index])

    def reseed(self, seed: int) -> None:
        """Reset the pipeline's random state (numpy and python generators of every step)."""
        self.transform.set_random_seed(int(seed) % 2**32)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed the worker's pipeline from its torch seed.

    Torch gives each worker ``base_seed + worker_id``, with ``base_seed`` drawn from the loader's
    generator every epoch, so workers differ from each other and from epoch to epoch, and a
    seeded generator makes the whole stream reproducible.
    """
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset if info is not None else None
    if isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    if isinstance(dataset, AugmentedDataset):
        dataset.reseed(torch.initial_seed())


def normalize_batch(images: np.ndarray, mean: Stats, std: Stats) -> torch.Tensor:
    """uint8 images (N, H, W, 3) -> normalized (N, 3, H, W) float32 tensor (the test pipeline)."""
    tf = test_transform(mean, std)
    return torch.stack([tf(image=image)["image"] for image in np.asarray(images)])


def denormalize(images: torch.Tensor | np.ndarray, mean: Stats, std: Stats) -> np.ndarray:
    """Undo normalization for display.

    Args:
        images: (N, 3, H, W) or (3, H, W) normalized float tensor or array.
        mean, std: the statistics used to normalize ([0, 1] scale).

    Returns:
        float32 array of the same N in HWC layout, (N, H, W, 3) or (H, W, 3), clipped to [0, 1]:
        what ``plt.imshow`` and GradCAM's ``show_cam_on_image`` expect.
    """
    x = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"denormalize expects (N, 3, H, W) or (3, H, W), got shape {x.shape}")
    m = np.asarray(mean, np.float32).reshape(3, 1, 1)
    s = np.asarray(std, np.float32).reshape(3, 1, 1)
    x = np.clip(x * s + m, 0.0, 1.0)
    return np.moveaxis(x, -3, -1).astype(np.float32)
