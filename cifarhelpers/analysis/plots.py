"""Figures of a trained model's predictions (notebook 05): confusion matrices, per-class metrics and
GradCAM overlays. Like :mod:`cifarhelpers.data.plots`, every function returns a ``matplotlib.figure.Figure``
built without pyplot; show and save it with :func:`cifarhelpers.files.show_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from cifarhelpers.data import plot_image_grid
from cifarhelpers.plot_style import GREY, TEST_COLOR, TRAIN_COLOR, signed


def _heatmap(ax, values: np.ndarray, classes: Sequence[str], fmt: str, label: str, title: str) -> None:
    import seaborn as sns

    sns.heatmap(values, annot=True, fmt=fmt, cmap="Blues", xticklabels=classes, yticklabels=classes, ax=ax,
                annot_kws={"fontsize": 7}, cbar_kws={"label": label, "shrink": 0.8}, square=True)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)


def plot_confusion_matrix(matrix: np.ndarray, classes: Sequence[str], normalize: bool = False) -> Figure:
    """Confusion matrix heat map (seaborn): rows true class, columns predicted class.

    Args:
        matrix: (C, C) counts.
        normalize: show each row as fractions of its true class (the diagonal is per-class recall).
    """
    values = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    _heatmap(fig.subplots(), values, classes, ".2f" if normalize else "d",
             "fraction of true class" if normalize else "images", f"Confusion matrix ({int(matrix.sum()):,} test images)")
    return fig


def plot_confusion_matrices(counts: np.ndarray, normalized: np.ndarray, classes: Sequence[str]) -> Figure:
    """The confusion matrix in counts beside the same matrix normalized by true class (each row sums
    to 1, the diagonal is per-class recall), rows true class, columns predicted class.

    Args:
        counts: (C, C) int counts; normalized: (C, C) fractions, e.g.
            ``analysis.confusion_matrix(..., normalize=True)``.
    """
    fig = Figure(figsize=(15, 6.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    _heatmap(left, counts, classes, "d", "images", f"Counts ({int(np.sum(counts)):,} test images)")
    _heatmap(right, normalized, classes, ".2f", "fraction of the true class",
             "Normalized by true class (rows sum to 1; diagonal = recall)")
    return fig


def plot_per_class_metrics(rows: Sequence[dict]) -> Figure:
    """Accuracy (= recall) and precision per class (rows from ``analysis.per_class_metrics``), in percent."""
    classes = [r["class"] for r in rows]
    x = np.arange(len(classes))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    for k, (key, color, label) in enumerate((("accuracy", TRAIN_COLOR, "accuracy (= recall)"),
                                             ("precision", "#2ca02c", "precision"))):
        ax.bar(x + (k - 0.5) * 0.38, [100 * r[key] for r in rows], width=0.38, color=color, label=label)
    ax.set_xticks(x, classes, rotation=30)
    ax.set(ylabel="percent", ylim=(0, 105), title="Per-class test metrics")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the bars, never over them
    ax.grid(alpha=0.3, axis="y")
    return fig


def _as_float(images: np.ndarray) -> np.ndarray:
    array = np.asarray(images)
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)


def plot_gradcam_grid(images: np.ndarray, overlays: np.ndarray, titles: Sequence[str] | None = None,
                      pairs_per_row: int = 4, title: str | None = None) -> Figure:
    """Each image beside its GradCAM overlay, ``pairs_per_row`` pairs per row.

    Args:
        images: (N, H, W, 3) uint8 or float in [0, 1].
        overlays: (N, H, W, 3) uint8, e.g. from :func:`cifarhelpers.analysis.gradcam.overlay_cams`.
        titles: N captions, shown above each image (its overlay is captioned "GradCAM").
        pairs_per_row: image + overlay pairs per row, >= 1.

    Raises:
        ValueError: ``images`` and ``overlays`` differ in number.
    """
    if len(images) != len(overlays):
        raise ValueError(f"{len(images)} images but {len(overlays)} overlays: give one overlay per image")
    pairs = [x for pair in zip(_as_float(images), _as_float(overlays)) for x in pair]
    interleaved = np.stack(pairs) if pairs else np.zeros((0, 1, 1, 3))
    captions = None if titles is None else [c for t in titles for c in (t, "GradCAM")]
    return plot_image_grid(interleaved, captions, ncols=2 * pairs_per_row, title=title, scale=1.5)


def plot_gradcam_true_vs_predicted(images: np.ndarray, true_overlays: np.ndarray, predicted_overlays: np.ndarray,
                                   true_captions: Sequence[str], predicted_captions: Sequence[str],
                                   per_row: int = 3, title: str | None = None) -> Figure:
    """Per image three panels: the image, GradCAM for its true class, GradCAM for its predicted class.

    Args:
        images: (N, H, W, 3) uint8 or float in [0, 1].
        true_overlays, predicted_overlays: (N, H, W, 3) uint8 overlays (:func:`cifarhelpers.analysis.gradcam.overlay_cams`).
        true_captions, predicted_captions: N captions of the two maps (e.g. ``"cat (true) 12%"``).
        per_row: images (each three panels) per row, >= 1.

    Raises:
        ValueError: the arrays or captions differ in number.
    """
    n = len(images)
    if not (len(true_overlays) == len(predicted_overlays) == len(true_captions) == len(predicted_captions) == n):
        raise ValueError(f"{n} images but {len(true_overlays)}/{len(predicted_overlays)} overlays and "
                         f"{len(true_captions)}/{len(predicted_captions)} captions: give one of each per image")
    panels = [x for triple in zip(_as_float(images), _as_float(true_overlays), _as_float(predicted_overlays))
              for x in triple]
    captions = [c for i in range(n) for c in ("image", f"true: {true_captions[i]}", f"pred: {predicted_captions[i]}")]
    stacked = np.stack(panels) if panels else np.zeros((0, 1, 1, 3))
    return plot_image_grid(stacked, captions, ncols=3 * per_row, title=title, scale=1.6)


#: Plain names of :func:`cifarhelpers.analysis.gradcam.cam_faithfulness`' metrics, for axes and tables.
METRIC_LABELS = {
    "road_combined": ("remove the highlighted pixels:\nextra drop of p(target) vs removing\n"
                      "the others, halved (ROAD combined)"),
    "keep_cam_change": "keep only the highlighted region\n(image x map): change of p(target)",
    "road_morf": "remove the most highlighted pixels\nfirst: change of p(target) (ROAD MoRF)",
    "road_lerf": "remove the least highlighted pixels\nfirst: change of p(target) (ROAD LeRF)",
}


def plot_layer_comparison(results: dict[str, dict[str, float]],
                          metrics: Sequence[str] = ("road_combined", "keep_cam_change")) -> Figure:
    """Mean faithfulness per GradCAM layer (from :func:`cifarhelpers.analysis.gradcam.compare_gradcam_layers`):
    one group of bars per metric, named in plain words (:data:`METRIC_LABELS`), one bar per layer,
    each labelled with its value in percentage points (a value that rounds to zero reads ``0.0``,
    never ``-0.0``); higher is more faithful for these metrics. Source of the metrics:
    pytorch-grad-cam's ``ROADCombined`` and ``CamMultImageConfidenceChange``."""
    names = list(results)
    x = np.arange(len(metrics))
    width = 0.8 / max(len(names), 1)
    fig = Figure(figsize=(8.5, 4.2), layout="constrained")
    ax = fig.subplots()
    colors = [TRAIN_COLOR, TEST_COLOR, GREY, "#2ca02c"]
    for k, name in enumerate(names):
        values = [100 * results[name][m] for m in metrics]
        bars = ax.bar(x + (k - (len(names) - 1) / 2) * width, values, width=width, label=name,
                      color=colors[k % len(colors)])
        ax.bar_label(bars, labels=[signed(v) for v in values], fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [METRIC_LABELS.get(m, m.replace("_", " ")) for m in metrics], fontsize=8)
    ax.set(ylabel="change of p(target), percentage points",
           title=f"GradCAM faithfulness per layer ({next(iter(results.values()))['images']} images; higher is better)")
    ax.margins(y=0.2)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
