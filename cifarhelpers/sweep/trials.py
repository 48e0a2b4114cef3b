"""One trial of a sweep: run it (:func:`run_trial`) and read how far it got (:func:`trial_state`).

A trial is an ordinary run: :func:`cifarhelpers.training.train.fit` writes its run folder (``metrics.json``,
``checkpoint.pt``, ``model.pt``, ``curves.png``) inside the trial's own folder
``<sweep folder>/trials/<trial name>/``. When the trial ends, however it ends, ``trial.json`` beside
the run folder records it:

=======================  =====================================================================
key                      meaning
=======================  =====================================================================
``status``               ``"completed"``, ``"diverged"`` (a NaN/inf loss) or ``"failed"``
``reason``               why it stopped (None when completed)
``run_dir``              its run folder (None if it failed before creating one)
``final_test_accuracy``  a fraction in [0, 1] (None unless completed)
``epochs``               epochs finished
``wall_seconds``         wall-clock seconds of the attempt that ended it (data loading included)
=======================  =====================================================================

Both backends (sequential, Ray) run trials with :func:`run_trial`, so a trial's folder looks the
same whichever ran it, and resuming reads only these files.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cifarhelpers.data import CIFAR10Data, load_cifar10
from cifarhelpers.errors import CheckpointError, CifarHelpersError, ConfigError, DivergenceError
from cifarhelpers.files import read_json, write_json
from cifarhelpers.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    TrainConfig,
    fit,
    load_checkpoint,
    resumable_checkpoint,
    resume_config,
)

from .spec import Trial

TRIAL_FILE = "trial.json"
#: Statuses of a trial that is over: a resumed sweep skips these (failed trials run again).
DONE = ("completed", "diverged")


def latest_run(trial_dir: str | Path) -> Path | None:
    """The trial's newest run folder (the one whose ``metrics.json`` changed last), or None."""
    folder = Path(trial_dir)
    runs = [p for p in folder.iterdir() if (p / METRICS_FILE).is_file()] if folder.is_dir() else []
    return max(runs, key=lambda p: (p / METRICS_FILE).stat().st_mtime_ns, default=None)


def _read_metrics(run_dir: Path) -> dict[str, Any] | None:
    with contextlib.suppress(ConfigError):
        metrics = read_json(run_dir / METRICS_FILE, "metrics file")
        return metrics if isinstance(metrics, dict) else None
    return None


def load_trial_data(cfg: TrainConfig) -> CIFAR10Data | None:
    """The copy ``cfg`` reads (``cfg.data_root``), loaded once so that several trials share it; None
    when it cannot be read (each trial's ``fit`` then fails and records why)."""
    with contextlib.suppress(CifarHelpersError):
        return load_cifar10(cfg.data_root, download=cfg.download, progress=False)
    return None


def trial_record(status: str, **changes: Any) -> dict[str, Any]:
    """A trial record with every key of the module docstring's table: ``status``, nothing measured
    yet (None; ``epochs`` 0), then ``changes``."""
    return {"status": status, "reason": None, "run_dir": None, "final_test_accuracy": None, "epochs": 0,
            "wall_seconds": None, **changes}


def run_trial(cfg: TrainConfig, *, name: str, data: CIFAR10Data | None = None, progress: bool = False,
              on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run one trial, ``fit(cfg)`` in ``cfg.output_dir`` (the trial folder), and record how it ended.

    A divergence or any other failure is recorded, not raised, so the other trials go on; only
    Ctrl-C (KeyboardInterrupt) propagates, leaving the run folder ``"interrupted"`` and resumable.

    Args:
        cfg: the trial's config (``resume`` set to continue an interrupted trial's run folder).
        name: the trial's name.
        data: an already loaded copy (the sequential backend loads it once for all trials).
        progress: fit's progress bars.
        on_epoch: passed to :func:`~cifarhelpers.training.train.fit`: called with each epoch's history entry.

    Returns:
        The trial's record (module docstring), also written to ``trial.json``; unexpected
        exceptions (not this package's errors) add their ``traceback``.

    Raises:
        RunWriteError: ``trial.json`` could not be written (the sweep folder itself is broken).
    """
    trial_dir = Path(cfg.output_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = trial_record("failed", name=name, resumed=cfg.resume)
    try:
        result = fit(cfg, data=data, progress=progress, on_epoch=on_epoch)
        record.update(status="completed", run_dir=str(result.run_dir), final_test_accuracy=result.final_test_accuracy,
                      epochs=len(result.history))
    except DivergenceError as err:
        record.update(status="diverged", reason=str(err))
    except CifarHelpersError as err:
        record.update(reason=f"{type(err).__name__}: {err}")
    except Exception as err:  # noqa: BLE001 - one trial's failure is recorded; the other trials go on
        record.update(reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=8))
    record["wall_seconds"] = time.perf_counter() - start
    if record["run_dir"] is None and (run := latest_run(trial_dir)) is not None:
        record["run_dir"] = str(run)
        record["epochs"] = len((_read_metrics(run) or {}).get("history") or [])
    write_json(trial_dir / TRIAL_FILE, record)
    return record


def trial_state(trial: Trial) -> dict[str, Any]:
    """Where ``trial`` stands on disk (``trial.config.output_dir`` is its folder): its record
    (:func:`run_trial`) if it ended; else ``"completed"`` / ``"diverged"`` if its run folder says so
    (a process killed just before writing ``trial.json``); else ``"interrupted"`` (a run folder
    that did not finish) or ``"pending"`` (nothing yet). Always has the keys of the module
    docstring's table plus ``index``, ``name`` and ``params``."""
    folder = Path(trial.config.output_dir)
    state = trial_record("pending")
    if (folder / TRIAL_FILE).is_file():
        with contextlib.suppress(ConfigError):
            state.update(read_json(folder / TRIAL_FILE, "trial record"))
    run = latest_run(folder)
    if state["status"] not in DONE and run is not None:
        metrics = _read_metrics(run) or {}
        newer = state["status"] == "pending" or state["run_dir"] != str(run)  # a run since the record
        state.update(run_dir=str(run), epochs=len(metrics.get("history") or []))
        if metrics.get("status") in DONE:
            state.update(status=metrics["status"], reason=metrics.get("stop_reason"),
                         final_test_accuracy=metrics.get("final_test_accuracy"),
                         wall_seconds=(metrics.get("timings") or {}).get("wall_seconds"))
        elif newer:
            state["status"] = "interrupted"
    return {"index": trial.index, **state, "name": trial.name, "params": trial.params}


def config_to_run(trial: Trial, state: dict[str, Any]) -> TrainConfig:
    """The config that finishes ``trial``: its interrupted run folder resumed from the checkpoint
    (:func:`cifarhelpers.training.run_folder.resume_config`, with this sweep's device and data root) when one is
    there and holds fewer epochs than the trial needs; else the trial's own config (a fresh run)."""
    run = state.get("run_dir")
    if state["status"] not in DONE and run and (Path(run) / CHECKPOINT_FILE).is_file():
        with contextlib.suppress(CheckpointError, ConfigError):
            saved = load_checkpoint(run)
            cfg = resume_config(run, checkpoint=saved, device=trial.config.device, data_root=trial.config.data_root)
            resumable_checkpoint(cfg, saved)  # fewer epochs than cfg.epochs, same config, writable
            return cfg
    return trial.config
