"""The Ray backend's cluster arguments, fast: ``--address``, ``--cpus-per-trial`` /
``--gpus-per-trial`` (``resources_per_trial``) and ``--max-concurrent-trials`` reaching ``ray.init``
and ``tune.Tuner`` (Ray's functions replaced in this process), a refused connection and a wrong
address failing with the fix named (the latter in a subprocess: a hang would fail, not block), and
the sweep plot drawn when no trial ended. A real cluster: test_ray_cluster.py.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _ray_cluster import free_ports

from cifarhelpers.cli.sweep import main
from cifarhelpers.files import save_figure
from cifarhelpers.sweep import plot_sweep, ray_backend

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed (pip install 'cifarhelpers[sweep]'): the Ray backend's "
                                      "tests need it")


@pytest.fixture
def fake_ray(monkeypatch):
    """Ray's entry points replaced by recorders: ``ray.init`` and ``tune.Tuner`` get the arguments
    the sweep gives them; the Tuner runs nothing (so the sweep ends with every trial pending)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'cifarhelpers[sweep]')")
    from ray import tune

    calls: dict[str, list] = {"init": [], "shutdown": [], "tuner": []}

    class Tuner:
        def __init__(self, trainable, **kwargs):
            calls["tuner"].append((trainable, kwargs))

        def fit(self):
            return []

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls["init"].append(kwargs))
    monkeypatch.setattr(ray, "shutdown", lambda: calls["shutdown"].append(True))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": 2.0})
    monkeypatch.setattr(tune, "with_parameters", lambda trainable, **kwargs: ("with_parameters", trainable, kwargs))
    monkeypatch.setattr(tune, "with_resources", lambda trainable, resources: ("with_resources", trainable, resources))
    monkeypatch.setattr(tune, "Tuner", Tuner)
    return calls


@pytest.fixture
def listening_address():
    """An address where something accepts connections (the sweep checks that before ray.init)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"127.0.0.1:{s.getsockname()[1]}"


def _sweep_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--grid", "max_lr=0.001,0.01", "--model", "dilated_net", "--device", "cpu", "--epochs", "1",
            "--data-root", str(tmp_path / "data"), "--output-dir", str(tmp_path / "runs"), *extra]


@needs_ray
def test_address_resources_and_concurrency_reach_ray_init_and_the_tuner(fake_ray, listening_address, tmp_path,
                                                                        capsys):
    from ray import tune

    rc = main(_sweep_args(tmp_path, "--address", listening_address, "--cpus-per-trial", "2", "--gpus-per-trial",
                          "0.5", "--max-concurrent-trials", "3"))
    assert rc == 130, "the stand-in Tuner ran no trial: the sweep stopped before every trial ended"
    assert fake_ray["init"] == [{"address": listening_address, "log_to_driver": False,
                                 "logging_level": logging.ERROR, "configure_logging": True}], \
        "the cluster's address, and none of a local Ray's own CPU/GPU counts"
    ((trainable, kwargs),) = fake_ray["tuner"]
    (_, (_, function, parameters), resources) = trainable
    assert function is ray_backend.trainable and resources == {"cpu": 2.0, "gpu": 0.5}
    assert [(j["name"], j["threads"]) for j in parameters["trials"].values()] == \
        [("t00_max_lr=0.001_seed=0", 2), ("t01_max_lr=0.01_seed=0", 2)], "torch threads = CPUs per trial"
    assert kwargs["tune_config"].max_concurrent_trials == 3
    assert kwargs["param_space"] == {"trial": tune.grid_search([0, 1])}
    assert fake_ray["shutdown"] == [True], "the sweep shuts down the connection it made"
    assert f"8 CPUs, 2 GPUs ({listening_address}); per trial 2 CPU, 0.5 GPU" in capsys.readouterr().out


@needs_ray
def test_without_an_address_ray_starts_here_with_this_machines_cores(fake_ray, tmp_path):
    import torch

    assert main(_sweep_args(tmp_path, "--backend", "ray")) == 130
    assert fake_ray["init"] == [{"num_cpus": len(os.sched_getaffinity(0)), "num_gpus": torch.cuda.device_count(),
                                 "include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                                 "configure_logging": True}]
    ((trainable, kwargs),) = fake_ray["tuner"]
    assert trainable[2] == {"cpu": 1, "gpu": 0.25 if torch.cuda.is_available() else 0}
    assert kwargs["tune_config"].max_concurrent_trials is None


@needs_ray
def test_a_cluster_that_refuses_the_driver_is_an_error_naming_the_fix(fake_ray, listening_address, monkeypatch,
                                                                      tmp_path, capsys):
    import ray

    def refused(**kwargs):
        raise ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")

    monkeypatch.setattr(ray, "init", refused)
    assert main(_sweep_args(tmp_path, "--address", listening_address)) == 2
    err = capsys.readouterr().err
    assert f"cifar-sweep: error: could not connect to the Ray cluster at address='{listening_address}' " \
           f"(Failed to connect to Ray cluster at {listening_address})" in err
    assert "ray start --head" in err and "drop --address" in err and "RAY_AUTH_MODE=token" in err
    assert fake_ray["tuner"] == [], "no trial was handed to Tune"


@needs_ray
def test_a_wrong_address_fails_in_seconds_naming_the_fix_and_makes_no_sweep_folder(tmp_path):
    (port,) = free_ports(1)  # nothing listens there: ray.init alone would retry for many minutes
    command = [sys.executable, "-m", "cifarhelpers.cli.sweep", *_sweep_args(tmp_path, "--address", f"127.0.0.1:{port}")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=240)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"cifar-sweep hung on a wrong address: {err}")
    assert done.returncode == 2, done.stderr
    assert f"cifar-sweep: error: no Ray cluster answers at address='127.0.0.1:{port}' (" in done.stderr
    assert "ray start --head" in done.stderr and "drop --address" in done.stderr
    assert not (tmp_path / "runs").exists(), "checked before the sweep folder is made"


def test_a_sweep_plot_with_no_trial_ended_yet_still_saves(tmp_path):
    # what _record draws when Ray stops before any trial ends (a refused cluster, Ctrl-C): the log
    # axis has no point to scale from, and saving used to fail with a ValueError
    trials = [{"params": {"max_lr": lr, "seed": 0}, "status": "pending", "final_test_accuracy": None}
              for lr in (1e-3, 1e-2)]
    fig = plot_sweep(trials, "max_lr")
    save_figure(fig, tmp_path / "results.png")
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_xlim() == pytest.approx((5e-4, 2e-2))
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
