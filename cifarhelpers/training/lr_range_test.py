"""The LR range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017,
https://arxiv.org/abs/1506.01186), run with torch-lr-finder's ``LRFinder``.

The LR grows exponentially from ``start_lr`` to ``end_lr`` over ``num_iter`` mini-batches while the
(smoothed) training loss is recorded; every rule of :mod:`cifarhelpers.training.lr_suggestions` (fastai's
valley, steepest descent and min_loss / 10, the default) suggests an LRMAX from the curve. Then the
model is restored: the test never leaves its weights, BatchNorm statistics or an LR scheduler
changed, even when it stops on a NaN loss or an exception.

Example::

    result = lr_range_test(model, train_loader, device=device, num_iter=100)
    result.suggestions, result.rule                       # {"valley": ..., "steepest": ..., "min_loss": ...}
    result.max_lr, result.min_lr                          # LRMAX = the rule's suggestion, LRMIN = LRMAX / 10
    result = run_lr_range_test(cfg)                       # a TrainConfig's model, data, loader, iterations, rule
    fig = cifarhelpers.training.plot_lr_range_test(result)

``cifar-train --max-lr find`` runs the same test before training (:func:`cifarhelpers.training.train.fit`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from cifarhelpers.checks import check_choice
from cifarhelpers.data import CIFAR10Data
from cifarhelpers.errors import ConfigError, DivergenceError
from cifarhelpers.models import build_model, preserved

from .config import TrainConfig
from .devices import resolve_device
from .loaders import Prepared, prepare_data
from .lr_range_result import LRRangeTestResult
from .lr_suggestions import DEFAULT_RULE, RULES, SKIP_END, SKIP_START, suggest_lrs
from .recipes import RECIPES, build_criterion
from .reproducibility import seed_everything

#: How far (a factor) the LR used may be from the recipe's default before both are printed.
FAR_FROM_DEFAULT = 3.0


class _FiniteLoss(nn.Module):
    """Wraps a criterion so a NaN or infinite loss ends the range test at once."""

    def __init__(self, criterion: nn.Module, optimizer: torch.optim.Optimizer):
        super().__init__()
        self.criterion = criterion
        self.optimizer = optimizer

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.criterion(logits, labels)
        if not torch.isfinite(loss.detach()).item():
            lr = self.optimizer.param_groups[0]["lr"]  # the LR of the step being taken
            raise DivergenceError(f"loss is {loss.item()} at lr {lr:.3g}")
        return loss


def check_settings(start_lr: float, end_lr: float, num_iter: int, step_mode: str = "exp",
                   skip_start: int = SKIP_START, skip_end: int = SKIP_END) -> None:
    """Validate the LR range test's settings (done before any data is read or model built).

    Raises:
        ConfigError: the message names the setting, its value and the valid range.
    """
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))

    if not (number(start_lr) and number(end_lr) and 0 < start_lr < end_lr):
        raise ConfigError(f"LR range test needs finite numbers 0 < start_lr < end_lr, got start_lr={start_lr!r}, "
                          f"end_lr={end_lr!r} (e.g. start_lr=1e-6, end_lr=10)")
    if step_mode not in ("exp", "linear"):
        raise ConfigError(f"step_mode={step_mode!r} is invalid: choose 'exp' or 'linear'")
    for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name}={value!r} is invalid: it must be an integer >= 0")
    if not isinstance(num_iter, int) or isinstance(num_iter, bool) or num_iter < skip_start + skip_end + 2:
        raise ConfigError(f"num_iter={num_iter!r} is too small: it must be an integer >= "
                          f"skip_start + skip_end + 2 = {skip_start + skip_end + 2}")


def lr_range_test(
    model: nn.Module,
    train_loader: Iterable,
    *,
    device: torch.device | str,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    num_iter: int = 100,
    step_mode: str = "exp",
    weight_decay: float = 0.0,
    criterion: nn.Module | None = None,
    smooth_f: float = 0.05,
    diverge_th: float = 5.0,
    skip_start: int = SKIP_START,
    skip_end: int = SKIP_END,
    rule: str = DEFAULT_RULE,
) -> LRRangeTestResult:
    """Run the LR range test with Adam and suggest LRMAX (by every rule) and LRMIN.

    The model is always restored afterwards, whatever happens (a NaN loss, the divergence stop,
    too few points, an exception from the loader, Ctrl-C): every parameter and buffer (BatchNorm
    running statistics and batch counts included) gets its exact value from before, and the model
    returns to its device and its train/eval mode. The test's optimizer and LR scheduler are its
    own and are dropped; the parameters' ``.grad`` are put back as they were; no hook is left on
    the model.

    Args:
        model: the model to probe.
        train_loader: a DataLoader, or any re-iterable loader (e.g. a
            :class:`~cifarhelpers.data.device_loader.DeviceLoader`), yielding (images (B, 3, 32, 32)
            float32, labels (B,) int64); it is restarted when exhausted, so ``num_iter`` may exceed
            its length.
        device: where to run.
        start_lr, end_lr: LR range; 0 < start_lr < end_lr.
        num_iter: iterations, >= skip_start + skip_end + 2.
        step_mode: ``"exp"`` (exponential growth, the usual choice) or ``"linear"``.
        weight_decay: Adam's weight decay.
        criterion: loss; default ``nn.CrossEntropyLoss()``.
        smooth_f, diverge_th: torch-lr-finder's loss smoothing factor and the divergence stop
            (loss > diverge_th x best loss).
        skip_start, skip_end: points ignored at each end when suggesting an LR.
        rule: the suggestion used as LRMAX (:data:`cifarhelpers.training.lr_suggestions.RULES`).

    Returns:
        :class:`LRRangeTestResult`. A NaN or infinite loss ends the test at once; that step is
        not recorded and ``stop_reason`` names the iteration and LR.

    Raises:
        ConfigError: invalid settings, or too few finite points before the loss diverged to
            suggest an LR (the message says how many and what to change).
    """
    with warnings.catch_warnings():  # torch-lr-finder imports tqdm.autonotebook, which warns in notebooks
        warnings.filterwarnings("ignore", message=".*tqdm.autonotebook.*")
        from torch_lr_finder import LRFinder
        from torch_lr_finder.lr_finder import TrainDataLoaderIter

    check_settings(start_lr, end_lr, num_iter, step_mode, skip_start, skip_end)
    check_choice("lr_rule", rule, tuple(RULES))
    device = torch.device(device)
    first = next(iter(model.parameters()), None)
    home = first.device if first is not None else device
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    finder = None
    stop_reason = None
    # preserved(): every module's mode and the caller's gradients come back, not the test's last ones
    with preserved(model, grads=True):
        try:
            model.to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=start_lr, weight_decay=weight_decay)
            guard = _FiniteLoss(criterion if criterion is not None else nn.CrossEntropyLoss(), optimizer)
            finder = LRFinder(model, optimizer, guard, device=device)  # keeps a deep copy of the state
            batches = (train_loader if isinstance(train_loader, (torch.utils.data.DataLoader, TrainDataLoaderIter))
                       else TrainDataLoaderIter(train_loader))
            with contextlib.redirect_stdout(io.StringIO()):  # it prints "Learning rate search finished..."
                try:
                    finder.range_test(batches, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                                      step_mode=step_mode, smooth_f=smooth_f, diverge_th=diverge_th)
                except DivergenceError as err:
                    stop_reason = f"stopped at iteration {len(finder.history['lr']) + 1}: {err}"
            lrs = [float(v) for v in finder.history["lr"]]
            losses = [float(v) for v in finder.history["loss"]]
            if stop_reason is None and len(lrs) < num_iter:
                stop_reason = f"stopped at iteration {len(lrs)}: smoothed loss above {diverge_th:g} x its best"
            if len(lrs) < skip_start + skip_end + 2:
                raise ConfigError(
                    f"the LR range test recorded only {len(lrs)} points before the loss diverged ({stop_reason}); "
                    f"it needs {skip_start + skip_end + 2} to suggest an LR. Lower start_lr or end_lr, or raise "
                    "num_iter."
                )
            suggestions = suggest_lrs(lrs, losses, skip_start, skip_end)
        finally:
            if finder is not None:
                finder.reset()  # weights, BatchNorm statistics and batch counts, copied back in place
            model.to(home)
    restored = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    settings = dict(start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, step_mode=step_mode,
                    weight_decay=weight_decay, smooth_f=smooth_f, diverge_th=diverge_th,
                    skip_start=skip_start, skip_end=skip_end,
                    batch_size=getattr(train_loader, "batch_size", None))
    return LRRangeTestResult(lrs=lrs, losses=losses, suggestions=suggestions, rule=rule,
                             stopped_early=stop_reason is not None, stop_reason=stop_reason, settings=settings,
                             restored=restored)


def run_lr_range_test(cfg: TrainConfig, *, num_iter: int | None = None, start_lr: float = 1e-6,
                      end_lr: float = 10.0, data: CIFAR10Data | None = None, progress: bool = True,
                      **options) -> LRRangeTestResult:
    """The LR range test for a :class:`~cifarhelpers.training.config.TrainConfig`: its model (fresh, seeded),
    data (subset, loader, transform set, batch size), device, weight decay, iterations
    (``cfg.lr_test_iterations``) and rule (``cfg.lr_rule``).

    Args:
        cfg: the run's config.
        num_iter: iterations; None takes ``cfg.lr_test_iterations``.
        start_lr, end_lr: the sweep (see :func:`lr_range_test`).
        data: an already loaded copy; by default ``load_cifar10(cfg.data_root)``.
        progress: progress bars while loading data.
        **options: ``smooth_f``, ``diverge_th``, ``skip_start``, ``skip_end`` of :func:`lr_range_test`.

    Returns:
        :class:`LRRangeTestResult`, its ``settings`` also naming the model, the loader and the
        number of training images drawn from.

    Raises:
        ConfigError, DataError: as :func:`cifarhelpers.training.loaders.prepare_data` and :func:`lr_range_test`
            (the test's settings are checked before any data is read).
    """
    num_iter = cfg.lr_test_iterations if num_iter is None else num_iter
    check_settings(start_lr, end_lr, num_iter)  # before any data is read
    device = resolve_device(cfg.device)
    prep = prepare_data(cfg, device, data, progress)
    return range_test_for_run(cfg, prep, device, num_iter=num_iter, start_lr=start_lr, end_lr=end_lr, **options)


def range_test_for_run(cfg: TrainConfig, prep: Prepared, device: torch.device, *, num_iter: int | None = None,
                       start_lr: float = 1e-6, end_lr: float = 10.0, **options) -> LRRangeTestResult:
    """The LR range test on a run's already prepared data (what ``max_lr="find"`` runs inside
    :func:`~cifarhelpers.training.train.fit`): a fresh model seeded with ``cfg.seed``, the train loader
    seeded with it too, ``cfg``'s weight decay, loss, iterations and rule.

    Raises:
        ConfigError: as :func:`lr_range_test`.
    """
    num_iter = cfg.lr_test_iterations if num_iter is None else num_iter
    seed_everything(cfg.seed)
    prep.train_loader.set_epoch(cfg.seed)
    model = build_model(cfg.model, logit_scale=cfg.logit_scale).to(device)
    loader = getattr(prep.train_loader, "loader", prep.train_loader)  # the DataLoader, or the DeviceLoader itself
    result = lr_range_test(model, loader, device=device, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                           weight_decay=cfg.weight_decay, criterion=build_criterion(cfg), rule=cfg.lr_rule,
                           **options)
    result.settings.update(model=cfg.model, loader=prep.loader, train_images=prep.train_images)
    return result


def describe_lr(cfg: TrainConfig, source: str) -> str:
    """One line naming the LRMAX a run uses (and LRMIN, for a recipe that has one) and where it came from;
    when LRMAX differs from the recipe's default by more than :data:`FAR_FROM_DEFAULT` times either way,
    the default and the factor too, so a surprising LR is seen before training (``cifar-train`` and
    notebook 04 print it).

    Args:
        cfg: the run's config; ``cfg.max_lr`` must not be ``"find"`` (resolve it first).
        source: where the LRMAX came from, e.g. ``"the LR range test (valley)"``.

    Raises:
        ConfigError: ``cfg.max_lr`` is still ``"find"``.
    """
    recipe = RECIPES[cfg.recipe]
    max_lr, default_lr = cfg.resolved_max_lr, recipe.default_lr
    text = f"LRMAX {max_lr:.3g}" + (f" (LRMIN {cfg.resolved_min_lr:.3g})" if recipe.uses_min_lr else "")
    text += f" from {source}"
    factor = max(max_lr, default_lr) / min(max_lr, default_lr)
    if factor > FAR_FROM_DEFAULT:
        side = "below" if max_lr < default_lr else "above"
        text += (f"; that is {factor:.0f}x {side} the recipe's default LRMAX {default_lr:.3g}: check the LR range "
                 "test's curve (notebook 03) or pass max_lr to choose")
    return text
