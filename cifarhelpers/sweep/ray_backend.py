"""The Ray Tune backend of a sweep: every trial a Tune trial, several at once.

:func:`run_ray` starts Ray in this process (``ray.init`` with this machine's cores and GPUs, no
dashboard) unless ``address`` names an existing cluster, or Ray is already running here (a notebook
that called ``ray.init`` itself); it shuts Ray down only when it started it. Each trial asks for
``resources_per_trial`` (e.g. ``{"cpu": 1, "gpu": 0.25}``: four trials share a GPU) and runs
:func:`cifarhelpers.sweep.trials.run_trial` in a Ray worker process, reporting every epoch's
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
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cifarhelpers.errors import ConfigError, require
from cifarhelpers.files import write_json
from cifarhelpers.training import TrainConfig

from .results import epoch_line
from .spec import SweepConfig, Trial
from .trials import TRIAL_FILE, latest_run, load_trial_data, run_trial, trial_record


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


#: Seconds to wait for a cluster's address to accept a connection (see :func:`check_address`).
CONNECT_TIMEOUT = 10.0
_FIX = ("start the cluster there (`ray start --head --port PORT` on the head), give the address its head prints "
        "(--address HOST:PORT, or --address auto on the head itself), or drop --address to run Ray on this machine")


def check_address(address: str) -> None:
    """Fail fast when nothing accepts connections at a ``HOST:PORT`` or ``ray://HOST:PORT`` address:
    ``ray.init`` would retry for many minutes there. ``"auto"`` and ``"local"`` are left to Ray.

    Raises:
        ConfigError: the address refuses or does not answer within :data:`CONNECT_TIMEOUT` seconds.
    """
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if address in ("auto", "local") or not sep or not port.isdigit():
        return  # Ray reads it (RAY_ADDRESS, the running head) and names a bad format itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise ConfigError(f"no Ray cluster answers at address={address!r} ({err}): {_FIX}") from None


@contextlib.contextmanager
def _ray_running(spec: SweepConfig) -> Iterator[Any]:
    ray = require("ray", "sweep", "running a sweep on Ray Tune (backend='ray')")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(**init_arguments(spec))
        except ConnectionError as err:
            if spec.address is None:
                raise
            raise ConfigError(
                f"could not connect to the Ray cluster at address={spec.address!r} ({err}): {_FIX}. A cluster "
                "with token authentication (Ray's default where ~/.ray/auth_token exists) also needs "
                "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here") from err
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
    with status ``"failed"``, Ray's error as the reason and the run folder it left (resuming the
    sweep continues it from its checkpoint).

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'cifarhelpers[sweep]'``).
        ConfigError: no node of the cluster has the resources one trial asks for, or Ray cannot
            connect to ``spec.address`` (the message names the fix).
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
                run = latest_run(folder)  # the run the worker left, so that trial_state reads this record as its end
                write_json(folder / TRIAL_FILE, trial_record(
                    "failed", name=jobs[index]["name"], reason=f"the Ray worker failed: {str(result.error)[:2000]}",
                    run_dir=str(run) if run is not None else None))
