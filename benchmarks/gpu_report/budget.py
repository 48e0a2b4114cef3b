"""The GPU report's time budget: the clock of the whole command (:class:`Budget`), whether an item fits
(:func:`decide`, :func:`fit_epochs`), the figures estimates are built from (:class:`Calibration`) and the record
of an item left out (:func:`skip_record`). Pure bookkeeping, tested without training; :func:`sync` is the one
device call: every clock read on a GPU waits for its queued work first.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


def sync(device: torch.device) -> None:
    """Wait for ``device``'s queued work (``torch.cuda.synchronize``) before a clock read; nothing elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Budget:
    """Wall-clock budget of the whole command.

    Args:
        total_seconds: the budget.
        margin_seconds: kept back for the final writes; :meth:`left` excludes it.
        start: clock reading at the start (default: now).
        clock: the clock (``time.perf_counter``; a fake one in tests).
    """

    def __init__(self, total_seconds: float, margin_seconds: float = 0.0, start: float | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.total_seconds = float(total_seconds)
        self.margin_seconds = float(margin_seconds)
        self.clock = clock
        self.start = clock() if start is None else start

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        """Seconds left for new work (the final margin excluded); may be negative."""
        return self.total_seconds - self.margin_seconds - self.elapsed()

    def to_dict(self) -> dict:
        return {"budget_seconds": self.total_seconds, "final_margin_seconds": self.margin_seconds,
                "elapsed_seconds": round(self.elapsed(), 3), "left_seconds": round(self.left(), 3)}


@dataclass
class Decision:
    """Whether an item runs, and why not."""

    run: bool
    reason: str | None
    estimate_seconds: float | None
    available_seconds: float


def decide(estimate_seconds: float | None, available_seconds: float, min_start_seconds: float) -> Decision:
    """Run an item when its estimate fits in the time available; with no estimate, when at least
    ``min_start_seconds`` are left (the watchdog stops it at the budget's end)."""
    if estimate_seconds is None:
        if available_seconds >= min_start_seconds:
            return Decision(True, None, None, available_seconds)
        return Decision(False, f"no estimate and only {max(available_seconds, 0):.0f} s available (< "
                               f"{min_start_seconds:.0f} s needed to start)", None, available_seconds)
    if estimate_seconds <= available_seconds:
        return Decision(True, None, estimate_seconds, available_seconds)
    return Decision(False, f"estimated {estimate_seconds:.0f} s > {max(available_seconds, 0):.0f} s available",
                    estimate_seconds, available_seconds)


def fit_epochs(target: int, per_epoch_seconds: float, fixed_seconds: float, available_seconds: float,
               min_epochs: int = 1) -> int:
    """The most epochs (up to ``target``) whose estimated cost fits in ``available_seconds``; 0 when
    fewer than ``min_epochs`` fit."""
    if per_epoch_seconds <= 0:
        return target
    n = int(math.floor((available_seconds - fixed_seconds) / per_epoch_seconds))
    n = min(target, n)
    return n if n >= min_epochs else 0


@dataclass
class Calibration:
    """Figures the estimates are built from: measured on a main-job run, or probed before one.

    Attributes:
        step_seconds: one training step of the main model at the main batch size.
        steps_per_epoch: training steps per epoch of the main job.
        test_seconds_per_epoch: one evaluation pass.
        epoch_overhead_seconds: per-epoch cost outside the passes (checkpoint and metrics writes).
        fixed_seconds: per-run cost (data preparation, warm-up).
        source: where the figures come from.
    """

    step_seconds: float
    steps_per_epoch: int
    test_seconds_per_epoch: float
    epoch_overhead_seconds: float
    fixed_seconds: float
    source: str

    @classmethod
    def from_run(cls, record: dict) -> Calibration | None:
        """From a finished main-job run record (``figures.run_figures``); None when it lacks the figures."""
        hist = record.get("history") or []
        steps = record.get("steps_per_epoch")
        if not hist or not steps:
            return None
        train = [h["train_seconds"] for h in hist]
        test = [h["test_seconds"] for h in hist]
        steady_train = statistics.median(train[1:]) if len(train) > 1 else train[0]
        steady_test = statistics.median(test[1:]) if len(test) > 1 else test[0]
        other = max(0.0, record.get("other_seconds") or 0.0)
        fixed = (record.get("data_seconds") or 0.0) + (record.get("warmup_seconds") or 0.0) \
            + (record.get("eval_warmup_seconds") or 0.0)
        return cls(step_seconds=steady_train / steps, steps_per_epoch=steps, test_seconds_per_epoch=steady_test,
                   epoch_overhead_seconds=other / len(hist), fixed_seconds=fixed,
                   source=f"measured: run {record.get('label')}")

    def train_epoch_seconds(self, *, step_seconds: float | None = None, steps: int | None = None,
                            data_seconds: float | None = None) -> float:
        """One training pass: compute-bound (steps x step time), or data-bound when the loader is slower
        (``data_seconds``: the loader's time for one epoch)."""
        compute = (steps or self.steps_per_epoch) * (step_seconds or self.step_seconds)
        return max(compute, data_seconds) if data_seconds else compute

    def epoch_seconds(self, *, test_scale: float = 1.0, **train) -> float:
        return self.train_epoch_seconds(**train) + self.test_seconds_per_epoch * test_scale + self.epoch_overhead_seconds

    def run_seconds(self, epochs: int, *, extra_fixed: float = 0.0, test_scale: float = 1.0, **train) -> float:
        """A whole run: fixed + epochs x (train + test + overhead) + extra (unscaled by the safety factor)."""
        return self.fixed_seconds + extra_fixed + epochs * self.epoch_seconds(test_scale=test_scale, **train)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def skip_record(part: str, item: str, reason: str, elapsed_seconds: float, estimate: float | None = None,
                available: float | None = None) -> dict:
    """One entry of the report's ``skipped`` list: what was not run, why, and when (seconds into the budget)."""
    return {"part": part, "item": item, "reason": reason, "estimate_seconds": estimate, "available_seconds": available,
            "at_elapsed_seconds": round(elapsed_seconds, 3)}


def fmt_s(seconds: float | None) -> str:
    """Seconds as ``"12 s"``, or ``"?"`` when unknown."""
    return "?" if seconds is None else f"{seconds:.0f} s"
