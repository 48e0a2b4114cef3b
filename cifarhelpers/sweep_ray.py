"""The Ray Tune backend of a sweep: every trial a Tune trial, several at once.

:func:`run_ray` starts Ray in this process (``ray.init`` with this machine's cores and GPUs, no
dashboard) unless ``address`` names an existing cluster, or Ray is already running here (a notebook
that called ``ray.init`` itself); it shuts Ray down only when it started it. Each trial asks for
``resources_per_trial`` (e.g. ``{"cpu": 1, "gpu": 0.25}``: four trials share a GPU) and runs
:func:`cifarhelpers.sweep_trials.run_trial` in a Ray worker process, reporting every epoch's
figures to Tune (``tune.report``) and a last report with the trial's status. Tune's own results go
to ``<sweep folder>/ray/``.

On a cluster, every node must see the sweep folder and the data at the same absolute paths (a
shared filesystem) and have cifarhelpers installed: the trials write their run folders there.
Ray is imported here only, when this backend runs (the ``sweep`` extra).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .errors import ConfigError, require
from .files import write_json
from .sweep_spec import SweepConfig, Trial
from .sweep_trials import TRIAL_FILE, load_trial_data, run_trial, trial_record


def trial_resources(spec: SweepConfig) -> dict[str, float]:
    """Ray resources of one trial: ``spec.resources_per_trial``, else 1 CPU and, on a machine with
    CUDA, a quarter of a GPU (four trials share it; these models are small)."""
    if spec.resources_per_trial is not None:
        return dict(spec.resources_per_trial)
    import torch

    return {"cpu": 1, "gpu": 0.25 if torch.cuda.is_available() else 0}


def init_arguments(spec: SweepConfig) -> dict[str, Any]:
    """``ray.init``'s arguments: the cluster's ``address`` when given; else a local Ray with this
    machine's CPU cores and CUDA GPUs. Quiet in both cases: no dashboard, worker output not
    forwarded (each trial's outcome is in its ``trial.json``), only Ray's errors logged."""
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if spec.address is not None:
        return {"address": spec.address, **quiet}
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"num_cpus": cpus, "num_gpus": torch.cuda.device_count(), "include_dashboard": False, **quiet}


def _check_fits(available: dict[str, float], resources: dict[str, float]) -> None:
    for key, ray_key in (("cpu", "CPU"), ("gpu", "GPU")):
        if resources[key] > available.get(ray_key, 0):
            raise ConfigError(f"each trial asks for {resources[key]} {ray_key}(s) but the Ray cluster has "
                              f"{available.get(ray_key, 0)}: lower resources_per_trial['{key}'] "
                              f"(--{key}s-per-trial) or add nodes")


@contextlib.contextmanager
def _ray_running(spec: SweepConfig) -> Iterator[Any]:
    ray = require("ray", "sweep", "running a sweep on Ray Tune (backend='ray')")
    started = not ray.is_initialized()
    if started:
        ray.init(**init_arguments(spec))
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _plain_tune_output() -> Iterator[None]:
    """Tune's legacy console output, which ``verbose=0`` silences (the new one prints a box per
    experiment): progress comes from :func:`_progress_callback` instead."""
    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = before


#: The copy a Ray worker process has loaded, by data root: Tune reuses workers, so each loads it once.
_WORKER_DATA: dict[str | None, Any] = {}


def trainable(config: dict[str, Any], trials: dict[int, dict[str, Any]]) -> None:
    """The Tune function trainable: run trial ``config["trial"]`` of ``trials`` (its name, config
    dict and torch threads) with :func:`run_trial`, reporting each epoch and then its outcome."""
    import torch
    from ray import tune

    job = trials[config["trial"]]
    torch.set_num_threads(job["threads"])
    cfg = TrainConfig.from_dict(job["config"])
    if _WORKER_DATA.get(cfg.data_root) is None:
        _WORKER_DATA.clear()
        _WORKER_DATA[cfg.data_root] = load_trial_data(cfg)

    def report(entry: dict[str, Any]) -> None:
        tune.report({"trial_status": "running", "epochs": cfg.epochs,
                     **{k: v for k, v in entry.items() if isinstance(v, (int, float))}})

    record = run_trial(cfg, name=job["name"], data=_WORKER_DATA[cfg.data_root], on_epoch=report)
    tune.report({"trial_status": record["status"], "epochs": cfg.epochs, "wall_seconds": record["wall_seconds"],
                 **({"final_test_accuracy": record["final_test_accuracy"]} if record["status"] == "completed" else {})})


def _progress_callback(names: dict[int, str]):
    from ray.tune import Callback

    from .sweep import epoch_line

    class Lines(Callback):
        """A line per reported epoch and per finished or crashed trial, printed by the driver."""

        def on_trial_result(self, iteration, trials, trial, result, **info):
            name = names[trial.config["trial"]]
            if result.get("trial_status") == "running":
                print(epoch_line(name, result, result["epochs"]), flush=True)
            else:
                accuracy = result.get("final_test_accuracy")
                how = f"test accuracy {100 * accuracy:.2f}%" if accuracy is not None else "see trial.json"
                print(f"{name}: {result['trial_status']}: {how} ({result['wall_seconds']:.1f} s)", flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            print(f"{names[trial.config['trial']]}: the Ray worker failed (recorded in trial.json)", flush=True)

    return Lines()


def run_ray(todo: list[tuple[Trial, TrainConfig]], spec: SweepConfig, sweep_dir: Path, *,
            progress: bool = True) -> None:
    """Run ``todo`` (trials and the configs that finish them) as Ray Tune trials.

    A trial whose worker dies outside :func:`run_trial` (killed, out of memory) gets a ``trial.json``
    with status ``"failed"`` and Ray's error as the reason.

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'cifarhelpers[sweep]'``).
        ConfigError: no node of the cluster has the resources one trial asks for.
    """
    resources = trial_resources(spec)
    jobs = {t.index: {"name": t.name, "config": cfg.to_dict(), "threads": max(1, int(resources["cpu"]))}
            for t, cfg in todo}
    with _ray_running(spec) as ray:
        from ray import tune

        available = ray.cluster_resources()
        _check_fits(available, resources)
        storage = sweep_dir / "ray"
        session = 1 + (sum(1 for p in storage.iterdir() if p.name.startswith("tune-")) if storage.is_dir() else 0)
        if progress:
            print(f"ray {ray.__version__}: {available.get('CPU', 0):g} CPUs, "
                  f"{available.get('GPU', 0):g} GPUs ({spec.address or 'local'}); per trial "
                  f"{resources['cpu']:g} CPU, {resources['gpu']:g} GPU", flush=True)
        name_of = {index: job["name"] for index, job in jobs.items()}
        with _plain_tune_output():
            tuner = tune.Tuner(
                tune.with_resources(tune.with_parameters(trainable, trials=jobs), resources),
                param_space={"trial": tune.grid_search(sorted(jobs))},
                tune_config=tune.TuneConfig(max_concurrent_trials=spec.max_concurrent_trials,
                                            trial_name_creator=lambda t: name_of[t.config["trial"]],
                                            trial_dirname_creator=lambda t: name_of[t.config["trial"]],
                                            reuse_actors=True),
                # verbose=0 with a CLIReporter: silent (in a notebook Tune's default reporter would leave
                # an empty HTML output behind); progress comes from _progress_callback
                run_config=tune.RunConfig(name=f"tune-{session}", storage_path=str(storage), verbose=0,
                                          progress_reporter=tune.CLIReporter(),
                                          callbacks=[_progress_callback(name_of)] if progress else [],
                                          failure_config=tune.FailureConfig(max_failures=0)),
            )
            started = time.time()
            results = tuner.fit()
    for result in results:
        index = result.config["trial"] if result.config else None
        if result.error is not None and index in jobs:
            folder = Path(jobs[index]["config"]["output_dir"])
            if not (folder / TRIAL_FILE).is_file() or (folder / TRIAL_FILE).stat().st_mtime < started:
                folder.mkdir(parents=True, exist_ok=True)
                write_json(folder / TRIAL_FILE, trial_record(
                    "failed", name=jobs[index]["name"], reason=f"the Ray worker failed: {str(result.error)[:2000]}"))
