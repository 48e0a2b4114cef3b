"""The LR range test on real batches: it always restores the model exactly (weights, BatchNorm
statistics and counts, device, train/eval mode, gradients), whether it ends normally, on a NaN
loss, with too few points, or on an exception, and it stops at once on a non-finite loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cifarhelpers.errors import ConfigError
from cifarhelpers.models import build_model
from cifarhelpers.training import TrainConfig, lr_range_test, prepare_data, run_lr_range_test

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_thread")]

CFG = TrainConfig(model="dilated_net", device="cpu", train_subset=32, batch_size=16, seed=0)
#: Short tests: the restoring is what is tested, not the suggestion (2 CPU cores).
SHORT = dict(skip_start=2, skip_end=1)


@pytest.fixture(scope="module")
def loader(small_data):
    """A DataLoader over 32 real, augmented training images in batches of 16."""
    prep = prepare_data(CFG, torch.device("cpu"), small_data, progress=False)
    prep.train_loader.set_epoch(0)
    return prep.train_loader.loader


class _Spy(nn.Module):
    """Cross-entropy that records whether the model's weights moved, and turns NaN from call ``nan_from`` on."""

    def __init__(self, model: nn.Module, nan_from: int | None = None):
        super().__init__()
        self.watch = [model]  # a list: not registered as a submodule
        self.first = next(model.parameters()).detach().clone()
        self.calls, self.nan_from, self.moved = 0, nan_from, False

    def forward(self, logits, labels):
        self.calls += 1
        self.moved |= not torch.equal(next(self.watch[0].parameters()).detach(), self.first)
        loss = nn.functional.cross_entropy(logits, labels)
        return loss * math.nan if self.nan_from is not None and self.calls >= self.nan_from else loss


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_restored(model: nn.Module, before: dict[str, torch.Tensor], *, training: bool) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"not restored: {changed[:5]}"
    assert any("running_var" in k for k in before) and any("num_batches_tracked" in k for k in before)
    assert model.training is training
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())
    assert next(model.parameters()).device.type == "cpu"


def _fresh_model(eval_mode: bool = True) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("dilated_net")
    return model.eval() if eval_mode else model


def test_a_full_test_suggests_an_lr_and_restores_weights_and_batchnorm_buffers_exactly(loader):
    model = _fresh_model()
    before = _state(model)
    spy = _Spy(model)
    result = lr_range_test(model, loader, device="cpu", start_lr=1e-5, end_lr=1.0, num_iter=8, criterion=spy,
                           **SHORT)
    assert spy.moved, "the weights did change during the test (so restoring them is not trivial)"
    assert len(result.lrs) == len(result.losses) == 8 and not result.stopped_early
    assert result.lrs == sorted(result.lrs) and result.lrs[0] == pytest.approx(1e-5)
    kept = result.lrs[2:7]  # the points kept after skipping 2 first and 1 last
    assert result.suggestions["valley"] in kept and result.suggestions["steepest"] in kept
    assert result.suggestions["min_loss"] * 10 in kept
    assert result.rule == "min_loss" and result.max_lr == result.suggestions["min_loss"], "the default rule"
    assert result.min_lr == pytest.approx(result.max_lr / 10)
    _assert_restored(model, before, training=False)


def test_a_nan_loss_stops_the_test_at_once_and_the_model_is_restored(loader):
    model = _fresh_model(eval_mode=False)
    before = _state(model)
    spy = _Spy(model, nan_from=7)
    result = lr_range_test(model, loader, device="cpu", start_lr=1e-5, end_lr=1.0, num_iter=20, criterion=spy,
                           **SHORT)
    assert spy.calls == 7, "no step after the NaN"
    assert result.stopped_early and len(result.lrs) == 6
    assert result.stop_reason.startswith("stopped at iteration 7: loss is nan at lr ")
    assert all(math.isfinite(v) for v in result.losses)
    _assert_restored(model, before, training=True)


def test_a_nan_before_enough_points_is_an_error_and_the_model_is_still_restored(loader):
    model = _fresh_model()
    before = _state(model)
    with pytest.raises(ConfigError, match=r"recorded only 2 points before the loss diverged \(stopped at iteration 3: "
                                          r"loss is nan at lr .*\); it needs 17 to suggest an LR\. Lower start_lr"):
        lr_range_test(model, loader, device="cpu", num_iter=30, criterion=_Spy(model, nan_from=3))
    _assert_restored(model, before, training=False)


