"""Checkpoints: what they hold, a run killed with SIGKILL and resumed ends exactly like the run
left alone, files that would run code are refused, weights from another model or a resume with
another config name the mismatch, and a failed write keeps the earlier checkpoint."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _reliability import SUBPROCESS_ENV, comparable, snapshot, temp_files

from cifarhelpers.cli.train import main
from cifarhelpers.errors import CheckpointError, RunWriteError
from cifarhelpers.models import build_model
from cifarhelpers.training import (
    CHECKPOINT_FILE,
    FORMAT,
    METRICS_FILE,
    WEIGHTS_FILE,
    TrainConfig,
    check_resumable,
    fit,
    load_checkpoint,
    load_weights,
    resume_config,
    safe_load,
)
from cifarhelpers.training import checkpoint as checkpoint_module

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_thread")]

REPO = Path(__file__).resolve().parents[1]
TINY = dict(model="dilated_net", device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=2,
            max_lr=0.005, seed=3)


@pytest.fixture(scope="module")
def finished_run(small_data, tmp_path_factory):
    cfg = TrainConfig(**TINY, output_dir=str(tmp_path_factory.mktemp("finished")))
    return fit(cfg, data=small_data, progress=False)


# -- what a checkpoint holds ------------------------------------------------------------------

def test_checkpoint_holds_the_whole_training_state_and_loads_weights_only(finished_run, small_data):
    run_dir = finished_run.run_dir
    # torch.load(weights_only=True) reads it: no pickled code objects inside
    raw = torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    state = load_checkpoint(run_dir)
    assert raw.keys() == state.keys()
    assert state["format"] == FORMAT and state["epoch"] == 2
    assert state["config"] == TrainConfig(**TINY, output_dir=state["config"]["output_dir"]).to_dict()
    assert state["data_sha256"] == small_data.source.sha256
    assert comparable(state["history"]) == comparable(finished_run.history)
    assert state["scaler"] is None  # CPU training, no grad scaler
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda", "loader"}
    assert state["rng"]["loader"].dtype == torch.uint8
    # 2 optimizer steps per epoch (64 images, batch 32): Adam's step count and OneCycle's position
    adam_steps = {float(s["step"]) for s in state["optimizer"]["state"].values()}
    assert adam_steps == {4.0}
    assert state["scheduler"]["last_epoch"] == 4
    # the final weights are the checkpoint's and model.pt's
    model_pt = torch.load(run_dir / WEIGHTS_FILE, weights_only=True)
    assert model_pt.keys() == state["model"].keys()
    assert all(torch.equal(model_pt[k], state["model"][k]) for k in model_pt)
    assert not temp_files(run_dir), "a clean run leaves no temp files"
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["status"] == "completed" and metrics["stopped_epoch"] is None


# -- killed with SIGKILL, then resumed ----------------------------------------------------------

def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cifarhelpers.cli.train", *args]


def _only_run_dir(parent: Path) -> Path:
    folders = [p for p in parent.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def _wait_for_epoch(proc: subprocess.Popen, parent: Path, epoch: int, limit_s: float = 300) -> Path:
    """Poll until the run in ``parent`` has checkpointed ``epoch`` epochs (metrics.json is written
    right after the checkpoint); fail if the process ends first."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before epoch {epoch} was checkpointed: "
                        f"{proc.stderr.read().decode()[-3000:]}")
        for metrics in parent.glob(f"*/{METRICS_FILE}"):
            try:
                if len(json.loads(metrics.read_text())["history"]) >= epoch:
                    return metrics.parent
            except (OSError, ValueError, KeyError):
                pass  # not written yet
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"epoch {epoch} was not checkpointed within {limit_s} s")


