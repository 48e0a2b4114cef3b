"""Run folders: one new folder per training run, and everything written into it over the run's life.

A :class:`RunFolder` is created (or reopened, to resume) by :func:`cifarhelpers.training.train.fit` and
holds the run's ``metrics.json`` in memory, writing it atomically at every change:

* ``start``: status ``"running"``; ``save_epoch``: ``checkpoint.pt`` first, then the epoch joins
  the history, ``history.csv``, ``steps.csv`` and the TensorBoard logs (:mod:`cifarhelpers.training.run_logs`),
  so nothing on disk runs ahead of the checkpoint;
* ``record_lr_range_test``: with ``max_lr="find"``, the LR range test run before training
  (``lr_range_test.json``, ``lr_range_test.png`` and a summary in ``metrics.json``);
* ``complete``: ``model.pt`` (the final ``state_dict``), ``curves.png`` and status ``"completed"``,
  with ``final_test_accuracy`` (the headline) and ``final_test_accuracy_flip_tta`` (the last epoch's
  ``test_accuracy_flip_tta``: horizontal-flip TTA, measured once after the last epoch);
* leaving :meth:`RunFolder.recording` by an error records why the run stopped: ``"diverged"`` (a
  NaN or infinite loss), ``"failed"`` (a write failed: disk full, read-only folder) or
  ``"interrupted"`` (Ctrl-C, SIGTERM), with ``stop_reason`` and ``stopped_epoch``; the error is
  raised again with the folder, what its checkpoint keeps and how to continue appended.

A run killed outright (SIGKILL, a dead kernel) stays ``"running"``; its checkpoint holds every
finished epoch and :func:`resume_config` continues it. Folders are named
``<output_dir>/<YYYYmmdd-HHMMSS>-<model>`` (``-2``, ``-3``... if taken): an existing folder is
never reused or overwritten.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from cifarhelpers.errors import ConfigError, DivergenceError, RunWriteError
from cifarhelpers.files import atomic_write, ensure_writable_dir, read_json, remove_temp_files, save_figure, write_json

from .checkpoint import METRICS_FILE, WEIGHTS_FILE, check_resumable, load_checkpoint, save_checkpoint
from .config import FIELD_NAMES, TrainConfig
from .engine import FLIP_TTA_METHOD
from .lr_plots import plot_lr_range_test
from .lr_range_result import LR_JSON, LRRangeTestResult, save_lr_range_test
from .run_logs import RunLogs, epoch_steps

CURVES_FILE = "curves.png"
LR_TEST_PLOT = "lr_range_test.png"
#: The units of metrics.json's figures, written into it.
UNITS = {
    "accuracy": "fraction of images correct, in [0, 1]",
    "loss": "mean cross-entropy per image",
    "lr": "learning rate of the last optimizer step of the epoch",
    "seconds": "wall-clock seconds",
    "test_accuracy_flip_tta": f"test accuracy under horizontal-flip TTA ({FLIP_TTA_METHOD}), a fraction in [0, 1], "
                              "measured once after the last epoch; final_test_accuracy (no TTA) is the headline",
}
_STATUS = {DivergenceError: "diverged", RunWriteError: "failed"}


def new_run_dir(output_dir: str | os.PathLike, name: str, *, name_first: bool = False) -> Path:
    """A new, empty run folder under ``output_dir`` named ``<YYYYmmdd-HHMMSS>-<name>``, or
    ``<name>-<YYYYmmdd-HHMMSS>`` with ``name_first`` (a sweep: ``sweep-20261201-101500``).

    Raises:
        ConfigError: ``output_dir`` is not a writable folder.
        RunWriteError: the folder could not be created (e.g. the disk is full).
    """
    parent = ensure_writable_dir(output_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = f"{name}-{stamp}" if name_first else f"{stamp}-{name}"
    for k in range(1, 10_000):
        candidate = parent / (stem if k == 1 else f"{stem}-{k}")
        try:
            candidate.mkdir()  # fails if it exists: never reuse a folder
            return candidate
        except FileExistsError:
            continue
        except OSError as err:
            raise RunWriteError(f"could not create the run folder {candidate}: {err.strerror or err}. Free some "
                                "disk space or choose another output_dir.") from err
    raise RunWriteError(f"could not find a free run folder name under {parent}")


def resumable_checkpoint(cfg: TrainConfig, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint ``cfg.resume`` continues from, checked before any data is read.

    Args:
        cfg: the run's config, with ``resume`` set.
        checkpoint: that checkpoint, if already loaded (:func:`~cifarhelpers.training.checkpoint.load_checkpoint`).

    Raises:
        CheckpointError: no readable, safe checkpoint, or one made with another config.
        ConfigError: that run already finished all ``cfg.epochs``, or its folder is not writable.
    """
    state = checkpoint if checkpoint is not None else load_checkpoint(cfg.resume)
    check_resumable(state, cfg.to_dict(), defaults=TrainConfig().to_dict())
    if state["epoch"] >= cfg.epochs:
        raise ConfigError(f"resume={cfg.resume!r}: that run already finished its {state['epoch']} epochs, "
                          "so there is nothing to resume. Its weights are in model.pt (or checkpoint.pt: "
                          "load_weights(model, folder)); start a new run to train further.")
    ensure_writable_dir(cfg.resume, "resume")
    return state


