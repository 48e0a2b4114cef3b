"""A sweep's figure (``results.png`` in the sweep folder, notebook 07): test accuracy against the
swept value, one point per seed, each config's mean, the best mean and what it was trained on, so
that even a sweep of two configs says what it found. Built without pyplot; import it from
:mod:`cifarhelpers.data.plots` as the notebooks do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
from matplotlib.figure import Figure

from cifarhelpers.data import SPLIT_SIZES
from cifarhelpers.plot_style import GREY, TEST_COLOR

from .results import best_row, results_table

if TYPE_CHECKING:
    from cifarhelpers.training import TrainConfig

#: How the swept fields are named on the x axis (others: the field name itself).
AXIS_NAMES = {
    "max_lr": "LRMAX = max_lr, the schedule's peak learning rate",
    "min_lr": "LRMIN = min_lr, OneCycle's start learning rate",
    "weight_decay": "weight decay = weight_decay",
    "label_smoothing": "label smoothing = label_smoothing",
    "batch_size": "batch size, images per step",
    "epochs": "epochs",
    "pct_start": "pct_start, the fraction of steps rising to LRMAX",
}
#: Accuracy of guessing one of CIFAR-10's 10 classes, percent.
CHANCE = 10.0
#: When every completed trial is above this accuracy (percent) and none diverged or failed, the y
#: axis spans the accuracies only (no 0, no chance line), so that close configs stay apart.
ZOOM_ABOVE = 50.0
#: Mean values are written beside their points when there are at most this many.
MAX_LABELLED = 12


def _title(x: str, trials: Sequence[dict], config: TrainConfig | None) -> str:
    """What the trials share: the base config's model, recipe, epochs, training images and batch,
    leaving out the fields the sweep varies; without a config, the epochs the trials ran."""
    what = "LR sweep" if x == "max_lr" else f"Sweep over {x}"
    swept = set(trials[0]["params"]) if trials else set()
    if config is None:
        epochs = {t.get("epochs") for t in trials if t.get("status") == "completed"}
        return what + (f", {epochs.pop()} epochs" if len(epochs) == 1 else "")
    images = config.train_subset or SPLIT_SIZES["train"]
    parts = {"model": config.model, "recipe": config.recipe, "epochs": f"{config.epochs} epochs",
             "train_subset": f"{images:,} training images", "batch_size": f"batch {config.batch_size}"}
    return f"{what}: " + ", ".join(text for name, text in parts.items() if name not in swept)


def plot_sweep(trials: Sequence[dict], x: str, title: str | None = None,
               markers: dict[str, float] | None = None, *, config: TrainConfig | None = None) -> Figure:
    """A sweep's final test accuracy (percent) against the swept value ``x``: one point per seed, a
    line through each config's mean (as in :func:`~cifarhelpers.sweep.results.results_table`) with
    the mean written beside it, one colour per combination of the other swept fields, the best mean
    starred (:func:`~cifarhelpers.sweep.results.best_row`); diverged and failed trials are crosses at
    0%. The y axis starts at 0 with chance (10%) dotted, unless every trial completed above
    :data:`ZOOM_ABOVE` percent: then it spans the accuracies. The legend sits beside the axes.

    Args:
        trials: trial records as in ``sweep.json`` (``params``, ``status``, ``final_test_accuracy``
            as a fraction, ``epochs``).
        x: the swept field on the x axis. Numbers spanning 10x or more get a log axis; other
            values (model, recipe names) are categories.
        title: figure title; default names what the sweep trained (from ``config``).
        markers: vertical lines to draw, ``{label: x value}`` (e.g. the LR range test's suggestion).
        config: the config the trials share (``SweepConfig.base``): its model, recipe, epochs,
            training images and batch go into the title, its test images onto the y axis.
    """
    values = [t["params"][x] for t in trials]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    categories = list(dict.fromkeys(map(str, values)))
    position = (lambda v: v) if numeric else (lambda v: categories.index(str(v)))
    others = [k for k in trials[0]["params"] if k not in (x, "seed")] if trials else []
    groups: dict[str, list[dict]] = {}
    for t in trials:
        groups.setdefault(", ".join(f"{k}={t['params'][k]}" for k in others), []).append(t)
    table = results_table(trials, [*others, x])
    means: dict[str, list[tuple[float, float]]] = {}  # each config's mean over its seeds, by group
    for row in table:
        if row["test_accuracy_mean"] is not None:
            means.setdefault(", ".join(f"{k}={row[k]}" for k in others), []).append(
                (position(row[x]), 100 * row["test_accuracy_mean"]))
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    labelled = sum(len(m) for m in means.values()) <= MAX_LABELLED
    for k, (label, members) in enumerate(groups.items()):
        done = [t for t in members if t["status"] == "completed" and t.get("final_test_accuracy") is not None]
        color = colors[k % len(colors)]
        ax.scatter([position(t["params"][x]) for t in done], [100 * t["final_test_accuracy"] for t in done],
                   color=color, alpha=0.8, zorder=3, label=label or "each seed's test accuracy")
        line = sorted(means.get(label, []))
        ax.plot([pos for pos, _ in line], [mean for _, mean in line], "_-", color=color, alpha=0.7,
                markersize=16, markeredgewidth=2, label=None if label else "mean over seeds")
        for pos, mean in line if labelled else ():  # above the config's highest seed, off the line
            seeds = [100 * t["final_test_accuracy"] for t in done if position(t["params"][x]) == pos]
            ax.annotate(f"{'mean ' if len(seeds) > 1 else ''}{mean:.1f}%", (pos, max(seeds + [mean])), textcoords="offset points", xytext=(0, 9), ha="center",
                        va="bottom", fontsize=8, color=color, zorder=6,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})
    best = best_row(table)
    if best is not None:
        where = (f"{best[x]:.3g}" if numeric else str(best[x])) + "".join(f", {k}={best[k]}" for k in others)
        ax.plot([position(best[x])], [100 * best["test_accuracy_mean"]], "*", markersize=16, color="gold",
                markeredgecolor="black", zorder=5,
                label=f"best mean: {100 * best['test_accuracy_mean']:.1f}% at {x} = {where}")
    bad = [t for t in trials if t["status"] in ("diverged", "failed")]
    if bad:
        ax.scatter([position(t["params"][x]) for t in bad], [0.0] * len(bad), marker="x", s=60, color=TEST_COLOR,
                   zorder=4, label=f"diverged or failed ({len(bad)}), drawn at 0%")
    accuracies = [100 * t["final_test_accuracy"] for t in trials
                  if t["status"] == "completed" and t.get("final_test_accuracy") is not None]
    if bad or not accuracies or min(accuracies) < ZOOM_ABOVE:  # from 0%, chance in view
        ylim = (0.0, min(100.0, 1.15 * max(accuracies + [CHANCE]) + 1))
        ax.axhline(CHANCE, color=GREY, linestyle=":", label=f"chance (1 of 10 classes): {CHANCE:.0f}%")
    else:  # every trial far above chance: the differences between configs fill the axes
        pad = max(0.25 * (max(accuracies) - min(accuracies)), 0.5)
        ylim = (max(0.0, min(accuracies) - pad), min(100.0, max(accuracies) + 2 * pad))
    for k, (label, value) in enumerate((markers or {}).items()):
        ax.axvline(value, linestyle="--", color=colors[(k + len(groups)) % len(colors)], label=f"{label}: {value:.3g}")
    positive = [v for v in values if numeric and v > 0]
    if numeric and positive and len(positive) == len(values) and max(positive) >= 10 * min(positive):
        ax.set_xscale("log")
        if not (accuracies or bad or markers):  # no trial ended yet: no data to scale the log axis from
            ax.set_xlim(min(positive) / 2, 2 * max(positive))
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    tested = f" of {config.test_subset or SPLIT_SIZES['test']:,} test images" if config is not None else ""
    ax.set(xlabel=AXIS_NAMES.get(x, x) + (" (log scale)" if ax.get_xscale() == "log" else ""),
           ylabel=f"final test accuracy (%{tested})", ylim=ylim,
           title=title or _title(x, trials, config) + "\neach seed's test accuracy (points), mean per config (line)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig
