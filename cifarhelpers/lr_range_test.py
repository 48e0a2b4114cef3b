"""The LR range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017,
https://arxiv.org/abs/1506.01186), run with torch-lr-finder's ``LRFinder``.

The LR grows exponentially from ``start_lr`` to ``end_lr`` over ``num_iter`` mini-batches while the
(smoothed) training loss is recorded; the suggested max LR is the point of steepest descent of
the loss curve (torch-lr-finder's ``plot(suggest_lr=True)``). Then the model is restored: the test
never leaves its weights, BatchNorm statistics or an LR scheduler changed, even when it stops on a
NaN loss or an exception.

Example::

    result = lr_range_test(model, train_loader, device=device, num_iter=100)
    result.suggested_lr, result.max_lr, result.min_lr     # LRMAX = suggestion, LRMIN = LRMAX / 10
    result = run_lr_range_test(cfg, num_iter=100)         # a TrainConfig's model, data and loader
    fig = cifarhelpers.plots.plot_lr_range_test(result)
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .data import CIFAR10Data
from .devices import resolve_device
from .errors import ConfigError, DivergenceError
from .loaders import prepare_data
from .model_state import preserved
from .models import build_model
from .recipes import build_criterion
from .reproducibility import seed_everything

#: Points skipped at each end of the curve before suggesting an LR (torch-lr-finder's defaults).
SKIP_START, SKIP_END = 10, 5
#: Fewest iterations a test can suggest from with the default skips.
MIN_ITERATIONS = SKIP_START + SKIP_END + 2


@dataclass
class LRRangeTestResult:
    """Outcome of :func:`lr_range_test`.

    Attributes:
        lrs: LR of each iteration run.
        losses: training loss of each iteration, exponentially smoothed (factor ``smooth_f``).
        suggested_lr: LR at the steepest descent of ``losses`` (after skipping ``skip_start``
            first and ``skip_end`` last points).
        max_lr: LRMAX for OneCycle, the suggestion.
        min_lr: LRMIN = LRMAX / 10.
        stopped_early: the test ended before ``num_iter`` iterations.
        stop_reason: why it stopped early (loss diverged or not finite), else None.
        settings: start_lr, end_lr, num_iter, step_mode, batch_size, skip_start, skip_end, smooth_f.
        restored: every tensor of the model's ``state_dict`` (weights, BatchNorm statistics) was
            checked after the test and is bit-for-bit what it was before.
    """

    lrs: list[float]
    losses: list[float]
    suggested_lr: float
    max_lr: float
    min_lr: float
    stopped_early: bool
    stop_reason: str | None
    settings: dict = field(default_factory=dict)
    restored: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


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
) -> LRRangeTestResult:
    """Run the LR range test with Adam and suggest LRMAX and LRMIN.

    The model is always restored afterwards, whatever happens (a NaN loss, the divergence stop,
    too few points, an exception from the loader, Ctrl-C): every parameter and buffer (BatchNorm
    running statistics and batch counts included) gets its exact value from before, and the model
    returns to its device and its train/eval mode. The test's optimizer and LR scheduler are its
    own and are dropped; the parameters' ``.grad`` are put back as they were; no hook is left on
    the model.

    Args:
        model: the model to probe.
        train_loader: a DataLoader, or any re-iterable loader (e.g. a
            :class:`~cifarhelpers.device_loader.DeviceLoader`), yielding (images (B, 3, 32, 32)
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
            suggestion = steepest_descent_lr(lrs, losses, skip_start, skip_end)
        finally:
            if finder is not None:
                finder.reset()  # weights, BatchNorm statistics and batch counts, copied back in place
            model.to(home)
    restored = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    settings = dict(start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, step_mode=step_mode,
                    weight_decay=weight_decay, smooth_f=smooth_f, diverge_th=diverge_th,
                    skip_start=skip_start, skip_end=skip_end,
                    batch_size=getattr(train_loader, "batch_size", None))
    return LRRangeTestResult(lrs=lrs, losses=losses, suggested_lr=suggestion, max_lr=suggestion,
                             min_lr=suggestion / 10.0, stopped_early=stop_reason is not None,
                             stop_reason=stop_reason, settings=settings, restored=restored)


def steepest_descent_lr(lrs: list[float], losses: list[float], skip_start: int = SKIP_START, skip_end: int = SKIP_END) -> float:
    """The LR where the loss falls fastest: ``argmin(np.gradient(losses))`` over the kept points.

    The same rule as torch-lr-finder's ``plot(suggest_lr=True)`` ("steepest gradient"), computed
    without drawing. Points ``[skip_start : len - skip_end]`` are kept.
    """
    end = len(lrs) - skip_end if skip_end else len(lrs)
    kept_lrs, kept_losses = np.asarray(lrs[skip_start:end]), np.asarray(losses[skip_start:end])
    return float(kept_lrs[int(np.gradient(kept_losses).argmin())])


def run_lr_range_test(cfg: TrainConfig, *, num_iter: int = 100, start_lr: float = 1e-6, end_lr: float = 10.0,
                      data: CIFAR10Data | None = None, progress: bool = True, **options) -> LRRangeTestResult:
    """The LR range test for a :class:`~cifarhelpers.config.TrainConfig`: its model (fresh, seeded),
    data (subset, loader, transform set, batch size), device and weight decay.

    Args:
        cfg: the run's config.
        num_iter, start_lr, end_lr: the sweep (see :func:`lr_range_test`).
        data: an already loaded copy; by default ``load_cifar10(cfg.data_root)``.
        progress: progress bars while loading data.
        **options: ``smooth_f``, ``diverge_th``, ``skip_start``, ``skip_end`` of :func:`lr_range_test`.

    Returns:
        :class:`LRRangeTestResult`, its ``settings`` also naming the model, the loader and the
        number of training images drawn from.

    Raises:
        ConfigError, DataError: as :func:`cifarhelpers.loaders.prepare_data` and :func:`lr_range_test`
            (the test's settings are checked before any data is read).
    """
    check_settings(start_lr, end_lr, num_iter)  # before any data is read
    device = resolve_device(cfg.device)
    prep = prepare_data(cfg, device, data, progress)
    seed_everything(cfg.seed)
    prep.train_loader.set_epoch(cfg.seed)
    model = build_model(cfg.model).to(device)
    loader = getattr(prep.train_loader, "loader", prep.train_loader)  # the DataLoader, or the DeviceLoader itself
    result = lr_range_test(model, loader, device=device, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                           weight_decay=cfg.weight_decay, criterion=build_criterion(cfg), **options)
    result.settings.update(model=cfg.model, loader=cfg.loader, train_images=prep.train_images)
    return result
