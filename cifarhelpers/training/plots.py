"""Figures of one training run: loss and accuracy per epoch (:func:`plot_curves`), the LR of every
step before training (:func:`plot_lr_schedule`) and the loss and LR of every step after it
(:func:`plot_steps`). Each returns a ``matplotlib.figure.Figure`` built without pyplot; import them
from :mod:`cifarhelpers.data.plots` as the notebooks do.

The loss is the run's criterion (:func:`cifarhelpers.training.recipes.build_criterion`): cross-entropy with
the config's label smoothing, on train and test alike. With smoothing ``e`` over ``K`` classes its
lowest possible value is the entropy of the smoothed target, not 0 (:func:`loss_floor`): 0.87 for
``e = 0.2`` and ``K = 10``, so a curve levelling off near it is not "stuck".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from cifarhelpers.plot_style import GREY, TEST_COLOR, TRAIN_COLOR

#: CIFAR-10's classes, for the label-smoothing floor.
NUM_CLASSES = 10


def loss_floor(label_smoothing: float, num_classes: int = NUM_CLASSES) -> float:
    """The lowest mean cross-entropy a model can reach against targets smoothed by
    ``label_smoothing`` (PyTorch's ``CrossEntropyLoss(label_smoothing=e)``: the true class gets
    ``1 - e + e/K``, every other ``e/K``): the entropy of that target, in nats. 0 without smoothing.

    Raises:
        ValueError: ``label_smoothing`` outside [0, 1) or ``num_classes`` < 2.
    """
    if not 0 <= label_smoothing < 1 or num_classes < 2:
        raise ValueError(f"label_smoothing must be in [0, 1) and num_classes >= 2, got {label_smoothing!r}, "
                         f"{num_classes!r}")
    if label_smoothing == 0:
        return 0.0
    true, other = 1 - label_smoothing + label_smoothing / num_classes, label_smoothing / num_classes
    return -(true * math.log(true) + (num_classes - 1) * other * math.log(other))


def loss_label(label_smoothing: float | None) -> str:
    """The loss axis' name: ``"cross-entropy, label smoothing 0.2"``, ``"cross-entropy, no label
    smoothing"``, or, when the smoothing is not known (None), ``"cross-entropy (label smoothing
    not given)"``."""
    if label_smoothing is None:
        return "cross-entropy (label smoothing not given)"
    return f"cross-entropy, label smoothing {label_smoothing:g}" if label_smoothing else \
        "cross-entropy, no label smoothing"


def _epoch_limits(epochs: Sequence[float]) -> tuple[float, float]:
    """x limits that keep the first and last epoch's markers whole: half an epoch, or 4% of the
    span when that is more, beyond each end."""
    low, high = min(epochs), max(epochs)
    pad = max(0.5, 0.04 * (high - low))
    return low - pad, high + pad


