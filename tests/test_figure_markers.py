"""What a reader must be able to trust in each figure, checked on the rendered figure: the LR range
test's LRMAX / LRMIN lines and their values, a legend off the curve, a suggestion past the lowest
loss flagged; the loss axis naming its label smoothing; accuracy markers drawn whole; plain bar
labels; a sweep figure that says what was trained and what won. No data needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from cifarhelpers.analysis import plot_layer_comparison
from cifarhelpers.sweep import plot_sweep
from cifarhelpers.training import (
    LRRangeTestResult,
    TrainConfig,
    lr_schedule,
    plot_curves,
    plot_lr_range_test,
    plot_lr_schedule,
    suggest_lrs,
)


def rendered(fig):
    canvas = FigureCanvasAgg(fig)  # the figures are built without pyplot: draw them as savefig would
    canvas.draw()
    return canvas.get_renderer()


def range_test(rule: str = "min_loss") -> LRRangeTestResult:
    """A curve shaped like notebook 03's on the GPU: flat start, a long fall to a minimum near 2e-2,
    a spike, a second fall (where steepest lands, past the minimum), then the explosion."""
    lrs = np.geomspace(1e-6, 5.0, 97)
    t = np.log10(lrs)
    losses = 4.5 - 2.3 / (1 + np.exp(-1.6 * (t + 3.3)))                    # 4.5 -> 2.2, falling
    losses += np.where(t > -1.7, 0.6 * (t + 1.7), 0.0)                      # rising past 2e-2
    losses += 1.6 * np.exp(-((t + 0.6) / 0.35) ** 2) * (t > -1.7)           # the spike
    losses += np.where(t > 0.55, 12 * (t - 0.55), 0.0)                      # the explosion
    result = LRRangeTestResult(lrs=list(lrs), losses=list(losses), rule=rule,
                               suggestions=suggest_lrs(lrs, losses, skip_start=10, skip_end=5),
                               settings={"skip_start": 10, "skip_end": 5, "batch_size": 512, "model": "custom_resnet"})
    assert result.suggestions["steepest"] > lrs[int(np.argmin(losses[:-5]))], "the curve puts steepest past the minimum"
    return result


def vertical_line(ax, x: float):
    """The line drawn with axvline at ``x`` (relative tolerance 1e-9), or None."""
    found = [line for line in ax.lines if list(line.get_ydata()) == [0, 1]
             and all(math.isclose(float(v), x, rel_tol=1e-9) for v in line.get_xdata())]
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("rule", ["min_loss", "valley"])
def test_the_lr_range_test_marks_the_lrmax_used_and_lrmin_apart_with_their_values(rule):
    result = range_test(rule)
    ax = plot_lr_range_test(result).axes[0]
    lrmax, lrmin = vertical_line(ax, result.max_lr), vertical_line(ax, result.min_lr)
    assert lrmax is not None, f"no vertical line at LRMAX {result.max_lr:.2e}"
    assert lrmin is not None, f"no vertical line at LRMIN {result.min_lr:.2e}"
    assert f"LRMAX used: {result.max_lr:.2e}" in lrmax.get_label() and rule in lrmax.get_label()
    assert f"{result.min_lr:.2e}" in lrmin.get_label() and lrmin.get_label().startswith("LRMIN")
    assert (lrmax.get_linestyle(), lrmax.get_color()) != (lrmin.get_linestyle(), lrmin.get_color())
    assert {t.get_text() for t in ax.texts} >= {"LRMAX", "LRMIN"}, "each line named where it is drawn"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert lrmax.get_label() in legend and lrmin.get_label() in legend


def test_the_lr_range_test_draws_the_lrs_training_uses_when_given():
    ax = plot_lr_range_test(range_test(), max_lr=5e-3, min_lr=4e-4).axes[0]
    assert vertical_line(ax, 5e-3).get_label() == "LRMAX used: 5.00e-03 (set for training)"
    assert vertical_line(ax, 4e-4).get_label() == "LRMIN: 4.00e-04"


def test_the_lr_range_test_legend_covers_no_point_of_the_curve():
    fig = plot_lr_range_test(range_test())
    renderer = rendered(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    curve = ax.lines[0]
    points = ax.transData.transform(np.column_stack([curve.get_xdata(), curve.get_ydata()]))
    inside = [i for i, (px, py) in enumerate(points) if legend.contains(px, py)]
    assert not inside, f"the legend covers the curve's points {inside[:10]}"


def test_a_suggestion_past_the_lowest_loss_is_flagged_and_one_before_it_is_not():
    from cifarhelpers.training import lowest_loss_lr, past_lowest_loss

    result = range_test()
    assert set(past_lowest_loss(result)) == {"steepest"}
    ax = plot_lr_range_test(result).axes[0]
    labels = {c.get_label().split(":")[0].removesuffix(" (used)"): c.get_label() for c in ax.collections}
    assert "past the lowest loss" in labels["steepest"]
    assert "past the lowest loss" not in labels["valley"] + labels["min_loss"]
    spans = [p for p in ax.patches if "diverging" in p.get_label()]
    assert len(spans) == 1 and f"{lowest_loss_lr(result):.2e}" in spans[0].get_label()
    assert spans[0].get_x() == pytest.approx(lowest_loss_lr(result))


def history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 / e, "test_loss": 2.1 / e, "train_accuracy": 0.3 + 0.6 * e / epochs,
             "test_accuracy": 0.35 + 0.5 * e / epochs} for e in range(1, epochs + 1)]


def test_loss_floor_is_the_smallest_loss_pytorch_gives_with_that_smoothing():
    from cifarhelpers.training import loss_floor

    target = torch.full((1, 10), 0.02)
    target[0, 3] = 0.82  # what label smoothing 0.2 makes of class 3 over 10 classes
    best = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(target.log(), torch.tensor([3])).item()
    assert loss_floor(0.2) == pytest.approx(best, rel=1e-5) and round(loss_floor(0.2), 2) == 0.87
    assert loss_floor(0.0) == 0.0


@pytest.mark.parametrize("smoothing,name", [(0.2, "cross-entropy, label smoothing 0.2"),
                                            (0.0, "cross-entropy, no label smoothing"),
                                            (None, "cross-entropy (label smoothing not given)")])
def test_the_loss_axis_names_the_loss_with_its_label_smoothing(smoothing, name):
    ax_loss = plot_curves(history(5), label_smoothing=smoothing).axes[0]
    assert ax_loss.get_ylabel() == f"loss: {name}"
    floors = [line for line in ax_loss.lines if line.get_label().startswith("lowest possible")]
    if smoothing:
        assert len(floors) == 1 and floors[0].get_ydata()[0] == pytest.approx(0.8669, abs=1e-4)
        assert "0.87" in floors[0].get_label()
    else:
        assert not floors


@pytest.mark.parametrize("epochs", [1, 2, 24, 60])
def test_every_marker_of_the_curves_is_drawn_whole_inside_its_axes(epochs):
    fig = plot_curves(history(epochs), title="t", label_smoothing=0.2)
    rendered(fig)
    for ax in fig.axes:
        frame = ax.get_window_extent()
        for line in (line for line in ax.lines if line.get_marker() == "o"):
            radius = (line.get_markersize() / 2 + line.get_markeredgewidth()) * fig.dpi / 72
            for px, py in ax.transData.transform(line.get_xydata()):
                assert frame.x0 <= px - radius and px + radius <= frame.x1, f"{ax.get_title()}: x clipped"
                assert frame.y0 <= py - radius and py + radius <= frame.y1, f"{ax.get_title()}: y clipped"


@pytest.mark.parametrize("end_lr,shown", [(None, "1.00e-03"), (1e-5, "1.00e-05"), (0.0, "0.00e+00")])
def test_the_lr_schedule_marks_start_peak_and_onecycles_end_lr_with_their_values(end_lr, shown):
    cfg = TrainConfig(max_lr=0.01, epochs=24, end_lr=end_lr)  # the peak at the end of epoch 5
    ax = plot_lr_schedule(lr_schedule(cfg, 4), 4).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "start: 1.00e-03 (epoch 0.25)" in legend  # LRMIN = LRMAX / 10
    assert "peak: 1.00e-02 (epoch 5.00)" in legend
    assert f"{cfg.resolved_end_lr:.2e}" == shown and f"end: {shown} (epoch 24.00)" in legend, legend
    assert ax.get_ylim()[0] == 0


def test_layer_comparison_bars_have_plain_names_and_no_negative_zero():
    results = {"layer2": {"road_combined": 0.224, "keep_cam_change": -0.28, "images": 64},
               "layer3": {"road_combined": 0.272, "keep_cam_change": -0.00012, "images": 64}}
    ax = plot_layer_comparison(results).axes[0]
    values = [t.get_text() for t in ax.texts]
    assert values == ["+22.4", "-28.0", "+27.2", "0.0"], values
    for tick, key in zip(ax.get_xticklabels(), ("road_combined", "keep_cam_change")):
        text = tick.get_text()
        assert key not in text and key.replace("_", " ") not in text and "p(target)" in text, text


def sweep_records(accuracies: dict[tuple[float, int], float]) -> list[dict]:
    return [{"index": i, "name": f"t{i}", "params": {"max_lr": lr, "seed": seed}, "status": "completed",
             "final_test_accuracy": acc, "epochs": 2, "wall_seconds": 1.0}
            for i, ((lr, seed), acc) in enumerate(accuracies.items())]


def test_a_two_config_sweep_says_what_was_trained_and_which_lr_won():
    records = sweep_records({(1e-3, 0): 0.232, (1e-3, 1): 0.21, (1e-2, 0): 0.34, (1e-2, 1): 0.304})
    base = TrainConfig(model="dilated_net", epochs=2, batch_size=64, train_subset=2048, test_subset=500)
    ax = plot_sweep(records, "max_lr", markers={"notebook 03, valley": 7.88e-4}, config=base).axes[0]
    title = ax.get_title()
    assert all(part in title for part in ("dilated_net", "onecycle_adam", "2 epochs", "2,048 training images"))
    assert "500 test images" in ax.get_ylabel() and ax.get_xlabel().startswith("LRMAX")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "best mean: 32.2% at max_lr = 0.01" in legend and "chance (1 of 10 classes): 10%" in legend
    assert {t.get_text() for t in ax.texts} == {"mean 22.1%", "mean 32.2%"}
    assert [np.round(c.get_offsets(), 4).tolist() for c in ax.collections] == \
        [[[1e-3, 23.2], [1e-3, 21.0], [1e-2, 34.0], [1e-2, 30.4]]], "one point per seed"
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 34.0


def test_a_sweep_far_above_chance_spans_its_accuracies():
    records = sweep_records({(5e-4, 0): 0.8868, (5e-3, 0): 0.9029, (2e-2, 0): 0.8887})
    ax = plot_sweep(records, "max_lr").axes[0]
    low, high = ax.get_ylim()
    assert 85 < low < 88.68 and 90.29 < high < 95, (low, high)
    assert {t.get_text() for t in ax.texts} == {"88.7%", "90.3%", "88.9%"}
    assert not any("chance" in t.get_text() for t in ax.get_legend().get_texts())
    (star,) = [line for line in ax.lines if line.get_marker() == "*"]
    assert math.isclose(float(star.get_ydata()[0]), 90.29) and float(star.get_xdata()[0]) == 5e-3
    assert "2 epochs" in ax.get_title()


def test_a_sweep_title_names_only_what_its_trials_share():
    records = [{**r, "params": {"model": m, "seed": 0}} for r, m in
               zip(sweep_records({(1e-3, 0): 0.6, (1e-2, 0): 0.7}), ["dilated_net", "resnet18"])]
    ax = plot_sweep(records, "model", config=TrainConfig(model="custom_resnet", epochs=3)).axes[0]
    assert ax.get_title().startswith("Sweep over model: onecycle_adam, 3 epochs, 50,000 training images, batch 512")
    assert "custom_resnet" not in ax.get_title()
