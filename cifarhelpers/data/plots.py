"""Figures of the data: images, class balance, pixel histograms, augmentation steps.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so it works under any
backend, leaks no global state, shows inline when it is a notebook cell's value (or through
``IPython.display.display``) and is saved with :func:`cifarhelpers.files.save_figure` or shown and
saved at once with :func:`cifarhelpers.files.show_figure`. Each family keeps its own figures beside
it (training curves, the LR range test, sweeps, predictions and GradCAM, receptive fields).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from cifarhelpers.plot_style import TEST_COLOR, TRAIN_COLOR


def _show(ax, image: np.ndarray) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 10,
                    title: str | None = None, scale: float = 1.3) -> Figure:
    """Images in a grid with optional per-image titles.

    Args:
        images: (N, H, W, 3) uint8 or float in [0, 1].
        titles: N strings shown above the images.
        ncols: images per row.
    """
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(scale * ncols, scale * nrows + (0.4 if title else 0) + (0.25 * nrows if titles else 0)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i < n:
            _show(ax, images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def plot_class_balance(train_counts: Sequence[int], test_counts: Sequence[int], classes: Sequence[str]) -> Figure:
    """Images per class, train and test side by side (seaborn bar chart)."""
    import pandas as pd
    import seaborn as sns

    frame = pd.DataFrame({
        "class": list(classes) * 2,
        "images": list(train_counts) + list(test_counts),
        "split": ["train"] * len(classes) + ["test"] * len(classes),
    })
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    sns.barplot(frame, x="class", y="images", hue="split", ax=ax, palette=[TRAIN_COLOR, TEST_COLOR])
    for container in ax.containers:
        ax.bar_label(container, fmt="{:,.0f}", fontsize=7)
    ax.set(title="Images per class", xlabel="", ylabel="images", ylim=(0, 1.12 * max(max(train_counts), 1)))
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), title="split", frameon=False)  # beside the bars
    ax.tick_params(axis="x", rotation=30)
    return fig


def plot_channel_histograms(images: np.ndarray, title: str = "Pixel intensity per channel") -> Figure:
    """Histogram of pixel values (0-255) per RGB channel, from (N, H, W, 3) uint8 images."""
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.subplots()
    for c, (name, color) in enumerate(zip("RGB", ("#d62728", "#2ca02c", "#1f77b4"))):
        counts = np.bincount(np.asarray(images)[..., c].ravel(), minlength=256)
        ax.plot(np.arange(256), counts / counts.sum(), color=color, label=name)
    ax.set(xlabel="pixel value (0-255)", ylabel="fraction of pixels", title=title, xlim=(0, 255))
    ax.legend(loc="upper center", ncols=3)  # the spikes at 0 and 255 stay visible at the sides
    ax.grid(alpha=0.3)
    return fig


def plot_augmentation_preview(columns: dict[str, np.ndarray], title: str | None = None) -> Figure:
    """One row per image, one column per step: ``columns`` maps a step name to its (N, H, W, 3)
    images (uint8 or float in [0, 1]), e.g. {"original": ..., "pad + crop": ..., ...}."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    fig = Figure(figsize=(1.6 * len(names), 1.6 * n + 0.5), layout="constrained")
    axes = fig.subplots(n, len(names), squeeze=False)
    for j, name in enumerate(names):
        for i in range(n):
            _show(axes[i, j], columns[name][i])
        axes[0, j].set_title(name, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
