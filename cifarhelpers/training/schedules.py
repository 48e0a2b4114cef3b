"""LR schedule building blocks the recipes use: cifar10-fast's piecewise-linear LR and
:class:`Schedule`, which steps a scheduler at its recipe's cadence (per batch, per epoch, on a plateau)
after an optional linear warm-up."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

#: When a recipe's scheduler steps: after every optimizer step, after every epoch, or on the test loss.
CADENCES = ("batch", "epoch", "plateau")


class PiecewiseLinearLR(LRScheduler):
    """cifar10-fast's ``PiecewiseLinear`` LR schedule, stepped per batch: step ``i`` (0-based) uses the LR
    interpolated linearly between ``(knots[j], values[j])`` at ``(i + 1) / steps_per_epoch`` epochs, and the
    last value after the last knot.

    cifar10-fast's optimizer wrapper (``TorchOptimiser`` in ``torch_backend.py``) counts a step before it
    reads ``lr(step) = schedule(step / steps_per_epoch)``, hence the ``+ 1``: with knots (0, 5, 24) and values
    (0, 0.4, 0), the first step uses 0.4 / (5 x steps_per_epoch), the last step of epoch 5 uses 0.4 and the last
    step of epoch 24 uses 0.

    Args:
        optimizer: every parameter group gets the same LR.
        knots: increasing epochs (floats), at least two.
        values: the LR (>= 0) at each knot.
        steps_per_epoch: optimizer steps per epoch, >= 1.

    Raises:
        ValueError: knots not increasing, lengths differ, or steps_per_epoch < 1.
    """

    def __init__(self, optimizer: Optimizer, knots: Sequence[float], values: Sequence[float], steps_per_epoch: int,
                 last_epoch: int = -1):
        if len(knots) < 2 or len(knots) != len(values) or any(b <= a for a, b in zip(knots, knots[1:])):
            raise ValueError(f"knots {list(knots)} must increase and match values {list(values)} in length (>= 2)")
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.knots, self.values = [float(k) for k in knots], [float(v) for v in values]
        self.steps_per_epoch = int(steps_per_epoch)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> float:
        """The LR of step ``step`` (0-based)."""
        return float(np.interp((step + 1) / self.steps_per_epoch, self.knots, self.values))

    def get_lr(self) -> list[float]:
        return [self.lr_at(self.last_epoch) for _ in self.optimizer.param_groups]


class Schedule:
    """Steps a scheduler at its recipe's cadence, so training loops need not know the recipe.

    Call :meth:`after_batch` after every ``optimizer.step()`` and :meth:`after_epoch` after every
    epoch's evaluation. With a ``warmup`` scheduler, it alone steps (per batch) for the first
    ``warmup_steps`` optimizer steps; the recipe's scheduler starts after them.
    """

    def __init__(self, optimizer: Optimizer, scheduler, cadence: str, warmup: LRScheduler | None = None,
                 warmup_steps: int = 0):
        if cadence not in CADENCES:
            raise ValueError(f"cadence {cadence!r} is not one of {CADENCES}")
        self.optimizer, self.scheduler, self.cadence = optimizer, scheduler, cadence
        self.warmup, self.warmup_steps = warmup, warmup_steps

    @property
    def lr(self) -> float:
        """The LR the next optimizer step will use (first parameter group)."""
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def warming_up(self) -> bool:
        """True until the end of the warm-up's last epoch (the recipe's schedule counts epochs after it)."""
        return self.warmup is not None and self.warmup.last_epoch <= self.warmup_steps

    def after_batch(self) -> None:
        """Call after every ``optimizer.step()``: steps the warm-up while it lasts, then a per-batch scheduler."""
        if self.warmup is not None and self.warmup.last_epoch < self.warmup_steps:
            self.warmup.step()
        elif self.cadence == "batch" and not self.warming_up:
            self.scheduler.step()

    def after_epoch(self, test_loss: float) -> None:
        """Call after every epoch's evaluation with its test loss (mean cross-entropy per image): steps a
        per-epoch or plateau scheduler, except in epochs the warm-up still runs."""
        if self.warming_up:
            if self.warmup.last_epoch == self.warmup_steps:  # its last epoch ended: one more step (LR stays max_lr)
                self.warmup.step()                           # marks it done, so this epoch is not the recipe's
            return
        if self.cadence == "epoch":
            self.scheduler.step()
        elif self.cadence == "plateau":
            self.scheduler.step(test_loss)

    def state_dict(self) -> dict:
        """The scheduler's state; with a warm-up ``{"scheduler": ..., "warmup": ...}``."""
        if self.warmup is None:
            return self.scheduler.state_dict()
        return {"scheduler": self.scheduler.state_dict(), "warmup": self.warmup.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output (the scheduler's alone, or with the warm-up's)."""
        if self.warmup is None:
            self.scheduler.load_state_dict(state)
        else:
            self.scheduler.load_state_dict(state["scheduler"])
            self.warmup.load_state_dict(state["warmup"])


__all__ = ["CADENCES", "PiecewiseLinearLR", "Schedule"]
