"""Statistics of a set of images and labels: per-channel mean, std, variance, min and max on the
[0, 1] scale (what normalization and the cutout fill colour are built from), and class counts.

Example::

    stats = dataset_statistics(data.x_train)     # ChannelStats, each field a tuple (R, G, B)
    stats.mean, stats.std                        # e.g. (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)
    print(statistics_table({"train": stats}))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .cifar10 import CLASSES, CIFAR10Data


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel statistics of a set of RGB images on the [0, 1] scale (channel order R, G, B).

    ``std`` and ``var`` are population figures (ddof=0) over all pixels of all images, the
    convention behind the widely quoted CIFAR-10 train std [0.2470, 0.2435, 0.2616].
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min: tuple[float, float, float]
    max: tuple[float, float, float]
    var: tuple[float, float, float]
    num_images: int

    def to_dict(self) -> dict:
        return asdict(self)


def dataset_statistics(images: np.ndarray) -> ChannelStats:
    """Per-channel mean, std, min, max and variance of images, on the [0, 1] scale.

    Args:
        images: (N, H, W, C) array, either uint8 in [0, 255] (divided by 255) or floating point
            already on [0, 1]. N >= 1.

    Returns:
        :class:`ChannelStats`, each field a tuple of C Python floats (computed in float64).

    Raises:
        ValueError: ``images`` is not 4-D (N, H, W, C) or is empty.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"dataset_statistics expects a non-empty (N, H, W, C) array, got shape {images.shape}; "
            "pass e.g. data.x_train (N, 32, 32, 3) uint8"
        )
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    lo = np.full(channels, np.inf)
    hi = np.full(channels, -np.inf)
    for start in range(0, len(images), 4096):  # chunks keep float64 copies small
        chunk = images[start : start + 4096].reshape(-1, channels).astype(np.float64) / scale
        total += chunk.sum(axis=0)
        total_sq += (chunk * chunk).sum(axis=0)
        lo = np.minimum(lo, chunk.min(axis=0))
        hi = np.maximum(hi, chunk.max(axis=0))
    count = images.size // channels
    mean = total / count
    var = np.maximum(total_sq / count - mean * mean, 0.0)

    def as_tuple(a: np.ndarray) -> tuple:
        return tuple(float(v) for v in a)

    return ChannelStats(
        mean=as_tuple(mean), std=as_tuple(np.sqrt(var)), min=as_tuple(lo), max=as_tuple(hi),
        var=as_tuple(var), num_images=int(images.shape[0]),
    )


def class_counts(labels: np.ndarray, num_classes: int = len(CLASSES)) -> list[int]:
    """Number of images per class: ``counts[i]`` is the number of labels equal to ``i``."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).tolist()


def statistics_table(named: dict[str, ChannelStats], digits: int = 4) -> str:
    """Aligned text table of per-channel statistics, one row per (set, statistic).

    Args:
        named: e.g. ``{"train": dataset_statistics(x_train), "test": dataset_statistics(x_test)}``.
        digits: decimals shown (values on the [0, 1] scale).
    """
    lines = [f"{'set':<6}{'statistic':<10}{'R':>9}{'G':>9}{'B':>9}"]
    for name, stats in named.items():
        for key in ("mean", "std", "var", "min", "max"):
            values = "".join(f"{v:>9.{digits}f}" for v in getattr(stats, key))
            lines.append(f"{name:<6}{key:<10}{values}")
    return "\n".join(lines)


def class_counts_table(data: CIFAR10Data) -> str:
    """Images per class of both splits as aligned text (one row per class, then the totals)."""
    train, test = class_counts(data.y_train), class_counts(data.y_test)
    lines = [f"{'label':<6}{'class':<12}{'train':>8}{'test':>8}"]
    lines += [f"{i:<6}{name:<12}{a:>8,}{b:>8,}" for i, (name, a, b) in enumerate(zip(data.classes, train, test))]
    lines.append(f"{'':<6}{'total':<12}{sum(train):>8,}{sum(test):>8,}")
    return "\n".join(lines)
