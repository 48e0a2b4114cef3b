"""The LR range test's figure (notebook 03, ``max_lr="find"`` runs): the loss curve, every rule's
suggestion, the LRMAX and LRMIN training uses, and what a reader must not trust (the ends the rules
skip, the stretch past the lowest loss where the loss diverges). Built without pyplot; import it
from :mod:`cifarhelpers.data.plots` as the notebooks do.

Sources: Smith, "Cyclical Learning Rates for Training Neural Networks", 2017 (the test and reading
its curve: the LR where the loss starts to rise is the upper bound); the rules are
:mod:`cifarhelpers.training.lr_suggestions`'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from cifarhelpers.plot_style import GREY, TRAIN_COLOR

if TYPE_CHECKING:
    from .lr_range_result import LRRangeTestResult

#: Marker and colour of each LR suggestion rule in the LR range test plot.
RULE_STYLE = {"valley": ("o", "#2ca02c"), "steepest": ("v", "#d62728"), "min_loss": ("s", "#9467bd")}
LRMAX_COLOR, DIVERGING_COLOR = "black", "#d62728"


def lowest_loss_lr(result: LRRangeTestResult) -> float:
    """The LR of the lowest smoothed loss before the ``skip_end`` last points: past it the loss
    rises, i.e. training at that LR diverges (Smith's upper bound)."""
    losses = np.asarray(result.losses, dtype=float)
    skip_end = result.settings.get("skip_end", 0)
    kept = losses[: len(losses) - skip_end] if 0 < skip_end < len(losses) else losses
    return float(result.lrs[int(np.nanargmin(kept))])


def past_lowest_loss(result: LRRangeTestResult) -> dict[str, float]:
    """The suggestions (``{rule: LR}``) above :func:`lowest_loss_lr`: LRs at which the test's loss
    was already rising. Such a suggestion (often ``steepest``, caught on the fall after a spike)
    is no LRMAX to train at."""
    limit = lowest_loss_lr(result)
    return {rule: lr for rule, lr in result.suggestions.items() if lr > limit * (1 + 1e-9)}


def _line_label(ax, x: float, text: str, color: str) -> None:
    """``text`` written up the vertical line at ``x``, at the top of the axes."""
    ax.text(x, 0.98, text, transform=blended_transform_factory(ax.transData, ax.transAxes), rotation=90,
            ha="right", va="top", fontsize=8, color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})


def plot_lr_range_test(result: LRRangeTestResult, title: str | None = None, *, max_lr: float | None = None,
                       min_lr: float | None = None) -> Figure:
    """Loss against LR (log scale): the whole measured curve, every rule's suggestion marked with
    its value, the LRMAX training uses as a solid line and LRMIN as a dotted one (values in the
    legend, names at the top of the lines), the points the rules skip at each end shaded grey and
    the LRs past the lowest loss shaded red; a suggestion there is flagged in the legend
    (:func:`past_lowest_loss`). The legend sits beside the axes, off the curve. The y axis spans
    the curve before its last skipped points, so the final explosion runs off the top.

    Args:
        result: an :class:`~cifarhelpers.training.lr_range_test.LRRangeTestResult`.
        title: figure title; default names the model (when known), optimizer, batch size and iterations.
        max_lr: the LRMAX training uses when it is not ``result.max_lr`` (e.g. ``cfg.resolved_max_lr``).
        min_lr: the LRMIN training uses when it is not LRMAX / 10 (e.g. ``cfg.resolved_min_lr``).
    """
    s = result.settings
    lrs, losses = np.asarray(result.lrs), np.asarray(result.losses)
    fig = Figure(figsize=(10.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(lrs, losses, color=TRAIN_COLOR, label="smoothed training loss", zorder=2)
    skip_start, skip_end = s.get("skip_start", 0), s.get("skip_end", 0)
    if skip_start:
        ax.axvspan(lrs[0], lrs[min(skip_start, len(lrs) - 1)], color=GREY, alpha=0.12, lw=0,
                   label="ends the rules skip")
    if skip_end:
        ax.axvspan(lrs[max(len(lrs) - skip_end - 1, 0)], lrs[-1], color=GREY, alpha=0.12, lw=0)
    lowest, flagged = lowest_loss_lr(result), past_lowest_loss(result)
    if lowest < lrs[-1]:
        ax.axvspan(lowest, lrs[-1], color=DIVERGING_COLOR, alpha=0.06, lw=0,
                   label=f"past the lowest loss ({lowest:.2e}): diverging")
    for name, lr in result.suggestions.items():
        marker, color = RULE_STYLE.get(name, ("D", "#8c564b"))
        at = lr * 10 if name == "min_loss" else lr  # min_loss suggests the LR of its lowest loss / 10
        i = int(np.argmin(np.abs(np.log(lrs) - np.log(at))))
        used = name == result.rule
        label = f"{name}{' (used)' if used else ''}: {lr:.2e}"
        if name == "min_loss":
            label = f"min_loss: {at:.2e} / 10 = {lr:.2e}" + (" (used)" if used else "")
        if name in flagged:
            label += ", past the lowest loss: do not train at it"
        ax.scatter([lrs[i]], [losses[i]], s=110 if used else 60, marker=marker, color=color, zorder=4,
                   edgecolor="black" if used else "none", label=label)
    source = f"{result.rule}'s suggestion" if max_lr is None else "set for training"
    max_lr = result.max_lr if max_lr is None else max_lr
    min_text = f"LRMIN = LRMAX/10 = {max_lr / 10:.2e}" if min_lr is None else f"LRMIN: {min_lr:.2e}"
    min_lr = max_lr / 10 if min_lr is None else min_lr
    ax.axvline(max_lr, color=LRMAX_COLOR, linestyle="-", linewidth=1.4, zorder=3,
               label=f"LRMAX used: {max_lr:.2e} ({source})")
    ax.axvline(min_lr, color=GREY, linestyle=":", linewidth=1.6, zorder=3, label=min_text)
    _line_label(ax, max_lr, "LRMAX", LRMAX_COLOR)
    _line_label(ax, min_lr, "LRMIN", "#555555")
    ax.set_xscale("log")
    # the y range of the curve before its last (skipped) points: the explosion leaves the chart
    shown = losses[: len(losses) - skip_end] if 0 < skip_end < len(losses) - 1 else losses
    low, high = np.nanmin(shown), np.nanmax(shown)
    ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    model = f"{s['model']}, " if s.get("model") else ""
    ax.set(xlabel="learning rate (log scale)", ylabel="smoothed training loss",
           title=title or f"LR range test: {model}Adam, batch {s.get('batch_size')}, {len(lrs)} iterations")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig
