"""The LR range test's result and its file, ``lr_range_test.json``: the measured curve, every rule's
suggested LRMAX, the rule used, and the settings it ran with. Written by notebook 03 and by every
run that finds its LRMAX (``max_lr="find"``), read back by notebooks 04 and 07.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cifarhelpers.checks import check_choice
from cifarhelpers.errors import ConfigError
from cifarhelpers.files import write_json

from .lr_suggestions import DEFAULT_RULE

#: The result's file name, in a run folder and in the notebooks' output folder.
LR_JSON = "lr_range_test.json"


@dataclass
class LRRangeTestResult:
    """Outcome of :func:`lr_range_test`.

    Attributes:
        lrs: LR of each iteration run (the whole measured curve).
        losses: training loss of each iteration, exponentially smoothed (factor ``smooth_f``).
        suggestions: every rule's suggested LRMAX (:data:`cifarhelpers.training.lr_suggestions.RULES`),
            computed after skipping ``skip_start`` first and ``skip_end`` last points.
        rule: the rule whose suggestion is used: ``max_lr = suggestions[rule]``.
        stopped_early: the test ended before ``num_iter`` iterations.
        stop_reason: why it stopped early (loss diverged or not finite), else None.
        settings: start_lr, end_lr, num_iter, step_mode, batch_size, skip_start, skip_end, smooth_f,
            weight_decay, diverge_th (and, from :func:`run_lr_range_test`, model, loader, train_images).
        restored: every tensor of the model's ``state_dict`` (weights, BatchNorm statistics) was
            checked after the test and is bit-for-bit what it was before.
    """

    lrs: list[float]
    losses: list[float]
    suggestions: dict[str, float]
    rule: str = DEFAULT_RULE
    stopped_early: bool = False
    stop_reason: str | None = None
    settings: dict = field(default_factory=dict)
    restored: bool = False

    def __post_init__(self) -> None:
        check_choice("lr_rule", self.rule, tuple(self.suggestions))

    @property
    def max_lr(self) -> float:
        """LRMAX for OneCycle: the suggestion of :attr:`rule`."""
        return self.suggestions[self.rule]

    @property
    def min_lr(self) -> float:
        """LRMIN = LRMAX / 10."""
        return self.max_lr / 10.0

    def with_rule(self, rule: str) -> LRRangeTestResult:
        """The same curve with another rule's suggestion as LRMAX.

        Raises:
            ConfigError: an unknown rule.
        """
        return dataclasses.replace(self, rule=rule)

    def describe_suggestions(self) -> str:
        """Every rule's suggestion on one line, e.g. ``"valley 0.000788, steepest 0.000452, min_loss 0.00127"``."""
        return ", ".join(f"{rule} {lr:.3g}" for rule, lr in self.suggestions.items())

    def to_dict(self) -> dict:
        """JSON-ready: every field plus ``max_lr`` and ``min_lr``."""
        return {**asdict(self), "max_lr": self.max_lr, "min_lr": self.min_lr}

    @classmethod
    def from_dict(cls, content: dict) -> LRRangeTestResult:
        """Rebuild a result from :meth:`to_dict`'s output (e.g. notebook 03's ``lr_range_test.json``).

        Raises:
            ConfigError: a field is missing, or a suggestion is not a finite positive LR.
        """
        try:
            result = cls(lrs=[float(v) for v in content["lrs"]], losses=[float(v) for v in content["losses"]],
                         suggestions={str(k): float(v) for k, v in content["suggestions"].items()},
                         rule=content.get("rule", DEFAULT_RULE), stopped_early=bool(content.get("stopped_early")),
                         stop_reason=content.get("stop_reason"), settings=dict(content.get("settings") or {}),
                         restored=bool(content.get("restored")))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"not an LR range test result ({type(err).__name__}: {err}): run the test again") from err
        if not all(np.isfinite(v) and v > 0 for v in result.suggestions.values()):
            raise ConfigError(f"suggestions {result.suggestions} hold a value that is not a finite positive LR: "
                              "run the LR range test again")
        return result


def save_lr_range_test(output_dir: str | os.PathLike, result: LRRangeTestResult) -> Path:
    """Write ``lr_range_test.json`` (notebook 03's, or a run's): the result (curve, settings, suggestion, LRMAX,
    LRMIN) with units. Returns its path.

    Raises:
        ConfigError: the suggestion is not a finite positive number (nothing is written).
    """
    if not (math.isfinite(result.max_lr) and result.max_lr > 0):
        raise ConfigError(f"the LR range test suggested {result.max_lr!r}, not a finite positive LR: "
                          "run it again with more iterations (num_iter) or a narrower range")
    return write_json(Path(output_dir) / LR_JSON, {
        **result.to_dict(), "units": {"lr": "learning rate", "loss": "smoothed training cross-entropy"},
    })
