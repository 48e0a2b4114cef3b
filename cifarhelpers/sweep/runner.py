"""Sweeps: many ordinary runs (a grid or random search over TrainConfig fields, times seeds) and one
table comparing them, on Ray Tune or one after another.

From Python::

    from cifarhelpers.training import TrainConfig
    from cifarhelpers.sweep import SweepConfig, resume_sweep, run_sweep
    spec = SweepConfig(base=TrainConfig(model="dilated_net", epochs=2, train_subset=1024),
                       grid={"max_lr": [1e-3, 1e-2]}, seeds=(0, 1))       # validated, every trial too
    result = run_sweep(spec)          # Ray Tune if installed (local), else sequential; says which
    print(result.table_text)          # mean / min / max test accuracy over seeds, wall time
    result = resume_sweep(result.sweep_dir)   # after a crash: finished trials are skipped

From the shell: ``cifar-sweep`` (:mod:`cifarhelpers.cli.sweep`). The sweep folder
(``<output_dir>/sweep-<timestamp>``, never reused) holds:

* ``trials/<trial name>/``: the trial's run folder (``metrics.json``, checkpoints...) and its
  ``trial.json`` (:mod:`cifarhelpers.sweep.trials`);
* ``sweep.json``: the spec, the backend, ``status`` (``"completed"`` once every trial ended,
  else ``"interrupted"``), each trial's record (status completed / diverged / failed with its
  reason, run folder, final test accuracy, wall seconds) and one entry per invocation in ``sessions``;
* ``results.csv`` and ``results.png``: the table (:mod:`cifarhelpers.sweep.results`) and
  :func:`cifarhelpers.sweep.plot_sweep`;
* ``ray/``: Ray Tune's own results, when Ray ran the trials.

Backends: ``"ray"`` (:mod:`cifarhelpers.sweep.ray_backend`; the ``sweep`` extra), ``"sequential"`` (here,
in this process, loading the data once), ``"auto"`` (Ray when importable, else sequential).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cifarhelpers.data import CIFAR10Data, resolve_root
from cifarhelpers.errors import ConfigError, require
from cifarhelpers.files import display_path, read_json, save_figure, write_json
from cifarhelpers.training import TrainConfig, new_run_dir, write_csv

from .plots import plot_sweep
from .results import UNITS, epoch_line, format_table, results_table, trial_line
from .spec import SweepConfig, Trial
from .trials import DONE, config_to_run, load_trial_data, run_trial, trial_state

SWEEP_FILE = "sweep.json"
RESULTS_CSV = "results.csv"
RESULTS_PNG = "results.png"
TRIALS_DIR = "trials"
#: What ``resume_sweep`` may change: where and how the trials run, not what they are.
RESUME_CHANGES = ("backend", "address", "resources_per_trial", "max_concurrent_trials")
#: ``before_trial(trial)``: run this trial now? False leaves it pending. ``after_trial(trial, record)``: it ended.
BeforeTrial = Callable[[Trial], bool]
AfterTrial = Callable[[Trial, dict[str, Any]], None]


@dataclass
class SweepResult:
    """What :func:`run_sweep` and :func:`resume_sweep` return.

    Attributes:
        sweep_dir: the sweep folder.
        backend: ``"ray"`` or ``"sequential"``: what ran this invocation's trials.
        trials: every trial's record in trial order (``index``, ``name``, ``params``, ``status``,
            ``reason``, ``run_dir``, ``final_test_accuracy`` as a fraction, ``epochs``, ``wall_seconds``).
        table: one row per config (:func:`cifarhelpers.sweep.results.results_table`).
        table_text: the table as printed text (accuracies in percent).
        figure: accuracy against the first swept field (:func:`cifarhelpers.sweep.plot_sweep`).
        status: ``"completed"`` (every trial ended: completed, diverged or failed) or ``"interrupted"``.
        wall_seconds: wall-clock seconds of this invocation.
    """

    sweep_dir: Path
    backend: str
    trials: list[dict[str, Any]]
    table: list[dict[str, Any]]
    table_text: str
    figure: Figure
    status: str
    wall_seconds: float


def choose_backend(spec: SweepConfig) -> tuple[str, str]:
    """The backend that runs ``spec``'s trials, and why (one line to print).

    Raises:
        MissingDependencyError: ``backend="ray"`` or an ``address`` was asked for but Ray is not
            installed (the message names ``pip install 'cifarhelpers[sweep]'``).
        ConfigError: nothing answers at ``address``
            (:func:`cifarhelpers.sweep.ray_backend.check_address`).
    """
    if spec.backend == "sequential":
        return "sequential", "backend: sequential (asked for): trials run one after another in this process"
    if spec.backend == "ray" or spec.address is not None:
        require("ray", "sweep", "running a sweep on Ray Tune (backend='ray' or an address)")
        if spec.address is not None:  # before the sweep folder is made: a wrong address fails in seconds
            from .ray_backend import check_address

            check_address(spec.address)
        return "ray", "backend: ray (asked for)"
    if importlib.util.find_spec("ray") is not None:
        return "ray", "backend: ray (auto: Ray is installed; --backend sequential runs without it)"
    return "sequential", ("backend: sequential (auto: Ray is not installed, so trials run one after another in this "
                          "process; pip install 'cifarhelpers[sweep]' runs them in parallel)")


def run_sweep(spec: SweepConfig, *, data: CIFAR10Data | None = None, progress: bool = True,
              before_trial: BeforeTrial | None = None, after_trial: AfterTrial | None = None) -> SweepResult:
    """Run every trial of ``spec`` into a new sweep folder and write its table and plot.

    A trial that diverges or fails is recorded with its reason; the others go on. Ctrl-C stops the
    sweep after recording where it stands (``sweep.json`` status ``"interrupted"``):
    :func:`resume_sweep` continues it.

    Args:
        spec: the validated sweep (every trial's TrainConfig was built when it was made).
        data: an already loaded copy for the sequential backend (Ray workers load their own).
        progress: print the backend, a line per trial epoch and per finished trial, and the table.
        before_trial: the sequential backend calls it with each :class:`~cifarhelpers.sweep.spec.Trial` just
            before running it; False leaves the trial pending (the sweep ends ``"interrupted"`` and
            :func:`resume_sweep` runs it later), e.g. a time budget admitting what still fits.
        after_trial: the sequential backend calls it with each trial and its record
            (:func:`~cifarhelpers.sweep.trials.run_trial`) once the trial ended.

    Returns:
        :class:`SweepResult`.

    Raises:
        ConfigError: the output folder is not writable, Ray cannot give a trial its resources, or
            ``before_trial`` / ``after_trial`` were given for the Ray backend.
        MissingDependencyError: the Ray backend was asked for without Ray installed.
        KeyboardInterrupt: Ctrl-C, after recording the sweep's state.
    """
    backend, why = choose_backend(spec)
    _check_hooks(backend, before_trial, after_trial)
    root, _ = resolve_root(spec.base.data_root)  # absolute: Ray's workers are other processes
    spec = spec.replace(base=spec.base.replace(data_root=str(root.resolve())),
                        output_dir=str(Path(spec.output_dir).resolve()))
    sweep_dir = new_run_dir(spec.output_dir, "sweep", name_first=True)
    write_json(sweep_dir / SWEEP_FILE, {"spec": spec.to_dict(), "status": "running", "sessions": []})
    return _run(spec, sweep_dir, backend, why, data, progress, before_trial, after_trial)


def resume_sweep(sweep_dir: str | os.PathLike, *, data: CIFAR10Data | None = None, progress: bool = True,
                 before_trial: BeforeTrial | None = None, after_trial: AfterTrial | None = None,
                 **changes: Any) -> SweepResult:
    """Continue the sweep in ``sweep_dir``: trials that completed or diverged are skipped, an
    interrupted trial continues from its run folder's checkpoint, the rest run afresh.

    Args:
        sweep_dir: a sweep folder (holding ``sweep.json``).
        data, progress, before_trial, after_trial: as :func:`run_sweep`.
        **changes: where the trials run (:data:`RESUME_CHANGES`: backend, address,
            resources_per_trial, max_concurrent_trials).

    Raises:
        ConfigError: no readable ``sweep.json``, a change to what the trials are, or hooks for the Ray backend.
    """
    sweep_dir = Path(sweep_dir).resolve()
    content = read_json(sweep_dir / SWEEP_FILE, "sweep file")
    refused = sorted(set(changes) - set(RESUME_CHANGES))
    if refused:
        raise ConfigError(f"resuming a sweep may change only {list(RESUME_CHANGES)}, not {refused}: start a new "
                          "sweep to change what its trials are")
    try:
        spec = SweepConfig.from_dict(content["spec"]).replace(**changes)
    except (KeyError, TypeError) as err:
        raise ConfigError(f"{sweep_dir / SWEEP_FILE} holds no valid sweep spec ({err}): start a new sweep") from err
    backend, why = choose_backend(spec)
    _check_hooks(backend, before_trial, after_trial)
    return _run(spec, sweep_dir, backend, why, data, progress, before_trial, after_trial)


def _check_hooks(backend: str, before_trial: BeforeTrial | None, after_trial: AfterTrial | None) -> None:
    if backend == "ray" and (before_trial is not None or after_trial is not None):
        raise ConfigError("before_trial and after_trial are called in this process, one trial after another: run "
                          "the sweep with backend='sequential' (Ray runs its trials in its own workers)")


def _run(spec: SweepConfig, sweep_dir: Path, backend: str, why: str, data: CIFAR10Data | None, progress: bool,
         before_trial: BeforeTrial | None = None, after_trial: AfterTrial | None = None) -> SweepResult:
    trials = spec.trials(str(sweep_dir / TRIALS_DIR))
    states = [trial_state(t) for t in trials]
    todo = [(t, config_to_run(t, s)) for t, s in zip(trials, states) if s["status"] not in DONE]
    if progress:
        print(why)
        configs = len(trials) // len(spec.seeds)
        print(f"sweep {display_path(sweep_dir)}: {len(trials)} trials ({configs} config(s) x {len(spec.seeds)} seed(s)); "
              f"{len(trials) - len(todo)} already done, {len(todo)} to run")
    start, stopped, ran = time.perf_counter(), True, len(todo)
    try:
        if todo and backend == "ray":
            from .ray_backend import run_ray

            run_ray(todo, spec, sweep_dir, progress=progress)
        elif todo:
            ran = len(run_sequential(todo, data=data, progress=progress, before_trial=before_trial,
                                     after_trial=after_trial))
        stopped = False
    finally:  # Ctrl-C included: record where the sweep stands, then let it stop
        result = _record(spec, sweep_dir, trials, backend, time.perf_counter() - start, ran, stopped)
    if progress:
        print(result.table_text)
        print(f"sweep {result.status}: {time.perf_counter() - start:.1f} s; table, plot and sweep.json in "
              f"{display_path(sweep_dir)}")
    return result


def _print_epoch(name: str, epochs: int, entry: dict[str, Any]) -> None:
    print(epoch_line(name, entry, epochs), flush=True)


def run_sequential(todo: list[tuple[Trial, TrainConfig]], *, data: CIFAR10Data | None = None,
                   progress: bool = True, before_trial: BeforeTrial | None = None,
                   after_trial: AfterTrial | None = None) -> list[dict[str, Any]]:
    """Run ``todo`` (trials and the configs that finish them) one after another in this process,
    loading the data once; ``before_trial`` and ``after_trial`` as in :func:`run_sweep`. Returns the
    records (:func:`~cifarhelpers.sweep.trials.run_trial`) of the trials that ran."""
    data = data if data is not None else load_trial_data(todo[0][1])
    records = []
    for k, (trial, cfg) in enumerate(todo, 1):
        if before_trial is not None and not before_trial(trial):
            continue  # left pending: a later resume_sweep runs it
        report = functools.partial(_print_epoch, trial.name, cfg.epochs) if progress else None
        record = run_trial(cfg, name=trial.name, data=data, on_epoch=report)
        if progress:
            print(f"[{k}/{len(todo)}] {trial_line(record)}", flush=True)
        records.append(record)
        if after_trial is not None:
            after_trial(trial, record)
    return records


def _record(spec: SweepConfig, sweep_dir: Path, trials: list[Trial], backend: str, seconds: float, ran: int,
            stopped: bool) -> SweepResult:
    """Read every trial's state from disk; write sweep.json, results.csv and results.png."""
    records = [trial_state(t) for t in trials]
    finished = all(r["status"] in (*DONE, "failed") for r in records)
    status = "completed" if finished and not stopped else "interrupted"
    table = results_table(records, spec.swept)
    figure = plot_sweep(records, spec.swept[0], config=spec.base)
    try:
        sessions = list(read_json(sweep_dir / SWEEP_FILE, "sweep file").get("sessions", []))
    except (ConfigError, AttributeError):  # lost or damaged: this session starts the list again
        sessions = []
    sessions.append({"backend": backend, "trials_run": ran, "wall_seconds": seconds, "status": status,
                     "ended": time.strftime("%Y-%m-%d %H:%M:%S")})
    write_json(sweep_dir / SWEEP_FILE, {
        "spec": spec.to_dict(), "status": status, "backend": backend, "trials": records, "table": table,
        "sessions": sessions, "wall_seconds": sum(s["wall_seconds"] for s in sessions),
        "units": UNITS})
    write_csv(sweep_dir / RESULTS_CSV, list(table[0]), table)  # a sweep has at least one trial, so one row
    save_figure(figure, sweep_dir / RESULTS_PNG)
    return SweepResult(sweep_dir=sweep_dir, backend=backend, trials=records, table=table,
                       table_text=format_table(table, spec.swept), figure=figure, status=status, wall_seconds=seconds)


__all__ = ["RESULTS_CSV", "RESULTS_PNG", "SWEEP_FILE", "SweepConfig", "SweepResult", "choose_backend", "resume_sweep",
           "run_sweep", "run_sequential"]
