"""Training recipes: an optimizer and an LR schedule by name, stepped at the right cadence.

=================  ====================================================================  ========
recipe             optimizer and schedule                                                steps
=================  ====================================================================  ========
``onecycle_adam``  Adam; OneCycleLR, linear, LRMIN = LRMAX/10 -> LRMAX at ``pct_start``  per batch
                   (end of epoch 5 of 24) -> back to LRMIN at the end, no annihilation
``onecycle_sgd``   SGD, Nesterov; the same OneCycleLR from LRMAX 0.4, the peak of        per batch
                   cifar10-fast's 24-epoch ResNet-9 (use with weight decay 5e-4)
``plateau_sgd``    SGD momentum 0.9 from 0.1; ReduceLROnPlateau(x0.1) on the test loss   per epoch
``step_sgd``       SGD momentum 0.9 from 0.01; StepLR x0.1 every 20 epochs               per epoch
=================  ====================================================================  ========

OneCycleLR also cycles the momentum (SGD's momentum, Adam's beta1) against the LR: 0.95 at LRMIN, 0.85
at LRMAX (PyTorch's default, as in Smith's paper; cifar10-fast keeps SGD's at 0.9). All take ``weight_decay``
from the config; the loss (with ``label_smoothing``) is built by
:func:`build_criterion`. Sources: Smith & Topin, "Super-Convergence" (2017,
https://arxiv.org/abs/1708.07120) for OneCycle; PyTorch's ``torch.optim.lr_scheduler`` for the
schedulers themselves.

Example::

    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=len(loader))
    for epoch in range(cfg.epochs):
        for batch in loader:
            ...; optimizer.step(); schedule.after_batch()
        schedule.after_epoch(test_loss)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR, ReduceLROnPlateau, StepLR

if TYPE_CHECKING:
    from .config import TrainConfig

CADENCES = ("batch", "epoch", "plateau")


@dataclass(frozen=True)
class Recipe:
    """A named optimizer + scheduler pair.

    Attributes:
        name: registry key.
        description: one line for tables and ``--help``.
        default_lr: the LR used when ``TrainConfig.max_lr`` is None.
        cadence: ``"batch"`` (scheduler steps after every optimizer step), ``"epoch"`` (after
            every epoch) or ``"plateau"`` (after every epoch, given the test loss).
        build: ``(params, config, steps_per_epoch) -> (optimizer, scheduler)``.
        uses_min_lr: the schedule starts and ends at ``TrainConfig.min_lr`` (LRMIN); the others ignore it.
    """

    name: str
    description: str
    default_lr: float
    cadence: str
    build: Callable[..., tuple[Optimizer, LRScheduler | ReduceLROnPlateau]]
    uses_min_lr: bool = False


def _onecycle(optimizer: Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> OneCycleLR:
    """The OneCycle schedule both ``onecycle_*`` recipes step per batch: linear LRMIN -> LRMAX over
    ``cfg.pct_start`` of the steps, linear back to LRMIN (momentum cycled 0.95 -> 0.85 -> 0.95)."""
    max_lr, min_lr = cfg.resolved_max_lr, cfg.resolved_min_lr
    return OneCycleLR(
        optimizer, max_lr=max_lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=cfg.pct_start, anneal_strategy="linear", div_factor=max_lr / min_lr,
        final_div_factor=1.0,  # end at LRMIN itself: no annihilation phase below it
        three_phase=False,
    )


def _onecycle_adam(params, cfg: TrainConfig, steps_per_epoch: int):
    optimizer = Adam(params, lr=cfg.resolved_min_lr, weight_decay=cfg.weight_decay)
    return optimizer, _onecycle(optimizer, cfg, steps_per_epoch)


def _onecycle_sgd(params, cfg: TrainConfig, steps_per_epoch: int):
    optimizer = SGD(params, lr=cfg.resolved_min_lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    return optimizer, _onecycle(optimizer, cfg, steps_per_epoch)


def _plateau_sgd(params, cfg: TrainConfig, steps_per_epoch: int):
    optimizer = SGD(params, lr=cfg.resolved_max_lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return optimizer, ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=2)


def _step_sgd(params, cfg: TrainConfig, steps_per_epoch: int):
    optimizer = SGD(params, lr=cfg.resolved_max_lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return optimizer, StepLR(optimizer, step_size=20, gamma=0.1)


#: The recipes by name.
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        # default_lr 0.005 for Adam: the best of the GPU report's LR sweep (LRMAX 5e-4 to 2e-2, 24 epochs of
        # the main job on an H200: 90.29% at 5e-3 vs 89.94% mean of 3 seeds at 1e-2, the earlier default;
        # results/gpu-nvidia-h200/gpu_report.json). README "Choosing LRMAX" has the whole sweep.
        Recipe("onecycle_adam", "Adam + OneCycleLR (linear, LRMAX/10 -> LRMAX -> LRMAX/10), per batch",
               0.005, "batch", _onecycle_adam, uses_min_lr=True),
        # default_lr 0.4: cifar10-fast's peak for this network at batch 512 on the mean loss (its SGD takes
        # lr 0.4/512 on the summed loss with weight decay 5e-4*512: the same steps), with Nesterov momentum
        # and weight decay 5e-4 (D. Page, "How to train your ResNet", 2018; davidcpage/cifar10-fast).
        Recipe("onecycle_sgd", "SGD(Nesterov) + the same OneCycleLR, per batch",
               0.4, "batch", _onecycle_sgd, uses_min_lr=True),
        Recipe("plateau_sgd", "SGD(momentum 0.9) from 0.1 + ReduceLROnPlateau(x0.1) on test loss, per epoch",
               0.1, "plateau", _plateau_sgd),
        Recipe("step_sgd", "SGD(momentum 0.9) from 0.01 + StepLR(x0.1 every 20 epochs), per epoch",
               0.01, "epoch", _step_sgd),
    )
}


class Schedule:
    """Steps a scheduler at its recipe's cadence, so training loops need not know the recipe.

    Call :meth:`after_batch` after every ``optimizer.step()`` and :meth:`after_epoch` after every
    epoch's evaluation.
    """

    def __init__(self, optimizer: Optimizer, scheduler, cadence: str):
        if cadence not in CADENCES:
            raise ValueError(f"cadence {cadence!r} is not one of {CADENCES}")
        self.optimizer, self.scheduler, self.cadence = optimizer, scheduler, cadence

    @property
    def lr(self) -> float:
        """The LR the next optimizer step will use (first parameter group)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def after_batch(self) -> None:
        if self.cadence == "batch":
            self.scheduler.step()

    def after_epoch(self, test_loss: float) -> None:
        if self.cadence == "epoch":
            self.scheduler.step()
        elif self.cadence == "plateau":
            self.scheduler.step(test_loss)

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


