"""Figures. Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so it
works under any backend, leaks no global state, shows inline when it is a notebook cell's value
(or through ``IPython.display.display``) and is saved with :func:`cifarhelpers.files.save_figure`
or shown and saved at once with :func:`show_figure`.

Here: figures of the data (images, class balance, pixel histograms, augmentation steps) and of the
models' receptive fields. Importable from here too, so notebooks need one import line:

* :mod:`cifarhelpers.training_plots`: ``plot_curves``, ``plot_lr_schedule``, ``plot_steps``;
* :mod:`cifarhelpers.lr_plots`: ``plot_lr_range_test``;
* :mod:`cifarhelpers.sweep_plots`: ``plot_sweep``.

The figures of a trained model's predictions (confusion matrices, GradCAM) are in
:mod:`cifarhelpers.analysis_plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .files import save_figure
from .lr_plots import RULE_STYLE, plot_lr_range_test
from .plot_style import GREY, TEST_COLOR, TRAIN_COLOR
from .receptive_field import receptive_field_growth
from .sweep_plots import plot_sweep
from .training_plots import plot_curves, plot_lr_schedule, plot_steps


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


def plot_receptive_fields(tables: dict[str, Sequence], image_size: int = 32) -> Figure:
    """Receptive field along each model's layers, one line per model.

    Point ``i`` is :func:`cifarhelpers.receptive_field.receptive_field_growth`'s entry ``i``: the
    largest receptive field (pixels) reached by the ``i``-th convolution or pooling layer in forward
    order, up to the feature map entering global pooling; the legend's number is its last value,
    :func:`~cifarhelpers.receptive_field.output_receptive_field`, as in the notebook's table.

    Args:
        tables: model name -> rows of :func:`cifarhelpers.receptive_field.receptive_field_table`.
        image_size: side of the input image in pixels, drawn as a dashed line.
    """
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for name, rows in tables.items():
        fields = receptive_field_growth(rows)
        ax.plot(np.arange(1, len(fields) + 1), fields, "o-", markersize=3, label=f"{name} ({fields[-1]} px)")
    ax.axhline(image_size, color=GREY, linestyle="--", label=f"image side ({image_size} px)")
    ax.set(xlabel="convolution / pooling layer (forward order)", ylabel="receptive field (pixels)",
           title="Receptive field growth, up to global pooling")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def show_figure(fig: Figure, path: str | Path, dpi: int = 120) -> None:
    """Save ``fig`` as PNG at ``path`` (atomically, via :func:`cifarhelpers.files.save_figure`) and
    show that PNG inline in a notebook (``IPython.display``; nothing is shown outside IPython).

    Returns None, so a notebook cell ending with it shows the figure and nothing else.

    Raises:
        RunWriteError: the file could not be written.
    """
    path = save_figure(fig, Path(path), dpi=dpi)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python without IPython: saving is all there is to do
        return
    if get_ipython() is not None:
        display(Image(data=path.read_bytes(), format="png"))


__all__ = ["RULE_STYLE", "TEST_COLOR", "TRAIN_COLOR", "plot_augmentation_preview", "plot_channel_histograms",
           "plot_class_balance", "plot_curves", "plot_image_grid", "plot_lr_range_test", "plot_lr_schedule",
           "plot_receptive_fields", "plot_steps", "plot_sweep", "show_figure"]