def plot_curves(history: Sequence[dict], title: str | None = None, *,
                label_smoothing: float | None = None) -> Figure:
    """Loss and accuracy per epoch, train and test, side by side; every point drawn whole.

    Args:
        history: per-epoch dicts with ``epoch`` (1-based), ``train_loss``, ``test_loss``,
            ``train_accuracy`` and ``test_accuracy`` (fractions; drawn in percent), as in ``metrics.json``.
        title: figure title.
        label_smoothing: the run's ``TrainConfig.label_smoothing``: named on the loss axis, and when
            above 0 its floor (:func:`loss_floor`) drawn as a dotted line. None: not known.
    """
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", color=TRAIN_COLOR, label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], "o-", color=TEST_COLOR, label="test")
    if label_smoothing:
        floor = loss_floor(label_smoothing)
        ax_loss.axhline(floor, color=GREY, linestyle=":", label=f"lowest possible with this smoothing: {floor:.2f}")
    ax_loss.set(xlabel="epoch", ylabel=f"loss: {loss_label(label_smoothing)}", title="Loss")
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", color=TRAIN_COLOR, label="train")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], "o-", color=TEST_COLOR, label="test")
    _label_best(ax_acc, history, epochs)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlim(*_epoch_limits(epochs))
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def _label_best(ax, history: Sequence[dict], epochs: Sequence[int]) -> None:
    """Write the best test accuracy beside its point, inside the axes: on the side away from that
    epoch's train accuracy (below the point when train is above it, as late in training), with
    headroom on that side, and aligned away from the left or right edge at the first or last epoch."""
    best = max(history, key=lambda h: h["test_accuracy"])
    values = [100 * h[key] for h in history for key in ("train_accuracy", "test_accuracy")]
    low, high = min(values), max(values)
    span = max(high - low, 1.0)
    below = best["train_accuracy"] > best["test_accuracy"]
    ax.set_ylim(low - (0.2 if below else 0.08) * span, high + (0.08 if below else 0.2) * span)
    ha = "right" if best["epoch"] == max(epochs) and len(epochs) > 1 else (
        "left" if best["epoch"] == min(epochs) and len(epochs) > 1 else "center")
    ax.annotate(f"{100 * best['test_accuracy']:.2f}%", (best["epoch"], 100 * best["test_accuracy"]),
                textcoords="offset points", xytext=(0, -8 if below else 7), ha=ha, va="top" if below else "bottom",
                color=TEST_COLOR)


def plot_lr_schedule(lrs: Sequence[float], steps_per_epoch: int, title: str = "LR schedule") -> Figure:
    """LR per optimizer step with its start, peak and end marked and their values in the legend
    (beside the axes, never over the line). Step ``i`` (0-based) is drawn at the epoch it ends,
    ``(i + 1) / steps_per_epoch``, so the last step of epoch 5 sits at 5. For OneCycle the start is
    LRMIN, the peak LRMAX and the end ``TrainConfig.resolved_end_lr``: the values drawn are the
    schedule's own, so a schedule that does not do what its config says shows it.

    Args:
        lrs: LR of every step (e.g. ``cifarhelpers.training.recipes.lr_schedule``), at least one.
        steps_per_epoch: steps per epoch, to put the x axis in epochs.
        title: figure title.

    Raises:
        ValueError: ``lrs`` is empty.
    """
    lrs = np.asarray(lrs, dtype=float)
    if lrs.size == 0:
        raise ValueError("lrs is empty: give the LR of at least one step (cifarhelpers.training.recipes.lr_schedule)")
    x = (np.arange(len(lrs)) + 1) / steps_per_epoch  # step i ends at (i + 1) / steps_per_epoch epochs
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(x, lrs, color=TRAIN_COLOR, label="LR of each step")
    peak = int(np.argmax(lrs))
    for i, name, marker, color in ((0, "start", "o", GREY), (peak, "peak", "^", TEST_COLOR),
                                   (len(lrs) - 1, "end", "s", "black")):
        ax.plot(x[i], lrs[i], marker, color=color, markersize=7, zorder=3, clip_on=False,  # whole at LR 0
                label=f"{name}: {lrs[i]:.2e} (epoch {x[i]:.2f})")
    ax.set(xlabel="epoch", ylabel="learning rate", title=title, ylim=(0, 1.08 * lrs.max()))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def plot_steps(steps: Sequence[dict], steps_per_epoch: int | None = None, title: str | None = None, *,
               label_smoothing: float | None = None) -> Figure:
    """Per-step training loss and LR, one above the other, against the epoch (fractional).

    Args:
        steps: rows of a run's ``steps.csv`` / ``RunFolder.steps`` (``global_step``, ``loss``, ``lr``).
        steps_per_epoch: steps per epoch, to put the x axis in epochs; None: the largest ``step``.
        title: figure title.
        label_smoothing: the run's label smoothing, named on the loss axis (None: not known).
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
    ax_loss.set(ylabel=f"training loss\n({loss_label(label_smoothing)})")
    ax_loss.legend(loc="upper right")
    ax_lr.plot(x, [r["lr"] for r in steps], color=TEST_COLOR)
    ax_lr.set(xlabel="epoch", ylabel="learning rate")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig
