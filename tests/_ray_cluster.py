"""Starting and stopping a Ray cluster on this machine for tests (``tests/test_ray_cluster.py``).

:func:`start_head` runs ``ray start --head --block`` on 127.0.0.1 with free ports, no dashboard
and 2 CPUs, in a process session of its own; :func:`stop_head` stops it and then kills, by pid,
whatever of that session is left (workers, agents). Nothing here touches another Ray on the
machine (no ``ray stop``, which stops every Ray of the user).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Seconds one try at starting the head may take before it counts as failed (Ray gives up by
#: itself after about 70 s).
START_TIMEOUT = 180


@dataclass
class Cluster:
    """A running Ray head: its address, the session folder it writes its records into, the
    environment a driver needs (its token), and the id of the process session it leads."""

    address: str
    session: Path
    env: dict[str, str]
    sid: int


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def session_pids(sid: int) -> list[int]:
    """The processes of session ``sid`` (the ``ray start`` process and all it started, workers included)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2:].split()[3]) == sid:
                pids.append(int(stat.parent.name))
    return pids


def stop_head(proc: subprocess.Popen) -> None:
    """SIGTERM ``ray start --block`` (it drains the node and stops what it started), then SIGKILL
    whatever is left of its process session, by pid."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    for pid in session_pids(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


#: What the cluster's Python processes run first (a ``sitecustomize`` on their PYTHONPATH only).
#: Every Ray process imports jsonschema, which imports its optional IRI checker rfc3987_syntax, and
#: that builds about 35 Earley parsers at import (jsonschema issue #1428): 2.5 of the 3.2 CPU
#: seconds of ``import ray.dashboard.agent`` here. Ray 2.60's raylet gives its dashboard agent 15 s
#: to start (not configurable); on 2 cores at load 7 that import alone missed it in about half the
#: tries (head start 30-60 s, or failure), without it the head starts in about 10 s. Nothing in Ray
#: or cifarhelpers checks IRI formats; the driver (the ``cifar-sweep`` under test) is left as it is.
SKIP_SLOW_IMPORT = 'import sys\nsys.modules.setdefault("rfc3987_syntax", None)  # see tests/_ray_cluster.py\n'


def cluster_env(temp: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` for the cluster's own processes (head, agents, workers): :data:`SKIP_SLOW_IMPORT` as
    a ``sitecustomize`` in ``temp/startup`` first on PYTHONPATH; ``env`` itself where Python
    already has a sitecustomize (it would hide it)."""
    if importlib.util.find_spec("sitecustomize") is not None:
        return env
    startup = temp / "startup"
    startup.mkdir(exist_ok=True)
    (startup / "sitecustomize.py").write_text(SKIP_SLOW_IMPORT)
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(startup), env.get("PYTHONPATH")]))}


def start_head(temp: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str, bool]:
    """One try at ``ray start --head --block`` on 127.0.0.1 with free ports, no dashboard and 2 CPUs,
    in :func:`cluster_env`: the process, the address, and whether it printed that the runtime started."""
    port, *other = free_ports(8)
    ray = Path(sys.executable).with_name("ray")
    flags = {"--port": port, "--object-manager-port": other[0], "--node-manager-port": other[1],
             "--ray-client-server-port": other[2], "--dashboard-port": other[3],
             "--dashboard-agent-listen-port": other[4], "--dashboard-agent-grpc-port": other[5],
             "--runtime-env-agent-port": other[6]}
    command = [str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
               "--num-gpus", "0", "--include-dashboard=false", "--include-log-monitor=false", "--disable-usage-stats",
               "--temp-dir", str(temp), "--object-store-memory", str(100 * 2**20),
               *(str(x) for item in flags.items() for x in item)]
    with open(log, "wb") as out:  # its own session: every process of the cluster can be found and stopped
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=cluster_env(temp, env),
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return proc, f"127.0.0.1:{port}", True
        time.sleep(0.5)
    return proc, f"127.0.0.1:{port}", False
