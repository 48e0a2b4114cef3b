"""Figures. Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so it
works under any backend, leaks no global state, shows inline when it is a notebook cell's value
(or through ``IPython.display.display``) and is saved with :func:`cifarhelpers.files.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .files import save_figure

if TYPE_CHECKING:
    from .lr_range_test import LRRangeTestResult
TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#d62728"


def plot_curves(history: Sequence[dict], title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, train and test, side by side.

    Args:
        history: per-epoch dicts with ``epoch`` (1-based), ``train_loss``, ``test_loss``,
            ``train_accuracy`` and ``test_accuracy`` (fractions), as in ``metrics.json``.
        title: figure title.
    """
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", color=TRAIN_COLOR, label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], "o-", color=TEST_COLOR, label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", color=TRAIN_COLOR, label="train")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], "o-", color=TEST_COLOR, label="test")
    best = max(history, key=lambda h: h["test_accuracy"])
    ax_acc.annotate(f"{100 * best['test_accuracy']:.2f}%", (best["epoch"], 100 * best["test_accuracy"]),
                    textcoords="offset points", xytext=(0, 8), ha="center", color=TEST_COLOR)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def plot_lr_schedule(lrs: Sequence[float], steps_per_epoch: int, title: str = "LR schedule") -> Figure:
    """LR per optimizer step, with the peak marked. Step ``i`` (0-based) is drawn at the epoch it
    ends, ``(i + 1) / steps_per_epoch``, so the last step of epoch 5 sits at 5.

    Args:
        lrs: LR of every step (e.g. ``cifarhelpers.recipes.lr_schedule``).
        steps_per_epoch: steps per epoch, to put the x axis in epochs.
    """
    lrs = np.asarray(lrs, dtype=float)
    x = (np.arange(len(lrs)) + 1) / steps_per_epoch  # step i ends at (i + 1) / steps_per_epoch epochs
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(x, lrs, color=TRAIN_COLOR)
    peak = int(np.argmax(lrs))
    ax.plot(x[peak], lrs[peak], "o", color=TEST_COLOR)
    ax.annotate(f"peak {lrs[peak]:.3g} at epoch {x[peak]:.2f}", (x[peak], lrs[peak]),
                textcoords="offset points", xytext=(8, -4), color=TEST_COLOR)
    ax.set(xlabel="epoch", ylabel="learning rate", title=title)
    ax.grid(alpha=0.3)
    return fig


def plot_lr_range_test(result: LRRangeTestResult, title: str | None = None) -> Figure:
    """Loss against LR (log scale) with the suggested LR (steepest descent) and LRMIN marked."""
    s = result.settings
    skip_start, skip_end = s.get("skip_start", 10), s.get("skip_end", 5)
    end = len(result.lrs) - skip_end if skip_end else len(result.lrs)
    lrs, losses = result.lrs[skip_start:end], result.losses[skip_start:end]
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(lrs, losses, color="#1f77b4", label="smoothed training loss")
    i = int(np.argmin(np.abs(np.asarray(lrs) - result.suggested_lr)))
    ax.scatter([lrs[i]], [losses[i]], s=75, color="#d62728", zorder=3,
               label=f"steepest descent: LRMAX = {result.max_lr:.2e}")
    ax.axvline(result.min_lr, color="#7f7f7f", linestyle="--", label=f"LRMIN = LRMAX/10 = {result.min_lr:.2e}")
    ax.set_xscale("log")
    ax.set(xlabel="learning rate (log scale)", ylabel="loss",
           title=title or f"LR range test: Adam, batch {s.get('batch_size')}, {len(result.lrs)} iterations")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


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
        ax.bar_label(container, fontsize=7)
    ax.set(title="Images per class", xlabel="", ylabel="images", ylim=(0, 1.2 * max(max(train_counts), 1)))
    ax.legend(title="split", ncols=2, loc="upper right")
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
    ax.legend()
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


def plot_confusion_matrix(matrix: np.ndarray, classes: Sequence[str], normalize: bool = False) -> Figure:
    """Confusion matrix heat map (seaborn): rows true class, columns predicted class.

    Args:
        matrix: (C, C) counts.
        normalize: show each row as fractions of its true class (the diagonal is per-class recall).
    """
    import seaborn as sns

    values = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(values, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", xticklabels=classes,
                yticklabels=classes, ax=ax, cbar_kws={"label": "fraction of true class" if normalize else "images"})
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"Confusion matrix ({int(matrix.sum()):,} test images)")
    ax.tick_params(axis="x", rotation=45)
    return fig


def plot_per_class_metrics(rows: Sequence[dict]) -> Figure:
    """Accuracy, precision and recall per class (rows from ``analysis.per_class_metrics``), in percent."""
    classes = [r["class"] for r in rows]
    x = np.arange(len(classes))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    for k, (key, color) in enumerate((("accuracy", TRAIN_COLOR), ("precision", "#2ca02c"), ("recall", TEST_COLOR))):
        if key == "recall":  # recall equals per-class accuracy; drawn once
            continue
        ax.bar(x + (k - 0.5) * 0.38, [100 * r[key] for r in rows], width=0.38, color=color,
               label=key if key != "accuracy" else "accuracy (= recall)")
    ax.set_xticks(x, classes, rotation=30)
    ax.set(ylabel="percent", ylim=(0, 105), title="Per-class test metrics")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return fig


