"""The rules that read an LRMAX off an LR range test's curve, on synthetic curves with known answers,
and the result object that carries every rule's suggestion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cifarhelpers.errors import ConfigError
from cifarhelpers.training import (
    RULES,
    LRRangeTestResult,
    TrainConfig,
    describe_lr,
    min_loss_lr,
    steepest_lr,
    suggest_lrs,
    valley_lr,
)

LRS = np.logspace(-6, 1, 71)  # 1e-6 .. 10, ten points per decade: LRS[10 * k] == 10 ** (k - 6)


def fastai_valley(lrs, losses):
    """fastai's ``valley`` (fastai/callback/schedule.py), loop for loop, as the reference."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def bowl(center_decade: float, width: float = 1.0) -> np.ndarray:
    """A smooth curve: flat at 2.3, a dip centred on 10**center_decade, then an explosion."""
    x = np.log10(LRS)
    return 2.3 - np.exp(-((x - center_decade) / width) ** 2) + np.where(x > center_decade + 1.5,
                                                                       (x - center_decade - 1.5) ** 3, 0.0)


def test_steepest_is_where_the_loss_falls_fastest():
    losses = 3.0 - np.tanh((np.log10(LRS) + 3.0) * 2)  # falls fastest at 1e-3
    assert steepest_lr(LRS, losses) == pytest.approx(1e-3)


def test_min_loss_is_the_lr_of_the_lowest_loss_over_10():
    losses = bowl(-2.0)  # lowest at 1e-2
    assert min_loss_lr(LRS, losses) == pytest.approx(1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_valley_matches_fastais_own_loop_on_noisy_curves(seed):
    rng = np.random.default_rng(seed)
    losses = bowl(rng.uniform(-4, -1)) + rng.normal(0, 0.02, len(LRS))
    assert valley_lr(LRS, losses) == fastai_valley(LRS, losses)


def test_valley_lands_inside_the_longest_descent_between_steepest_and_the_minimum():
    losses = bowl(-2.0, width=1.5)  # falls from about 1e-5 to the minimum at 1e-2
    valley, steepest, lowest = valley_lr(LRS, losses), steepest_lr(LRS, losses), LRS[np.argmin(losses)]
    assert 1e-5 < valley < lowest
    assert valley == fastai_valley(LRS, losses)
    assert steepest < lowest


def test_a_curve_that_never_falls_gives_its_first_point_not_an_index_error():
    assert valley_lr(LRS, np.linspace(1.0, 5.0, len(LRS))) == LRS[0]


def test_suggest_lrs_skips_the_ends_and_gives_every_rule():
    losses = bowl(-2.0)
    losses[-5:] = -10.0  # a spike in the last points (the explosion region) that must not be chosen
    suggestions = suggest_lrs(LRS, losses, skip_start=10, skip_end=5)
    assert set(suggestions) == set(RULES)
    assert suggestions["min_loss"] == pytest.approx(1e-3), "the skipped end is ignored"
    assert all(LRS[10] <= v * (10 if rule == "min_loss" else 1) <= LRS[-6] for rule, v in suggestions.items())


def test_suggest_lrs_refuses_curves_too_short_or_mismatched():
    with pytest.raises(ConfigError, match="run the LR range test with more iterations"):
        suggest_lrs(LRS[:16], bowl(-2.0)[:16])
    with pytest.raises(ConfigError, match="71 LRs but 70 losses"):
        suggest_lrs(LRS, bowl(-2.0)[:70])


def _result(**changes) -> LRRangeTestResult:
    losses = bowl(-2.5)
    values = dict(lrs=LRS.tolist(), losses=losses.tolist(), suggestions=suggest_lrs(LRS, losses), rule="valley",
                  settings={"batch_size": 512})
    return LRRangeTestResult(**{**values, **changes})


def test_the_result_uses_its_rule_and_survives_a_json_round_trip():
    result = _result()
    assert result.max_lr == result.suggestions["valley"] and result.min_lr == pytest.approx(result.max_lr / 10)
    steep = result.with_rule("steepest")
    assert steep.max_lr == result.suggestions["steepest"] and steep.lrs == result.lrs
    again = LRRangeTestResult.from_dict(json.loads(json.dumps(steep.to_dict())))
    assert again == steep and again.to_dict()["max_lr"] == steep.max_lr


def test_unknown_rules_and_malformed_files_are_refused():
    with pytest.raises(ConfigError, match=r"lr_rule='median' \(str\) is invalid: choose one of \['valley', 'steepest'"):
        _result(rule="median")
    with pytest.raises(ConfigError, match="choose one of"):
        _result().with_rule("median")
    with pytest.raises(ConfigError, match="not an LR range test result"):
        LRRangeTestResult.from_dict({"max_lr": 0.01})
    bad = _result().to_dict()
    bad["suggestions"]["valley"] = -1.0
    with pytest.raises(ConfigError, match="not a finite positive LR"):
        LRRangeTestResult.from_dict(bad)


def test_describe_lr_names_the_default_only_when_far_from_it_and_lrmin_only_where_the_recipe_has_one():
    cfg = TrainConfig()
    assert describe_lr(cfg.replace(max_lr=0.005), "notebook 03") == "LRMAX 0.005 (LRMIN 0.0005) from notebook 03"
    assert describe_lr(cfg.replace(max_lr=0.005, min_lr=0.002), "x") == "LRMAX 0.005 (LRMIN 0.002) from x"
    far = describe_lr(cfg.replace(max_lr=2.6e-4), "the LR range test (steepest)")
    assert "19x below the recipe's default LRMAX 0.005" in far
    assert "4x above the recipe's default" in describe_lr(cfg.replace(max_lr=0.02), "--max-lr")
    assert describe_lr(cfg.replace(recipe="plateau_sgd"), "the plateau_sgd recipe's default") == (
        "LRMAX 0.1 from the plateau_sgd recipe's default")
    with pytest.raises(ConfigError, match="find"):
        describe_lr(cfg.replace(max_lr="find"), "x")


def test_describe_suggestions_lists_every_rule_in_order_with_three_significant_digits():
    result = LRRangeTestResult(lrs=[1e-4, 1e-3], losses=[2.3, 2.2],
                               suggestions={"valley": 7.8804e-4, "steepest": 4.5213e-4, "min_loss": 1.2671e-3})
    assert result.describe_suggestions() == "valley 0.000788, steepest 0.000452, min_loss 0.00127"
