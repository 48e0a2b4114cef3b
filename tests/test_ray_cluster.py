"""Sweeps on a real Ray cluster: a head started here (``ray start --head`` on 127.0.0.1, its own
ports and temp folder, token authentication), ``cifar-sweep --address`` running every trial there
(proved by Ray's own records in that cluster's session folder), a trial that raises and one whose
worker is killed, each recorded while the others go on, and a driver without the cluster's token
refused with the fix named. The fast tests of the Ray backend's arguments are in test_ray_backend.py.

These tests are ``slow`` (the head, the drivers and the workers each import Ray and torch on 2 shared
cores). Ray 2.60's raylet gives its agents 15 s to start (not configurable), which a loaded machine
can miss: the cluster's processes skip one slow optional import (``_ray_cluster.SKIP_SLOW_IMPORT``),
and the fixture tries again (:data:`START_ATTEMPTS`), printing each try's time and load average
(shown when a test fails).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from _ray_cluster import Cluster, session_pids, start_head, stop_head

from cifarhelpers.sweep import SWEEP_FILE

#: Tries at starting the head before the cluster tests fail (each failed try costs about a minute).
START_ATTEMPTS = 3
#: Seconds a cifar-sweep on the cluster may take before the test fails as hung.
SWEEP_TIMEOUT = 600
#: The cluster's sweep: 2 training-set sizes x 2 epoch counts on the small real copy (200 training
#: images): 1,000 images raise inside the worker; the 40-epoch trial of 64 images is killed after
#: its first epoch; the 1-epoch trial of 64 images completes.
GRID = ["--grid", "train_subset=64,1000", "--grid", "epochs=1,40"]
TINY = ["--model", "dilated_net", "--max-lr", "0.01", "--device", "cpu", "--test-subset", "50", "--batch-size", "32",
        "--seeds", "0"]


@pytest.fixture(scope="module")
def ray_cluster(one_ray_at_a_time):
    """A Ray head on this machine for the module's tests, stopped (every process of it) afterwards.

    Token authentication, as Ray 2.60 sets up where a token exists, with a token of its own given
    to the head and to the drivers through the environment; ``RAY_ADDRESS`` removed so that only
    ``--address`` can lead a driver to it. Its temp folder is short (Ray's Unix sockets live
    there, and their paths must stay under 108 bytes).
    """
    ray = Path(sys.executable).with_name("ray")
    if importlib.util.find_spec("ray") is None or not ray.is_file():
        pytest.skip("Ray is not installed (pip install 'cifarhelpers[sweep]'): no `ray` command to start a cluster")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = None
    try:
        logs = []
        for attempt in range(1, START_ATTEMPTS + 1):
            logs.append(temp / f"ray-start-{attempt}.log")
            begun = time.monotonic()
            proc, address, started = start_head(temp, env, logs[-1])
            print(f"ray start, try {attempt}: {'started' if started else 'failed'} after "
                  f"{time.monotonic() - begun:.0f} s, load average {os.getloadavg()[0]:.1f}")
            if started:
                break
            stop_head(proc)
            proc = None
            raylet = temp / "session_latest" / "logs" / "raylet.out"
            fatal = [line for line in raylet.read_text(errors="replace").splitlines() if " C " in line][-1:] \
                if raylet.is_file() else []
            logs[-1] = f"{logs[-1].read_text(errors='replace').splitlines()[-1:]} {fatal}"
        else:
            pytest.fail(f"the Ray head did not start in {START_ATTEMPTS} tries (load average now "
                        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); they said: {logs}", pytrace=False)
        yield Cluster(address=address, session=(temp / "session_latest").resolve(), env=env, sid=proc.pid)
    finally:
        if proc is not None:
            stop_head(proc)
        shutil.rmtree(temp, ignore_errors=True)


@dataclass
class ClusterSweep:
    rc: int
    out: str
    err: str
    driver_pid: int
    killed_pid: int | None
    sweep_dir: Path
    saved: dict


def _trial(saved: dict, train_subset: int, epochs: int) -> dict:
    params = {"train_subset": train_subset, "epochs": epochs, "seed": 0}
    (trial,) = [t for t in saved["trials"] if t["params"] == params]
    return trial


def _kill_after_first_epoch(cluster: Cluster, proc: subprocess.Popen, prefix: str) -> int | None:
    """Wait until the trial named ``prefix...`` has reported its first epoch to Tune (the driver's
    ``result.json`` in the cluster's session folder names the worker's pid), then SIGKILL that
    worker, a process of the cluster's session. Returns its pid, or None if the sweep ended first."""
    pattern = f"artifacts/*/tune-*/driver_artifacts/{prefix}*/result.json"
    while proc.poll() is None:
        for result in cluster.session.glob(pattern):
            text = result.read_text()  # whole lines only: the driver may be writing the next one
            lines = [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]
            if any(r.get("trial_status") == "running" for r in lines):
                pid = lines[0]["pid"]
                assert pid in session_pids(cluster.sid), "the trial's worker is a process of the cluster"
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.2)
    return None