def plot_gradcam_grid(images: np.ndarray, overlays: np.ndarray, titles: Sequence[str] | None = None,
                      pairs_per_row: int = 4, title: str | None = None) -> Figure:
    """Each image beside its GradCAM overlay, ``pairs_per_row`` pairs per row.

    Args:
        images: (N, H, W, 3) uint8 or float in [0, 1].
        overlays: (N, H, W, 3) uint8, e.g. from :func:`cifarhelpers.analysis.overlay_cams`.
        titles: N captions, shown above each image (its overlay is captioned "GradCAM").
        pairs_per_row: image + overlay pairs per row, >= 1.

    Raises:
        ValueError: ``images`` and ``overlays`` differ in number.
    """
    if len(images) != len(overlays):
        raise ValueError(f"{len(images)} images but {len(overlays)} overlays: give one overlay per image")
    as_float = [np.asarray(a, np.float32) / 255.0 if np.asarray(a).dtype == np.uint8 else np.asarray(a, np.float32)
                for a in (images, overlays)]
    interleaved = np.stack([x for pair in zip(*as_float) for x in pair]) if len(images) else np.zeros((0, 1, 1, 3))
    captions = None
    if titles is not None:
        captions = [c for t in titles for c in (t, "GradCAM")]
    return plot_image_grid(interleaved, captions, ncols=2 * pairs_per_row, title=title, scale=1.5)


def plot_receptive_fields(tables: dict[str, Sequence], image_size: int = 32) -> Figure:
    """Receptive field along each model's layers, one line per model.

    Point ``i`` is the largest receptive field (pixels) reached by the ``i``-th convolution or
    pooling layer in forward order: a projection shortcut, a parallel branch with a smaller field,
    does not lower it. Global pooling (which trivially sees everything) is left out, as in
    :func:`cifarhelpers.receptive_field.output_receptive_field`.

    Args:
        tables: model name -> rows of :func:`cifarhelpers.receptive_field.receptive_field_table`.
        image_size: side of the input image in pixels, drawn as a dashed line.
    """
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for name, rows in tables.items():
        fields = np.maximum.accumulate([r.rf_out for r in rows if r.op != "global pool"])
        ax.plot(np.arange(1, len(fields) + 1), fields, "o-", markersize=3, label=f"{name} ({fields[-1]} px)")
    ax.axhline(image_size, color="#7f7f7f", linestyle="--", label=f"image side ({image_size} px)")
    ax.set(xlabel="convolution / pooling layer (forward order)", ylabel="receptive field (pixels)",
           title="Receptive field growth")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_sweep(trials: Sequence[dict], x: str, title: str | None = None,
               markers: dict[str, float] | None = None) -> Figure:
    """A sweep's test accuracy (%) against the swept value ``x``: one point per seed, a line through
    each config's mean, one colour per combination of the other swept fields; diverged and failed
    trials are crosses at 0%.

    Args:
        trials: trial records as in ``sweep.json`` (``params``, ``status``, ``final_test_accuracy``
            as a fraction).
        x: the swept field on the x axis. Numbers spanning 10x or more get a log axis; other
            values (model, recipe names) are categories.
        title: figure title.
        markers: vertical lines to draw, ``{label: x value}`` (e.g. the LR range test's suggestion).
    """
    values = [t["params"][x] for t in trials]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    categories = list(dict.fromkeys(map(str, values)))
    position = (lambda v: v) if numeric else (lambda v: categories.index(str(v)))
    others = [k for k in trials[0]["params"] if k not in (x, "seed")] if trials else []
    groups: dict[str, list[dict]] = {}
    for t in trials:
        groups.setdefault(", ".join(f"{k}={t['params'][k]}" for k in others), []).append(t)
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    for k, (label, members) in enumerate(groups.items()):
        done = [t for t in members if t["status"] == "completed" and t.get("final_test_accuracy") is not None]
        color = colors[k % len(colors)]
        ax.scatter([position(t["params"][x]) for t in done], [100 * t["final_test_accuracy"] for t in done],
                   color=color, alpha=0.8, zorder=3, label=label or "one point per seed")
        means: dict[float, list[float]] = {}
        for t in done:
            means.setdefault(position(t["params"][x]), []).append(100 * t["final_test_accuracy"])
        xs = sorted(means)
        ax.plot(xs, [sum(means[v]) / len(means[v]) for v in xs], "-", color=color, alpha=0.6)
    bad = [t for t in trials if t["status"] in ("diverged", "failed")]
    if bad:
        ax.scatter([position(t["params"][x]) for t in bad], [0.0] * len(bad), marker="x", s=60, color=TEST_COLOR,
                   zorder=4, label=f"diverged or failed ({len(bad)}), drawn at 0%")
    for k, (label, value) in enumerate((markers or {}).items()):
        ax.axvline(value, linestyle="--", color=colors[(k + len(groups)) % len(colors)], label=f"{label}: {value:.3g}")
    positive = [v for v in values if numeric and v > 0]
    if numeric and positive and len(positive) == len(values) and max(positive) >= 10 * min(positive):
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    ax.set(xlabel=x + (" (log scale)" if ax.get_xscale() == "log" else ""), ylabel="final test accuracy (%)",
           title=title or f"Sweep over {x}: each seed's test accuracy (points), their mean (line)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
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