def resume_config(run_dir: str | os.PathLike, *, checkpoint: dict[str, Any] | None = None,
                  **changes: Any) -> TrainConfig:
    """The config to continue the run in ``run_dir``: the one saved in its checkpoint, with
    ``resume=run_dir`` and ``changes`` (only where-things-are fields such as ``device`` or
    ``data_root`` may differ; :func:`~cifarhelpers.training.train.fit` refuses the rest). ``checkpoint``: the
    run's checkpoint, if already loaded.

    Example::

        result = fit(resume_config("runs/20261122-101500-custom_resnet"))

    Raises:
        CheckpointError: no readable, safe checkpoint in ``run_dir``.
        ConfigError: an invalid or unknown field in ``changes``.
    """
    saved = (checkpoint if checkpoint is not None else load_checkpoint(run_dir))["config"]
    base = TrainConfig(**{k: v for k, v in saved.items() if k in FIELD_NAMES and k != "resume"})
    return base.replace(**{**changes, "resume": os.fspath(run_dir)})


class RunFolder:
    """A training run's folder and its ``metrics.json`` (see the module docstring).

    Build it with :meth:`create` or :meth:`reopen`; ``path`` is the folder, ``metrics`` the
    content of ``metrics.json``, ``history`` its per-epoch list and ``steps`` the per-step rows of
    ``steps.csv``.
    """

    def __init__(self, path: Path, metrics: dict[str, Any], epochs: int, steps: list[dict] | None = None):
        self.path, self.metrics, self.epochs = path, metrics, epochs
        self.steps: list[dict] = list(steps or [])
        self.logs = RunLogs(path)
        self._wall_start = time.perf_counter()  # reset by start()

    @classmethod
    def create(cls, cfg: TrainConfig, header: dict[str, Any]) -> RunFolder:
        """A new folder under ``cfg.output_dir`` whose metrics start from ``header`` (what the
        run is: config, model, data, device, precision...).

        Raises:
            ConfigError, RunWriteError: as :func:`new_run_dir`.
        """
        return cls(new_run_dir(cfg.output_dir, cfg.model), {**header, "history": []}, cfg.epochs)

    @classmethod
    def reopen(cls, cfg: TrainConfig, header: dict[str, Any], checkpoint: dict[str, Any]) -> RunFolder:
        """The folder ``cfg.resume``, continuing from ``checkpoint``: temp files a kill left are
        removed, its ``metrics.json`` is kept (or rebuilt from ``header`` if lost or damaged), the
        history is the checkpoint's, and the epoch resumed at is appended to ``resumed_at_epochs``."""
        path = Path(cfg.resume)
        remove_temp_files(path)  # what a kill during a write left behind
        try:
            metrics = read_json(path / METRICS_FILE, "metrics file")
        except ConfigError:  # lost or damaged: the checkpoint holds the history
            metrics = None
        if not isinstance(metrics, dict):
            metrics = dict(header)
        metrics.update(history=list(checkpoint["history"]), config=cfg.to_dict(), precision=header["precision"],
                       loader=header.get("loader"), units=header.get("units", UNITS))
        metrics.setdefault("resumed_at_epochs", []).append(checkpoint["epoch"])
        return cls(path, metrics, cfg.epochs, checkpoint.get("steps"))

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch dicts of the epochs on disk."""
        return self.metrics["history"]

    def start(self, *, wall_start: float, data_seconds: float) -> None:
        """Status ``"running"``. ``wall_start`` is the ``time.perf_counter()`` at which the run
        began (wall seconds count from it); ``data_seconds`` the seconds spent loading the data."""
        self._wall_start = wall_start
        self.metrics.update(status="running", stop_reason=None, stopped_epoch=None, final_test_accuracy=None,
                            final_test_accuracy_flip_tta=None, timings={"data_seconds": data_seconds})
        write_json(self.path / METRICS_FILE, self.metrics)

    def record_lr_range_test(self, result: LRRangeTestResult) -> None:
        """Write the LR range test run before training (``max_lr="find"``): its JSON (the file notebook
        03 hands on, :func:`~cifarhelpers.training.lr_range_result.save_lr_range_test`) and plot, and its suggestions
        and rule in ``metrics.json``."""
        save_lr_range_test(self.path, result)
        save_figure(plot_lr_range_test(result), self.path / LR_TEST_PLOT)
        self.metrics["lr_range_test"] = {"suggestions": result.suggestions, "rule": result.rule,
                                         "max_lr": result.max_lr, "iterations": len(result.lrs),
                                         "file": LR_JSON}
        write_json(self.path / METRICS_FILE, self.metrics)

    def save_epoch(self, entry: dict[str, Any], state: dict[str, Any], step_losses: list[float],
                   step_lrs: list[float]) -> None:
        """Checkpoint ``state`` with the history up to ``entry`` and the epoch's steps, then record
        them: ``metrics.json``, ``history.csv``, ``steps.csv``, TensorBoard.

        Args:
            entry: the epoch's row of the history (``epoch`` is 1-based).
            state: :func:`~cifarhelpers.training.checkpoint.training_state` after the epoch.
            step_losses, step_lrs: each optimizer step's loss and LR during the epoch.

        Raises:
            RunWriteError: a write failed; the previous checkpoint is intact.
        """
        new = epoch_steps(entry["epoch"], step_losses, step_lrs, len(self.steps) + 1)
        save_checkpoint(self.path, {**state, "history": [*self.history, entry], "steps": [*self.steps, *new]})
        self.history.append(entry)  # only once it is safely on disk
        self.steps.extend(new)
        write_json(self.path / METRICS_FILE, self.metrics)
        self.logs.record(self.history, self.steps, new)

    def complete(self, weights: dict[str, torch.Tensor], curves) -> None:
        """Write ``model.pt`` (``weights``, a ``state_dict``) and ``curves.png`` (a Figure), then
        status ``"completed"`` with the final test accuracy, plain and with flip TTA (fractions; the
        latter None if the last history row lacks it), and the timings."""
        last = self.history[-1]
        self.metrics.update(status="completed", final_test_accuracy=last["test_accuracy"],
                            final_test_accuracy_flip_tta=last.get("test_accuracy_flip_tta"))
        atomic_write(self.path / WEIGHTS_FILE, lambda f: torch.save(weights, f))
        save_figure(curves, self.path / CURVES_FILE)
        self._finish()
        self.logs.close()

    @contextlib.contextmanager
    def recording(self) -> Iterator[RunFolder]:
        """Record how the run inside stops: a DivergenceError, RunWriteError or KeyboardInterrupt
        becomes status ``"diverged"``, ``"failed"`` or ``"interrupted"`` in ``metrics.json`` and
        is raised again, its message followed by the folder, what its checkpoint keeps and how
        to continue (Ctrl-C prints that to stderr and re-raises as it is)."""
        try:
            yield self
        except (DivergenceError, RunWriteError, KeyboardInterrupt) as err:
            self.logs.close()
            status = _STATUS.get(type(err), "interrupted")
            done = len(self.history)
            kept = (f"checkpoint.pt keeps epoch {done}/{self.epochs}" if done
                    else "no epoch finished, so there is no checkpoint")
            where = f" Run folder: {self.path} (metrics.json: status {status!r}; {kept})."
            if status != "diverged" and done:
                where += f" Continue it with resume={str(self.path)!r} (cifar-train --resume {self.path})."
            stopped = min(done + 1, self.epochs)
            self.metrics.update(status=status, stop_reason=(str(err) or type(err).__name__), stopped_epoch=stopped,
                                final_test_accuracy=None, final_test_accuracy_flip_tta=None)
            with contextlib.suppress(RunWriteError):  # the disk may still be full: the error below says so
                self._finish()
            if isinstance(err, KeyboardInterrupt):
                print(f"interrupted during epoch {stopped}.{where}", file=sys.stderr)
                raise
            raise type(err)(f"{err}{where}") from err

    def _finish(self) -> None:
        history, timings = self.history, self.metrics["timings"]
        timings.update(
            wall_seconds=time.perf_counter() - self._wall_start,
            train_seconds=sum(h["train_seconds"] for h in history),
            test_seconds=sum(h["test_seconds"] for h in history),
            seconds_per_epoch=(sum(h["seconds"] for h in history) / len(history)) if history else None,
        )
        write_json(self.path / METRICS_FILE, self.metrics)