@pytest.fixture(scope="module")
def cluster_sweep(ray_cluster, small_root, tmp_path_factory) -> ClusterSweep:
    """``python -m cifarhelpers.cli.sweep --address <the cluster>`` on the small real copy, 2 trials
    at a time; the 40-epoch trial's worker killed after its first epoch."""
    folder = tmp_path_factory.mktemp("cluster-sweep")
    command = [sys.executable, "-m", "cifarhelpers.cli.sweep", "--address", ray_cluster.address, *GRID, *TINY,
               "--data-root", str(small_root), "--output-dir", str(folder / "runs"), "--cpus-per-trial", "1",
               "--max-concurrent-trials", "2"]
    begun = time.monotonic()
    with open(folder / "out.txt", "wb") as out, open(folder / "err.txt", "wb") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=ray_cluster.env, cwd=folder)
    try:
        killed = _kill_after_first_epoch(ray_cluster, proc, "t01_train_subset=64_epochs=40")
        proc.wait(timeout=SWEEP_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"the sweep on the cluster: {time.monotonic() - begun:.0f} s, exit status {proc.returncode}")
    sweep_dirs = list((folder / "runs").glob("sweep-*"))
    assert len(sweep_dirs) == 1, (folder / "err.txt").read_text()
    return ClusterSweep(rc=proc.returncode, out=(folder / "out.txt").read_text(), err=(folder / "err.txt").read_text(),
                        driver_pid=proc.pid, killed_pid=killed, sweep_dir=sweep_dirs[0],
                        saved=json.loads((sweep_dirs[0] / SWEEP_FILE).read_text()))


# -- the cluster ---------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.data
def test_cifar_sweep_with_an_address_runs_every_trial_on_that_cluster(ray_cluster, cluster_sweep):
    run, logs = cluster_sweep, ray_cluster.session / "logs"
    assert "backend: ray (asked for)" in run.out, run.err
    assert re.search(rf"ray \S+: 2 CPUs, 0 GPUs \({re.escape(ray_cluster.address)}\); per trial 1 CPU, 0 GPU", run.out)
    assert run.saved["backend"] == "ray" and run.saved["spec"]["address"] == ray_cluster.address
    assert run.saved["status"] == "completed" and len(run.saved["trials"]) == 4
    # Ray's own record, in the session folder of the cluster started above (a local Ray would write
    # none of it there): the sweep's process joined it as a driver, under a job id...
    drivers = [m for p in logs.iterdir() if (m := re.fullmatch(rf"python-core-driver-([0-9a-f]{{8}})[0-9a-f]*_"
                                                                 rf"{run.driver_pid}\.log", p.name))]
    assert len(drivers) == 1, f"no driver log of pid {run.driver_pid} in {sorted(p.name for p in logs.iterdir())}"
    job = drivers[0].group(1)
    workers = set()
    for trial in run.saved["trials"]:
        # ...every trial reported to Tune from a worker process (its pid in Tune's result.json)...
        lines = (run.sweep_dir / "ray" / "tune-1" / trial["name"] / "result.json").read_text().splitlines()
        pid = json.loads(lines[-1])["pid"]
        workers.add(pid)
        # ...that this cluster's raylet started for that job, and that ran in the trial's Tune
        # working folder inside this cluster's session
        assert [p.name for p in logs.glob(f"worker-*-{job}-{pid}.out")], f"{trial['name']}: pid {pid} is no worker " \
                                                                           f"of job {job} of this cluster"
        assert list(ray_cluster.session.glob(f"artifacts/*/tune-1/working_dirs/{trial['name']}")), trial["name"]
    assert run.driver_pid not in workers and len(workers) >= 2, "the trials ran in worker processes, two at a time"