@pytest.mark.parametrize("loader", ["device", "albumentations"])
def test_run_killed_during_epoch_2_and_resumed_ends_exactly_like_the_run_left_alone(loader, small_root, tmp_path):
    args = ["--data-root", str(small_root), "--model", "dilated_net", "--device", "cpu", "--train-subset", "128",
            "--test-subset", "50", "--batch-size", "32", "--epochs", "3", "--seed", "1", "--max-lr", "0.005",
            "--loader", loader, "--quiet", "--recipe", "onecycle_adam", "--transform-set", "cutout8"]  # not its own
    env = {**os.environ, **SUBPROCESS_ENV}

    alone = subprocess.run(_cli(*args, "--output-dir", str(tmp_path / "alone")), cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    reference = json.loads((_only_run_dir(tmp_path / "alone") / METRICS_FILE).read_text())
    assert len(reference["history"]) == 3

    killed_parent = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--output-dir", str(killed_parent)), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run_dir = _wait_for_epoch(proc, killed_parent, 1)  # epoch 1 is on disk: epoch 2 is in flight
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    # what the kill left: a whole checkpoint of the last finished epoch, no final weights
    left = load_checkpoint(run_dir)
    assert 1 <= left["epoch"] < 3, "killed before the run finished"
    assert comparable(left["history"]) == comparable(reference["history"][: left["epoch"]])
    assert not (run_dir / WEIGHTS_FILE).exists()
    assert json.loads((run_dir / METRICS_FILE).read_text())["status"] == "running"

    # --resume alone: the settings come from the checkpoint
    resumed = subprocess.run(_cli("--resume", str(run_dir), "--quiet"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming the run in {run_dir}" in resumed.stdout
    assert _only_run_dir(killed_parent) == run_dir, "resuming writes into the same folder"

    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["status"] == "completed"
    assert metrics["resumed_at_epochs"] == [left["epoch"]]
    assert comparable(metrics["history"]) == comparable(reference["history"])  # exactly, every float
    assert metrics["final_test_accuracy"] == reference["final_test_accuracy"]
    ours = torch.load(run_dir / WEIGHTS_FILE, weights_only=True)
    theirs = torch.load(_only_run_dir(tmp_path / "alone") / WEIGHTS_FILE, weights_only=True)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs), "the final weights are bit-identical"
    assert not temp_files(tmp_path)


def test_sigterm_stops_the_run_cleanly_and_records_it(small_root, tmp_path):
    """A job scheduler or a runtime shutting down sends SIGTERM: the run stops, says so in
    metrics.json (status "interrupted") and on stderr (with the command to continue it)."""
    args = ["--data-root", str(small_root), "--model", "dilated_net", "--device", "cpu", "--train-subset", "64",
            "--test-subset", "50", "--batch-size", "32", "--epochs", "30", "--seed", "1", "--max-lr", "0.005",
            "--loader", "device", "--quiet", "--output-dir", str(tmp_path), "--transform-set", "cutout8"]
    proc = subprocess.Popen(_cli(*args), cwd=REPO, env={**os.environ, **SUBPROCESS_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run_dir = _wait_for_epoch(proc, tmp_path, 1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr.decode()[-2000:]
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["status"] == "interrupted" and metrics["stop_reason"] == "terminated by SIGTERM"
    saved = load_checkpoint(run_dir)["epoch"]
    assert 1 <= saved < 30 and len(metrics["history"]) == saved
    assert f"Continue it with resume='{run_dir}' (cifar-train --resume {run_dir})" in stderr.decode()
    assert not temp_files(run_dir)


def test_resuming_a_finished_run_is_refused_and_touches_nothing(finished_run, small_data, tmp_path):
    import shutil

    from cifarhelpers.errors import ConfigError

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run.run_dir, run_dir)
    before = snapshot(run_dir)
    with pytest.raises(ConfigError, match=r"already finished its 2 epochs, so there is nothing to resume"):
        fit(resume_config(run_dir), data=small_data, progress=False)
    assert snapshot(run_dir) == before


# -- files that would run code ------------------------------------------------------------------

class _Payload:
    """Unpickling this creates a folder: the stand-in for any code an attacker would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(small_data, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    run_dir = tmp_path / "evil-run"
    run_dir.mkdir()
    net = build_model("dilated_net")
    torch.save({"format": FORMAT, "epoch": 1, "model": net.state_dict(), "optimizer": {}, "scheduler": {},
                "history": [], "config": _Payload(marker), "data_sha256": "x"}, run_dir / CHECKPOINT_FILE)
    torch.save({"weight": _Payload(marker)}, run_dir / WEIGHTS_FILE)
    before = snapshot(run_dir)

    refusal = r"refused to load .*could run arbitrary code.*(GLOBAL|Unsupported)"
    with pytest.raises(CheckpointError, match=refusal):
        load_checkpoint(run_dir)
    with pytest.raises(CheckpointError, match=refusal):
        load_weights(build_model("dilated_net"), run_dir / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=refusal):
        load_weights(build_model("dilated_net"), run_dir / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match=refusal):
        fit(TrainConfig(**TINY, resume=str(run_dir)), data=small_data, progress=False)
    assert main(["--resume", str(run_dir), "--quiet"]) == 1
    assert "could run arbitrary code" in capsys.readouterr().err
    assert not marker.exists(), "no code from the file ran"
    assert snapshot(run_dir) == before

    # the premise: the file really runs code when loaded without weights_only
    torch.load(run_dir / WEIGHTS_FILE, weights_only=False)
    assert marker.is_dir()


def test_plain_pickle_and_non_torch_files_get_their_own_message(tmp_path):
    import pickle

    marker = tmp_path / "PWNED"
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"w": _Payload(marker)}, f)
    with pytest.raises(CheckpointError, match="could run arbitrary code"):
        safe_load(tmp_path / "evil.pkl")
    (tmp_path / "notes.pt").write_text('{"epoch": 3}')
    with pytest.raises(CheckpointError, match=r"is not a torch file .*check the path"):
        safe_load(tmp_path / "notes.pt")
    assert not marker.exists()


# -- mismatches ---------------------------------------------------------------------------------

def test_weights_of_another_model_name_that_model_not_a_wall_of_keys(finished_run):
    target = build_model("custom_resnet")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    # a run folder: the model is named in its checkpoint and metrics.json
    with pytest.raises(CheckpointError) as err:
        load_weights(target, finished_run.run_dir)
    message = str(err.value)
    assert message.startswith(f"weights in '{finished_run.run_dir / WEIGHTS_FILE}' are from model 'dilated_net', "
                              "not 'custom_resnet': build that model (build_model('dilated_net'))")
    assert message.count("'stem.") + message.count("'prep.") <= 6 and len(message) < 1200, "examples, not every key"
    # a bare state_dict: the model is recognized from its keys and shapes
    with pytest.raises(CheckpointError, match=r"are from model 'dilated_net', not 'custom_resnet'"):
        load_weights(target, build_model("dilated_net").state_dict())
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items()), "target untouched"
    # and the right model loads, also from a torch.compile-style prefixed state_dict
    net = load_weights(build_model("dilated_net"), finished_run.run_dir)
    prefixed = {f"_orig_mod.{k}": v for k, v in net.state_dict().items()}
    again = load_weights(build_model("dilated_net"), prefixed)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in net.state_dict().items())


def test_resume_with_another_config_lists_every_differing_field(finished_run):
    state = load_checkpoint(finished_run.run_dir)
    changed = TrainConfig(**{**TINY, "batch_size": 64, "max_lr": 0.01}, resume=str(finished_run.run_dir))
    with pytest.raises(CheckpointError) as err:
        check_resumable(state, changed.to_dict())
    message = str(err.value)
    assert "2 config field(s) differ" in message
    assert "batch_size: checkpoint 32, now 64" in message and "max_lr: checkpoint 0.005, now 0.01" in message
    assert "Resume with the original settings" in message
    # where things are may change
    moved = changed.replace(batch_size=32, max_lr=0.005, device="auto", output_dir="elsewhere", data_root="x")
    check_resumable(state, moved.to_dict(), state["data_sha256"])
    with pytest.raises(CheckpointError, match=r"the data differs from the checkpoint's .*Point data_root at the copy"):
        check_resumable(state, moved.to_dict(), "0" * 64)


def test_a_checkpoint_older_than_a_config_field_resumes_at_that_fields_default(finished_run):
    state = load_checkpoint(finished_run.run_dir)
    cfg = TrainConfig.from_dict(state["config"])
    older = {**state, "config": {k: v for k, v in state["config"].items()
                                 if k not in ("end_lr", "logit_scale", "warmup_epochs")}}
    # without the defaults, the two whose default is not None "differ" (a missing key reads as None)
    with pytest.raises(CheckpointError, match=r"2 config field.*logit_scale: checkpoint None, now 1.0"):
        check_resumable(older, cfg.to_dict())
    check_resumable(older, cfg.to_dict(), defaults=TrainConfig().to_dict())
    with pytest.raises(CheckpointError, match="logit_scale: checkpoint 1.0, now 0.5"):
        check_resumable(older, cfg.replace(logit_scale=0.5).to_dict(), defaults=TrainConfig().to_dict())
    sgd = {**older, "config": {**older["config"], "recipe": "onecycle_sgd"}}
    with pytest.raises(CheckpointError, match="earlier 'onecycle_sgd' recipe, whose schedule has changed"):
        check_resumable(sgd, cfg.replace(recipe="onecycle_sgd").to_dict(), defaults=TrainConfig().to_dict())


# -- a write that fails ---------------------------------------------------------------------------

class _DiskFillsUp:
    """A file that takes ``room`` bytes, then fails like a full disk."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data) -> int:
        if self.room < len(data):
            self.f.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def test_disk_full_while_saving_epoch_2_keeps_the_epoch_1_checkpoint(small_data, tmp_path, monkeypatch):
    real_atomic_write = checkpoint_module.atomic_write
    saved: list[bytes] = []

    def atomic_write(path, write):
        if len(saved) == 1:  # epoch 2's checkpoint: the disk fills up half-way through
            return real_atomic_write(path, lambda f: write(_DiskFillsUp(f, room=len(saved[0]) // 2)))
        result = real_atomic_write(path, write)
        saved.append(Path(path).read_bytes())
        return result

    monkeypatch.setattr(checkpoint_module, "atomic_write", atomic_write)
    with pytest.raises(RunWriteError) as err:
        fit(TrainConfig(**TINY, output_dir=str(tmp_path)), data=small_data, progress=False)
    message = str(err.value)
    assert "could not write" in message and "checkpoint.pt: No space left on device" in message
    assert "The earlier version of the file is intact" in message and "Free some disk space" in message
    assert "Continue it with resume=" in message
    assert isinstance(err.value, OSError), "RunWriteError is an OSError too"

    run_dir = _only_run_dir(tmp_path)
    assert (run_dir / CHECKPOINT_FILE).read_bytes() == saved[0], "the epoch-1 checkpoint is byte-for-byte intact"
    assert load_checkpoint(run_dir)["epoch"] == 1
    assert not temp_files(run_dir), "the partial temp file was removed"
    assert not (run_dir / WEIGHTS_FILE).exists()
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    assert metrics["status"] == "failed" and metrics["stopped_epoch"] == 2
    assert len(metrics["history"]) == 1, "metrics.json lists only the epochs the checkpoint holds"
    assert "No space left on device" in metrics["stop_reason"]

    # once there is room again, the run continues from epoch 1 and completes; a temp file that a
    # kill during a write would have left is cleaned up
    monkeypatch.setattr(checkpoint_module, "atomic_write", real_atomic_write)
    (run_dir / ".checkpoint.pt.k1ll3d.tmp").write_bytes(saved[0][:1000])
    result = fit(resume_config(run_dir), data=small_data, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.metrics["status"] == "completed" and result.metrics["resumed_at_epochs"] == [1]
    assert not temp_files(run_dir)


# -- exact resume of the per-epoch recipes, their scheduler and warm-up included -----------------------------

class _StopAfterEpoch(Exception):
    """Raised by on_epoch once epoch ``k`` is checkpointed: the run stops there, like a crash."""


@pytest.mark.parametrize("recipe", ["plateau_sgd", "step_sgd"])
def test_per_epoch_recipe_interrupted_and_resumed_ends_exactly_like_the_run_left_alone(recipe, small_data, tmp_path,
                                                                                         monkeypatch):
    """4 epochs, 1 of linear warm-up, stopped after epoch 2 and resumed. So that the scheduler's state decides
    an LR inside 4 epochs, ReduceLROnPlateau's patience is 0 (not 2) and StepLR's step is 2 epochs (not 20): the
    run left alone lowers its LR x0.1 for epoch 4, which a resume with a fresh scheduler or warm-up would not."""
    from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR

    from cifarhelpers.training import recipes as recipes_module

    monkeypatch.setattr(recipes_module, "ReduceLROnPlateau",
                        lambda optimizer, **kwargs: ReduceLROnPlateau(optimizer, **{**kwargs, "patience": 0}))
    monkeypatch.setattr(recipes_module, "StepLR",
                        lambda optimizer, step_size, gamma: StepLR(optimizer, step_size=2, gamma=gamma))
    cfg = {**TINY, "recipe": recipe, "max_lr": None, "epochs": 4, "warmup_epochs": 1}
    alone = fit(TrainConfig(**cfg, output_dir=str(tmp_path / "alone")), data=small_data, progress=False)
    lrs = [h["lr"] for h in alone.history]
    lr = TrainConfig(**cfg).resolved_max_lr
    assert lrs[:3] == [lr] * 3 and lrs[3] == pytest.approx(lr / 10), "the premise: the LR drops for epoch 4"
    warmup = [s["lr"] for s in alone.steps if s["epoch"] == 1]
    assert warmup == pytest.approx([lr / 2, lr]), "the premise: epoch 1 warms up (2 steps)"

    def stop_after_2(entry):
        if entry["epoch"] == 2:
            raise _StopAfterEpoch

    with pytest.raises(_StopAfterEpoch):
        fit(TrainConfig(**cfg, output_dir=str(tmp_path / "stopped")), data=small_data, progress=False,
            on_epoch=stop_after_2)
    run_dir = _only_run_dir(tmp_path / "stopped")
    assert load_checkpoint(run_dir)["epoch"] == 2
    resumed = fit(resume_config(run_dir), data=small_data, progress=False)
    assert resumed.metrics["status"] == "completed" and resumed.metrics["resumed_at_epochs"] == [2]
    assert comparable(resumed.history) == comparable(alone.history), "losses, accuracies and LRs, every float"
    assert resumed.steps == alone.steps, "each step's loss and LR"
    ours, theirs = resumed.model.state_dict(), alone.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs), \
        "the final weights are bit-identical"


def test_an_error_the_caller_is_handling_is_not_blamed_on_the_disk(tmp_path):
    """A write inside an ``except`` block of a connection error (an OSError: Ray refusing a cluster) that fails
    for its own reason raises that reason, not 'could not write ...: free some disk space'."""
    from cifarhelpers.files import atomic_write

    def plot_that_fails(handle):
        raise ValueError("Data cannot be log-scaled because all values are <= 0.")

    try:
        raise ConnectionError("the cluster refused the connection")
    except ConnectionError:
        with pytest.raises(ValueError, match="log-scaled"):
            atomic_write(tmp_path / "results.png", plot_that_fails)

    def disk_full(handle):  # a real disk error inside the same except block is still the disk's
        raise OSError(28, "No space left on device")

    try:
        raise ConnectionError("the cluster refused the connection")
    except ConnectionError:
        with pytest.raises(RunWriteError, match="No space left on device"):
            atomic_write(tmp_path / "results.png", disk_full)
    assert not list(tmp_path.iterdir()), "no file and no temp file left"
