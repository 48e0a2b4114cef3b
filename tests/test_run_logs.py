"""What a run writes to be watched (history.csv, steps.csv, TensorBoard), and ``max_lr="find"``:
the LR range test run first, recorded in the run folder, its suggestion trained at and reused on resume."""

from __future__ import annotations

import csv
import json

import pytest

from cifarhelpers.cli.train import build_parser
from cifarhelpers.errors import ConfigError
from cifarhelpers.notebook import load_lr_range_test
from cifarhelpers.training import (
    HISTORY_COLUMNS,
    METRICS_FILE,
    STEP_COLUMNS,
    TrainConfig,
    fit,
    load_checkpoint,
    lr_schedule,
    resume_config,
)
from cifarhelpers.training import train as train_module

TINY = dict(model="dilated_net", device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=2, seed=3)
STEPS_PER_EPOCH = 64 // 32


def _rows(path):
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.mark.data
@pytest.mark.usefixtures("one_thread")
def test_history_and_steps_csv_have_one_row_per_epoch_and_per_step(small_data, tmp_path):
    result = fit(TrainConfig(**TINY, max_lr=0.005, output_dir=str(tmp_path)), data=small_data, progress=False)
    columns, history = _rows(result.run_dir / "history.csv")
    assert tuple(columns) == HISTORY_COLUMNS and [int(r["epoch"]) for r in history] == [1, 2]
    assert float(history[-1]["test_accuracy"]) == result.final_test_accuracy
    columns, steps = _rows(result.run_dir / "steps.csv")
    assert tuple(columns) == STEP_COLUMNS and len(steps) == 2 * STEPS_PER_EPOCH
    assert [int(r["global_step"]) for r in steps] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert [(int(r["epoch"]), int(r["step"])) for r in steps] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    expected = lr_schedule(TrainConfig(**TINY, max_lr=0.005), STEPS_PER_EPOCH)  # the scheduler run on its own
    assert [float(r["lr"]) for r in steps] == pytest.approx(expected, rel=1e-12)
    # the mean of an epoch's step losses weighted by batch size is the epoch's train loss
    epoch1 = [float(r["loss"]) for r in steps if r["epoch"] == "1"]
    assert sum(epoch1) / len(epoch1) == pytest.approx(float(history[0]["train_loss"]), rel=1e-6)
    assert [float(r["lr"]) for r in steps] == [s["lr"] for s in result.steps]


@pytest.mark.data
@pytest.mark.usefixtures("one_thread")
def test_a_resumed_run_has_every_step_once(small_data, tmp_path, monkeypatch):
    real_epoch = train_module.train_one_epoch

    def stop_in_epoch_2(*args, epoch, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(**TINY, max_lr=0.005, output_dir=str(tmp_path)), data=small_data, progress=False)
    (run_dir,) = tmp_path.iterdir()
    assert len(_rows(run_dir / "steps.csv")[1]) == STEPS_PER_EPOCH
    assert len(load_checkpoint(run_dir)["steps"]) == STEPS_PER_EPOCH
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    fit(resume_config(run_dir), data=small_data, progress=False)
    steps = _rows(run_dir / "steps.csv")[1]
    assert [int(r["global_step"]) for r in steps] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert len(_rows(run_dir / "history.csv")[1]) == 2


@pytest.mark.data
@pytest.mark.usefixtures("one_thread")
def test_max_lr_find_runs_the_range_test_first_records_it_and_trains_at_its_suggestion(small_data, tmp_path,
                                                                                        capsys):
    cfg = TrainConfig(**TINY, max_lr="find", lr_test_iterations=17, lr_rule="steepest", output_dir=str(tmp_path))
    result = fit(cfg, data=small_data, progress=True)
    found = json.loads((result.run_dir / "lr_range_test.json").read_text())
    assert found["rule"] == "steepest" and len(found["lrs"]) == 17 and found["restored"] is True
    assert set(found["suggestions"]) == {"valley", "steepest", "min_loss"}
    metrics = json.loads((result.run_dir / METRICS_FILE).read_text())
    assert metrics["recipe"]["max_lr"] == found["suggestions"]["steepest"] == metrics["config"]["max_lr"]
    assert metrics["lr_range_test"]["suggestions"] == found["suggestions"]
    read_back, _ = load_lr_range_test(result.run_dir)  # the run's file is notebook 03's hand-off file
    assert read_back.max_lr == found["max_lr"] and found["units"]["lr"] == "learning rate"
    expected = lr_schedule(cfg.replace(max_lr=found["max_lr"]), STEPS_PER_EPOCH)
    assert [s["lr"] for s in result.steps] == pytest.approx(expected, rel=1e-12), "trained at the suggestion"
    assert (result.run_dir / "lr_range_test.png").stat().st_size > 10_000
    assert "from the LR range test (steepest; all rules: valley" in capsys.readouterr().out
    # the number, not "find", is what a resume continues with: no second range test
    assert load_checkpoint(result.run_dir)["config"]["max_lr"] == found["max_lr"]


def test_find_is_a_max_lr_for_the_cli_and_the_config_only():
    args = build_parser().parse_args(["--max-lr", "find"])
    assert args.max_lr == "find"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-lr", "fnd"])
    with pytest.raises(ConfigError, match="min_lr=0.001 with max_lr='find'"):
        TrainConfig(max_lr="find", min_lr=0.001)
    with pytest.raises(ConfigError, match=r"max_lr='fast' \(str\) is invalid"):
        TrainConfig(max_lr="fast")
    with pytest.raises(ConfigError, match="fit\\(\\) runs it first"):
        _ = TrainConfig(max_lr="find").resolved_max_lr
    with pytest.raises(ConfigError, match="lr_test_iterations=5"):
        TrainConfig(lr_test_iterations=5)


def test_tensorboard_event_files_are_written_when_tensorboard_is_installed(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from cifarhelpers.training import RunLogs

    logs = RunLogs(tmp_path)
    entry = {k: 1.0 for k in HISTORY_COLUMNS} | {"epoch": 1}
    steps = [{"epoch": 1, "step": 1, "global_step": 1, "loss": 2.3, "lr": 0.01}]
    logs.record([entry], steps, steps)
    logs.close()
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"train/loss", "train/lr", "epoch/test_accuracy"} <= set(acc.Tags()["scalars"])
