"""Divergence: a non-finite loss stops the run at once, with a message naming epoch, step and LR
and suggesting a lower max LR; the run folder keeps the last good checkpoint and a metrics.json
that says why the run stopped."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from _reliability import comparable
from torch import nn

from cifarhelpers.cli.train import main
from cifarhelpers.errors import DivergenceError
from cifarhelpers.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    EpochResult,
    TrainConfig,
    build_optimizer,
    fit,
    load_checkpoint,
    resume_config,
    train_one_epoch,
)
from cifarhelpers.training import train as train_module

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_thread")]

TINY = dict(device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=2, seed=0)


def _run_dir(parent):
    (run_dir,) = [p for p in parent.iterdir() if p.is_dir()]
    return run_dir


def test_huge_max_lr_on_real_images_stops_at_once_and_says_where_and_what_to_do(small_data, tmp_path):
    # The custom ResNet on two real batches of 32. OneCycle starts at max_lr/10 = 1e29: the first
    # Adam step moves every weight by ~1e29 and the second forward pass overflows float32 to NaN.
    # (A max LR of 1e6 explodes the loss to ~1e14 but keeps it finite for these few steps; only
    # non-finite losses count as divergence.)
    cfg = TrainConfig(**TINY, model="custom_resnet", max_lr=1e30, output_dir=str(tmp_path))
    with pytest.raises(DivergenceError) as err:
        fit(cfg, data=small_data, progress=False)
    message = str(err.value)
    assert message.startswith("training diverged: loss is nan at epoch 1/2, step 2/2, lr ")
    lr = float(re.search(r"step 2/2, lr ([\d.]+e[+-]\d+)\. Lower", message).group(1))
    assert 1e29 < lr <= 1e30, "the LR of the failing step"
    assert "Lower the max LR (try a tenth of it, or run the LR range test)" in message
    run_dir = _run_dir(tmp_path)
    assert f"Run folder: {run_dir}" in message and "no epoch finished, so there is no checkpoint" in message

    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["status"] == "diverged" and metrics["stopped_epoch"] == 1
    assert message.startswith(metrics["stop_reason"]) and "epoch 1/2, step 2/2" in metrics["stop_reason"]
    assert metrics["history"] == [] and metrics["final_test_accuracy"] is None
    assert not (run_dir / CHECKPOINT_FILE).exists() and not (run_dir / WEIGHTS_FILE).exists()


class _BlowUpInEpoch2:
    """Wraps a recipe's Schedule: epoch 1 runs as planned, then every step of epoch 2 uses a huge LR.

    The training loop reads ``schedule.lr`` just before each step; that is where the huge LR is
    put in. ``after_batch`` lets the real scheduler set the planned LR again, so the optimizer
    state saved in a checkpoint is the planned one.
    """

    def __init__(self, schedule, lr: float):
        self.schedule, self.huge, self.epochs_done = schedule, lr, 0

    @property
    def lr(self):
        if self.epochs_done >= 1:
            for group in self.schedule.optimizer.param_groups:
                group["lr"] = self.huge
        return self.schedule.lr

    def after_batch(self):
        self.schedule.after_batch()

    def after_epoch(self, test_loss):
        self.schedule.after_epoch(test_loss)
        self.epochs_done += 1

    def state_dict(self):
        return self.schedule.state_dict()

    def load_state_dict(self, state):
        self.schedule.load_state_dict(state)


def test_divergence_in_epoch_2_keeps_the_epoch_1_checkpoint_which_resumes(small_data, tmp_path, monkeypatch):
    real_build = train_module.build_optimizer

    def build_optimizer(model, cfg, steps_per_epoch):
        optimizer, schedule = real_build(model, cfg, steps_per_epoch)
        return optimizer, _BlowUpInEpoch2(schedule, lr=1e30)

    monkeypatch.setattr(train_module, "build_optimizer", build_optimizer)
    cfg = TrainConfig(**TINY, model="dilated_net", max_lr=0.005, output_dir=str(tmp_path / "runs"))
    with pytest.raises(DivergenceError, match=r"at epoch 2/2, step \d/2, lr 1e\+30\. Lower the max LR") as err:
        fit(cfg, data=small_data, progress=False)
    assert "checkpoint.pt keeps epoch 1/2" in str(err.value)
    run_dir = _run_dir(tmp_path / "runs")
    state = load_checkpoint(run_dir)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point()), \
        "the kept checkpoint is the last good one"
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["status"] == "diverged" and metrics["stopped_epoch"] == 2
    assert str(err.value).startswith(metrics["stop_reason"]) and "epoch 2/2" in metrics["stop_reason"]
    assert comparable(metrics["history"]) == comparable(state["history"]) and len(state["history"]) == 1

    # the kept checkpoint is usable: with the LR back to normal, resuming finishes the run
    monkeypatch.setattr(train_module, "build_optimizer", real_build)
    result = fit(resume_config(run_dir), data=small_data, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2] and result.metrics["status"] == "completed"
    assert math.isfinite(result.history[-1]["train_loss"])


def test_a_non_finite_test_loss_stops_the_run_before_its_checkpoint(small_data, tmp_path, monkeypatch):
    """Weights that overflowed in an epoch's last step show up only in the test loss; that epoch
    must not be checkpointed over the last good one."""
    real_evaluate = train_module.evaluate
    calls = []

    def evaluate(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        calls.append(result)
        return result if len(calls) == 1 else EpochResult(math.inf, 0.1, result.images, result.seconds)

    monkeypatch.setattr(train_module, "evaluate", evaluate)
    cfg = TrainConfig(**TINY, model="dilated_net", max_lr=0.005, output_dir=str(tmp_path))
    with pytest.raises(DivergenceError, match=r"the test loss is inf \(train loss [\d.]+\) after epoch 2/2, "
                                              r"step 2/2, lr [\d.e+-]+: the weights are no longer finite\. "
                                              r"Lower the max LR"):
        fit(cfg, data=small_data, progress=False)
    run_dir = _run_dir(tmp_path)
    assert load_checkpoint(run_dir)["epoch"] == 1
    assert json.loads((run_dir / METRICS_FILE).read_text())["status"] == "diverged"


def test_cli_reports_divergence_with_exit_status_1(small_root, tmp_path, capsys):
    status = main(["--data-root", str(small_root), "--output-dir", str(tmp_path), "--model", "dilated_net",
                   "--device", "cpu", "--train-subset", "64", "--test-subset", "50", "--batch-size", "32",
                   "--epochs", "1", "--max-lr", "1e30", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1
    assert "cifar-train: error: training diverged: loss is nan at epoch 1/1" in err and "Lower the max LR" in err
    assert json.loads((_run_dir(tmp_path) / METRICS_FILE).read_text())["status"] == "diverged"


# -- sync_every > 1: the loss is read back every few steps (the GPU path) -------------------------------------

class _LossTurns(nn.Module):
    """Cross-entropy that is ``value`` (NaN or inf) at call ``bad`` (1-based); counts its calls, i.e. the
    steps run. After that step the weights are no longer finite, so later losses are NaN too."""

    def __init__(self, bad: int | None = None, value: float = math.nan):
        super().__init__()
        self.bad, self.value, self.calls = bad, value, 0

    def forward(self, logits, labels):
        self.calls += 1
        loss = nn.functional.cross_entropy(logits, labels)
        return loss * self.value if self.calls == self.bad else loss


def _sync_run(criterion: nn.Module, sync_every: int, steps: int = 7):
    """One epoch (epoch 2 of 5) of a tiny linear model on synthetic batches, SGD at LR 0.01."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    optimizer, schedule = build_optimizer(model, TrainConfig(recipe="step_sgd", epochs=5, max_lr=0.01), steps)
    batches = [(torch.randn(8, 3, 4, 4), torch.randint(0, 10, (8,))) for _ in range(steps)]
    return train_one_epoch(model, batches, criterion, optimizer, schedule, device=torch.device("cpu"), epoch=1,
                           epochs=5, sync_every=sync_every, progress=False)


