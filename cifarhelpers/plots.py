"""Figures. Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so it
works under any backend, leaks no global state, shows inline when it is a notebook cell's value
(or through ``IPython.display.display``) and is saved with :func:`cifarhelpers.files.save_figure`.
The figures of a trained model's predictions (confusion matrices, GradCAM) are in
:mod:`cifarhelpers.analysis_plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .files import save_figure
from .receptive_field import receptive_field_growth
from .sweep_results import results_table

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
    _label_best(ax_acc, history, epochs)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def _label_best(ax, history: Sequence[dict], epochs: Sequence[int]) -> None:
    """Write the best test accuracy beside its point, inside the axes: headroom above the highest
    point, and the text aligned away from the left or right edge when the best epoch is first or last."""
    best = max(history, key=lambda h: h["test_accuracy"])
    values = [100 * h[key] for h in history for key in ("train_accuracy", "test_accuracy")]
    low, high = min(values), max(values)
    span = max(high - low, 1.0)
    ax.set_ylim(low - 0.08 * span, high + 0.2 * span)
    if len(epochs) > 1:
        ax.set_xlim(min(epochs) - 0.25, max(epochs) + 0.25)
    ha = "right" if best["epoch"] == max(epochs) and len(epochs) > 1 else (
        "left" if best["epoch"] == min(epochs) and len(epochs) > 1 else "center")
    ax.annotate(f"{100 * best['test_accuracy']:.2f}%", (best["epoch"], 100 * best["test_accuracy"]),
                textcoords="offset points", xytext=(0, 7), ha=ha, va="bottom", color=TEST_COLOR)


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


#: Marker and colour of each LR suggestion rule in the LR range test plot.
RULE_STYLE = {"valley": ("o", "#2ca02c"), "steepest": ("v", "#d62728"), "min_loss": ("s", "#9467bd")}


def plot_lr_range_test(result: LRRangeTestResult, title: str | None = None) -> Figure:
    """Loss against LR (log scale): the whole measured curve, every rule's suggestion marked and
    labelled with its value (the rule used drawn larger, with its LRMIN as a dashed line), and the
    points the rules skip at each end shaded. The y axis spans the curve before its last skipped
    points, so the final explosion runs off the top instead of flattening the rest.

    Args:
        result: an :class:`~cifarhelpers.lr_range_test.LRRangeTestResult`.
        title: figure title; default names the optimizer, batch size and iterations.
    """
    s = result.settings
    lrs, losses = np.asarray(result.lrs), np.asarray(result.losses)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(lrs, losses, color="#1f77b4", label="smoothed training loss", zorder=2)
    skip_start, skip_end = s.get("skip_start", 0), s.get("skip_end", 0)
    if skip_start:
        ax.axvspan(lrs[0], lrs[min(skip_start, len(lrs) - 1)], color="#7f7f7f", alpha=0.12, lw=0,
                   label="ends the rules skip")
    if skip_end:
        ax.axvspan(lrs[max(len(lrs) - skip_end - 1, 0)], lrs[-1], color="#7f7f7f", alpha=0.12, lw=0)
    for name, lr in result.suggestions.items():
        marker, color = RULE_STYLE.get(name, ("D", "#8c564b"))
        at = lr * 10 if name == "min_loss" else lr  # min_loss suggests the LR of its lowest loss / 10
        i = int(np.argmin(np.abs(np.log(lrs) - np.log(at))))
        used = name == result.rule
        label = f"{name}{' (used)' if used else ''}: {lr:.2e}"
        if name == "min_loss":
            label = f"min_loss: {at:.2e} / 10 = {lr:.2e}" + (" (used)" if used else "")
        ax.scatter([lrs[i]], [losses[i]], s=110 if used else 60, marker=marker, color=color, zorder=4,
                   edgecolor="black" if used else "none", label=label)
    ax.axvline(result.min_lr, color="#7f7f7f", linestyle="--", label=f"LRMIN = LRMAX/10 = {result.min_lr:.2e}")
    ax.set_xscale("log")
    # the y range of the curve before its last (skipped) points: the explosion leaves the chart
    shown = losses[: len(losses) - skip_end] if 0 < skip_end < len(losses) - 1 else losses
    low, high = np.nanmin(shown), np.nanmax(shown)
    ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    ax.set(xlabel="learning rate (log scale)", ylabel="smoothed training loss",
           title=title or f"LR range test: Adam, batch {s.get('batch_size')}, {len(lrs)} iterations")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return fig


def plot_steps(steps: Sequence[dict], steps_per_epoch: int | None = None, title: str | None = None) -> Figure:
    """Per-step training loss and LR, one above the other, against the epoch (fractional).

    Args:
        steps: rows of a run's ``steps.csv`` / ``RunFolder.steps`` (``global_step``, ``loss``, ``lr``).
        steps_per_epoch: steps per epoch, to put the x axis in epochs; None: the largest ``step``.
        title: figure title.
    """
    steps_per_epoch = steps_per_epoch or max(r["step"] for r in steps)
    x = np.array([r["global_step"] for r in steps]) / steps_per_epoch
    loss = np.array([r["loss"] for r in steps], dtype=float)
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax_loss, ax_lr = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    ax_loss.plot(x, loss, color=TRAIN_COLOR, alpha=0.35, lw=0.8, label="loss per step")
    window = max(1, min(len(loss) // 20, steps_per_epoch))
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(x[window - 1:], smooth, color=TRAIN_COLOR, lw=1.8, label=f"mean of {window} steps")
    ax_loss.set(ylabel="training loss")
    ax_loss.legend(loc="upper right")
    ax_lr.plot(x, [r["lr"] for r in steps], color=TEST_COLOR)
    ax_lr.set(xlabel="epoch", ylabel="learning rate")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
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
    ax.axhline(image_size, color="#7f7f7f", linestyle="--", label=f"image side ({image_size} px)")
    ax.set(xlabel="convolution / pooling layer (forward order)", ylabel="receptive field (pixels)",
           title="Receptive field growth, up to global pooling")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_sweep(trials: Sequence[dict], x: str, title: str | None = None,
               markers: dict[str, float] | None = None) -> Figure:
    """A sweep's test accuracy (%) against the swept value ``x``: one point per seed, a line through
    each config's mean (as in :func:`~cifarhelpers.sweep_results.results_table`), one colour per
    combination of the other swept fields; diverged and failed trials are crosses at 0%.

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
    means: dict[str, list[tuple[float, float]]] = {}  # each config's mean over its seeds, by group
    for row in results_table(trials, [*others, x]):
        if row["test_accuracy_mean"] is not None:
            means.setdefault(", ".join(f"{k}={row[k]}" for k in others), []).append(
                (position(row[x]), 100 * row["test_accuracy_mean"]))
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    for k, (label, members) in enumerate(groups.items()):
        done = [t for t in members if t["status"] == "completed" and t.get("final_test_accuracy") is not None]
        color = colors[k % len(colors)]
        ax.scatter([position(t["params"][x]) for t in done], [100 * t["final_test_accuracy"] for t in done],
                   color=color, alpha=0.8, zorder=3, label=label or "one point per seed")
        line = sorted(means.get(label, []))
        ax.plot([pos for pos, _ in line], [mean for _, mean in line], "-", color=color, alpha=0.6)
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
