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

from cifarhelpers import train as train_module
from cifarhelpers.checkpoint import CHECKPOINT_FILE, load_checkpoint
from cifarhelpers.cli import main
from cifarhelpers.config import TrainConfig
from cifarhelpers.engine import EpochResult
from cifarhelpers.errors import DivergenceError
from cifarhelpers.runs import METRICS_FILE, WEIGHTS_FILE, resume_config
from cifarhelpers.train import fit

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