def build_optimizer(model: nn.Module, cfg: TrainConfig, steps_per_epoch: int) -> tuple[Optimizer, Schedule]:
    """The optimizer and its :class:`Schedule` for ``cfg.recipe``.

    Args:
        model: the model whose parameters are optimized.
        cfg: the run's config (recipe, LRs, weight decay, epochs, pct_start).
        steps_per_epoch: optimizer steps per epoch (``len(train_loader)``), >= 1.

    Raises:
        ValueError: steps_per_epoch < 1.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    recipe = RECIPES[cfg.recipe]
    optimizer, scheduler = recipe.build(model.parameters(), cfg, steps_per_epoch)
    return optimizer, Schedule(optimizer, scheduler, recipe.cadence)


def build_criterion(cfg: TrainConfig) -> nn.CrossEntropyLoss:
    """``CrossEntropyLoss`` (mean over the batch) with the config's label smoothing."""
    return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The LR of every optimizer step of a run, without training (for plots and checks).

    Runs the recipe's real scheduler on a dummy parameter. For ``plateau_sgd`` the test loss is
    not known in advance, so the preview assumes it keeps improving (the LR never drops).

    Returns:
        ``epochs * steps_per_epoch`` floats: entry ``i`` is the LR used by step ``i``.
    """
    dummy = nn.Linear(1, 1)
    optimizer, schedule = build_optimizer(dummy, cfg, steps_per_epoch)
    lrs = []
    for epoch in range(cfg.epochs):
        for _ in range(steps_per_epoch):
            lrs.append(schedule.lr)
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(test_loss=1.0 / (epoch + 1))
    return lrs


__all__ = ["RECIPES", "Recipe", "Schedule", "build_criterion", "build_optimizer", "lr_schedule"]