@pytest.mark.parametrize(("sync_every", "bad", "value", "caught_after"), [
    (3, 2, math.nan, 3),  # by the next read-back, at step 3
    (3, 7, math.nan, 7),  # the epoch's last step, not a multiple of 3: by the read-back at the epoch's end
    (4, 5, math.inf, 7),  # steps 5-7 after the read-back at 4: at the epoch's end
    (7, 1, math.nan, 7),  # once per epoch (what a GPU does by default)
])
def test_a_non_finite_loss_between_read_backs_is_caught_and_named_by_its_own_step(sync_every, bad, value,
                                                                                caught_after):
    criterion = _LossTurns(bad, value)
    with pytest.raises(DivergenceError) as err:
        _sync_run(criterion, sync_every)
    assert criterion.calls == caught_after, "stopped at the first read-back after the bad step"
    assert str(err.value).startswith(f"training diverged: loss is {value} at epoch 2/5, step {bad}/7, lr 0.01. "
                                     "Lower the max LR")


def test_a_finite_run_read_back_every_3_steps_is_not_flagged_and_matches_every_step_read_back():
    every_3 = _sync_run(_LossTurns(), sync_every=3)
    every_1 = _sync_run(_LossTurns(), sync_every=1)
    assert len(every_3.step_losses) == 7 and all(math.isfinite(v) for v in every_3.step_losses)
    assert every_3.step_losses == every_1.step_losses and every_3.loss == every_1.loss
    assert every_3.accuracy == every_1.accuracy and every_3.images == 56