class _FailingLoader:
    """Yields real batches, then fails like a lost data source."""

    def __init__(self, batches, fail_after: int):
        self.batches, self.fail_after = batches, fail_after

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if i == self.fail_after:
                raise RuntimeError("the data source went away")
            yield batch


def test_an_exception_from_the_loader_propagates_and_the_model_is_restored(loader):
    model = _fresh_model()
    before = _state(model)
    batches = list(loader) * 2
    with pytest.raises(RuntimeError, match="the data source went away"):
        lr_range_test(model, _FailingLoader(batches, fail_after=3), device="cpu", num_iter=8, **SHORT)
    _assert_restored(model, before, training=False)


def test_gradients_the_caller_had_are_put_back(loader):
    model = _fresh_model()
    images, labels = next(iter(loader))
    nn.functional.cross_entropy(model(images), labels).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    lr_range_test(model, loader, device="cpu", num_iter=5, **SHORT)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))


def test_run_lr_range_test_works_with_the_device_loader_too(small_data):
    result = run_lr_range_test(CFG.replace(loader="device"), num_iter=17, start_lr=1e-5, end_lr=1.0,
                               data=small_data, progress=False)
    assert len(result.lrs) == 17 and result.settings["batch_size"] == 16
    assert 1e-5 <= result.max_lr <= 1.0 and result.settings["loader"] == "device"
    assert result.settings["train_images"] == 32 and result.settings["model"] == "dilated_net"


def test_the_result_reports_whether_the_model_was_restored(loader, monkeypatch):
    from torch_lr_finder import LRFinder

    model = _fresh_model()
    result = lr_range_test(model, loader, device="cpu", num_iter=8, **SHORT)
    assert result.restored is True and result.to_dict()["restored"] is True
    monkeypatch.setattr(LRFinder, "reset", lambda self: None)  # as if torch-lr-finder forgot to restore
    assert lr_range_test(_fresh_model(), loader, device="cpu", num_iter=8, **SHORT).restored is False


class _RisesAfter(nn.Module):
    """Cross-entropy, then from call ``after + 1`` on ``factor`` times it: finite, but far above the best."""

    def __init__(self, after: int, factor: float):
        super().__init__()
        self.after, self.factor, self.calls = after, factor, 0

    def forward(self, logits, labels):
        self.calls += 1
        loss = nn.functional.cross_entropy(logits, labels)
        return loss * self.factor if self.calls > self.after else loss


def test_a_loss_rising_past_5x_its_best_stops_the_test_early_and_the_model_is_restored(loader):
    """torch-lr-finder's divergence stop (diverge_th=5, the default): the smoothed loss 0.05 x 200 L + 0.95 L
    (about 11 L) at iteration 7 passes 5x the best, so the test ends there, 5 iterations early."""
    model = _fresh_model(eval_mode=False)
    before = _state(model)
    criterion = _RisesAfter(after=6, factor=200.0)
    result = lr_range_test(model, loader, device="cpu", start_lr=1e-5, end_lr=1e-3, num_iter=12,
                           criterion=criterion, **SHORT)
    assert criterion.calls == 7, "no iteration after the one past 5x"
    assert result.stopped_early and len(result.lrs) == len(result.losses) == 7
    assert result.stop_reason == "stopped at iteration 7: smoothed loss above 5 x its best"
    assert result.losses[-1] > 5 * min(result.losses) and max(result.losses[:-1]) < 5 * min(result.losses)
    assert all(math.isfinite(v) for v in result.losses), "a finite loss: the 5x stop, not the NaN stop"
    assert result.settings["diverge_th"] == 5.0
    _assert_restored(model, before, training=True)

    # the same rise under a threshold above 200x runs all its iterations
    unstopped = lr_range_test(_fresh_model(), loader, device="cpu", start_lr=1e-5, end_lr=1e-3, num_iter=12,
                              criterion=_RisesAfter(after=6, factor=200.0), diverge_th=1000.0, **SHORT)
    assert not unstopped.stopped_early and unstopped.stop_reason is None and len(unstopped.lrs) == 12