@pytest.mark.slow
@pytest.mark.data
def test_on_the_cluster_a_raising_trial_and_a_killed_worker_are_recorded_and_the_others_go_on(cluster_sweep):
    run = cluster_sweep
    completed = _trial(run.saved, 64, 1)
    assert completed["status"] == "completed" and 0 <= completed["final_test_accuracy"] <= 1
    for epochs in (1, 40):  # raised inside the worker: caught there by run_trial, with its reason
        raised = _trial(run.saved, 1000, epochs)
        assert raised["status"] == "failed" and raised["reason"].startswith(
            "ConfigError: train_subset=1000 is out of range: it must be an integer from 1 to 200"), raised
        reports = (run.sweep_dir / "ray" / "tune-1" / raised["name"] / "result.json").read_text().splitlines()
        assert json.loads(reports[-1])["trial_status"] == "failed", "the worker reported the failure to Tune"
    assert run.killed_pid is not None, f"the 40-epoch trial was never seen running: {run.err[-2000:]}"
    killed = _trial(run.saved, 64, 40)
    assert killed["status"] == "failed" and killed["reason"].startswith("the Ray worker failed: "), killed
    assert killed["run_dir"] and 1 <= killed["epochs"] < 40, "the run folder it left, checkpointed at epoch 1 or more"
    on_disk = json.loads((run.sweep_dir / "trials" / killed["name"] / "trial.json").read_text())
    assert (on_disk["status"], on_disk["run_dir"]) == ("failed", killed["run_dir"])
    assert run.saved["status"] == "completed", "every trial ended: the sweep went on past both failures"
    with open(run.sweep_dir / "results.csv") as f:
        rows = {(r["train_subset"], r["epochs"]): (r["completed"], r["failed"]) for r in csv.DictReader(f)}
    assert rows == {("64", "1"): ("1", "0"), ("64", "40"): ("0", "1"), ("1000", "1"): ("0", "1"),
                    ("1000", "40"): ("0", "1")}
    # the documented exit status: 1 when a trial failed, naming them and how to run them again
    assert run.rc == 1, run.err[-2000:]
    assert "cifar-sweep: 3 trial(s) failed" in run.err and f"cifar-sweep --resume {run.sweep_dir}" in run.err


@pytest.mark.slow
@pytest.mark.data
def test_a_driver_without_the_clusters_token_is_refused_with_the_fix_named(ray_cluster, small_root, tmp_path):
    env = {k: v for k, v in ray_cluster.env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    command = [sys.executable, "-m", "cifarhelpers.cli.sweep", "--address", ray_cluster.address, *TINY,
               "--grid", "train_subset=64", "--epochs", "1", "--data-root", str(small_root),
               "--output-dir", str(tmp_path / "runs")]
    try:  # Ray retries about 20 times, a second apart, before it gives up
        done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=SWEEP_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"cifar-sweep hung on a cluster that refuses it: {err}")
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"cifar-sweep: error: could not connect to the Ray cluster at address='{ray_cluster.address}'" \
        in done.stderr and "RAY_AUTH_MODE=token" in done.stderr and "RAY_AUTH_TOKEN" in done.stderr
