"""Figures as a reader sees them, rendered: labels inside the axes, legends off the data. No data needed."""

from __future__ import annotations

import numpy as np
import pytest

from cifarhelpers.analysis import plot_confusion_matrices, plot_layer_comparison, plot_per_class_metrics
from cifarhelpers.data import plot_class_balance
from cifarhelpers.training import plot_curves

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def rendered(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the figures are built without pyplot: draw them as savefig would
    canvas.draw()
    return canvas.get_renderer()


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("train_gap", [-0.1, 0.05])  # train below test (early training), train above (late)
@pytest.mark.parametrize("accuracies", [
    [0.2, 0.3, 0.44],            # best at the last epoch, the highest point of the plot
    [0.5, 0.3, 0.2],             # best at the first epoch
    [0.2, 0.9, 0.5],             # best in the middle, above every train value
    [0.44],                      # one epoch
])
def test_the_best_accuracy_label_lies_inside_the_accuracy_axes(accuracies, train_gap):
    history = [{"epoch": i + 1, "train_loss": 2.0 - i / 10, "test_loss": 2.1 - i / 10, "train_accuracy": a + train_gap,
                "test_accuracy": a} for i, a in enumerate(accuracies)]
    fig = plot_curves(history, title="t")
    renderer = rendered(fig)
    ax = fig.axes[1]
    (label,) = [t for t in ax.texts if t.get_text().endswith("%")]
    assert label.get_text() == f"{100 * max(accuracies):.2f}%"
    box, frame = label.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, \
        "the label is not clipped by or drawn over the axes' frame"
    point_y = ax.transData.transform((1, 100 * max(accuracies)))[1]
    assert (box.y1 < point_y) if train_gap > 0 else (box.y0 > point_y), \
        "the label sits on the side of its point away from the train curve"


def test_the_class_balance_legend_covers_no_bar_and_no_count():
    fig = plot_class_balance([5000] * 10, [1000] * 10, CLASSES)
    renderer = rendered(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for container in ax.containers for patch in container]
    counts = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(bars) == 20 and len(counts) == 20 and counts[0] is not None
    assert not any(overlaps(legend, b) for b in bars + counts)
    assert [t.get_text() for t in ax.texts][:2] == ["5,000", "5,000"]


def test_per_class_metrics_legend_covers_no_bar():
    rows = [{"class": c, "accuracy": 0.95, "precision": 0.97} for c in CLASSES]
    fig = plot_per_class_metrics(rows)
    renderer = rendered(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(overlaps(legend, p.get_window_extent(renderer)) for p in ax.patches)


def test_confusion_matrices_show_counts_beside_the_normalized_matrix():
    counts = np.diag([8, 9, 10]) + 1
    normalized = counts / counts.sum(axis=1, keepdims=True)
    fig = plot_confusion_matrices(counts, normalized, ["a", "b", "c"])
    left, right = [ax for ax in fig.axes if ax.get_xlabel() == "predicted class"]
    assert left.get_title() == "Counts (36 test images)"
    assert {t.get_text() for t in left.texts} >= {"9", "1"} and "0.82" in {t.get_text() for t in right.texts}
    assert "rows sum to 1" in right.get_title()


def test_layer_comparison_has_one_bar_per_layer_and_metric():
    results = {"layer2": {"road_combined": 0.05, "keep_cam_change": -0.1, "images": 8},
               "layer3": {"road_combined": 0.02, "keep_cam_change": -0.2, "images": 8}}
    fig = plot_layer_comparison(results)
    ax = fig.axes[0]
    assert len(ax.patches) == 4 and ax.get_legend_handles_labels()[1] == ["layer2", "layer3"]
    assert "8 images" in ax.get_title()


def test_each_lr_range_test_marker_sits_on_its_rules_point_even_when_the_curve_falls_into_the_skipped_end():
    from cifarhelpers.training import LRRangeTestResult, plot_lr_range_test, suggest_lrs

    lrs = np.geomspace(1e-5, 1.0, 60)
    losses = 2.3 - 0.02 * np.arange(60)  # still falling at its end: the lowest point is a skipped one
    suggestions = suggest_lrs(lrs, losses, skip_start=5, skip_end=5)
    result = LRRangeTestResult(lrs=list(lrs), losses=list(losses), suggestions=suggestions, rule="min_loss",
                               settings={"skip_start": 5, "skip_end": 5, "batch_size": 4})
    ax = plot_lr_range_test(result).axes[0]
    marked = {c.get_label().split(":")[0].removesuffix(" (used)"): c.get_offsets()[0] for c in ax.collections
              if c.get_label().split(":")[0].removesuffix(" (used)") in suggestions}
    assert set(marked) == set(suggestions)
    assert marked["min_loss"][0] == pytest.approx(10 * suggestions["min_loss"]) and marked["min_loss"][0] < lrs[-5]
    for rule in ("valley", "steepest"):
        assert marked[rule][0] == pytest.approx(suggestions[rule])
    (label,) = [c.get_label() for c in ax.collections if c.get_label().startswith("min_loss")]
    assert label == f"min_loss: {10 * suggestions['min_loss']:.2e} / 10 = {suggestions['min_loss']:.2e} (used)"
