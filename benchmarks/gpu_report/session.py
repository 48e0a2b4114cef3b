"""The process around the GPU report's parts: the environment it records (:func:`environment`: device, versions,
git commit), the log every printed line also goes to (:class:`Tee`), the watchdog that interrupts the run in
progress when the budget is spent (:func:`start_watchdog`), and SIGTERM turned into an interruption
(:func:`on_sigterm`) so that the report is finished either way.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import torch

import cifarhelpers
from cifarhelpers.provenance import git_state
from cifarhelpers.training import device_name

from .budget import Budget
from .settings import MAX_LOG_BYTES, usable_cpus


def git_commit(flag: str | None) -> tuple[str | None, str, bool | None]:
    """(commit, where it came from, working tree dirty) from ``--commit`` or ``git rev-parse HEAD``."""
    if flag:
        return flag, "--commit", None
    repo = Path(__file__).resolve().parents[1]  # benchmarks/ in the checkout; the bundle's root in a bundle
    if not (repo.parent / ".git").exists():  # a copy in the bundle: git would name whatever checkout holds it
        return None, "unavailable (not run from the project's git checkout; pass --commit)", None
    sha, dirty = git_state(repo, untracked=False)
    if sha is None:
        return None, "unavailable (no git or not a repository; pass --commit)", None
    return sha, "git rev-parse HEAD", dirty


def environment(device: torch.device, commit_flag: str | None) -> dict:
    """The report's ``environment``: device, GPU, versions, CPU counts, TF32 settings and the git commit."""
    import torchvision

    commit, source, dirty = git_commit(commit_flag)
    env = {
        "device": device_name(device), "device_type": device.type,
        "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
        "python_version": platform.python_version(), "numpy_version": np.__version__,
        "cifarhelpers_version": getattr(cifarhelpers, "__version__", None),
        "cuda_version": torch.version.cuda, "cudnn_version": torch.backends.cudnn.version()
        if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "os_cpu_count": os.cpu_count(), "usable_cpus": usable_cpus(), "torch_threads": torch.get_num_threads(),
        "git_commit": commit, "git_commit_source": source, "git_dirty": dirty, "gpu": None,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env["gpu"] = {"name": p.name, "compute_capability": f"{p.major}.{p.minor}",
                      "memory_mib": p.total_memory / 2**20, "multiprocessors": p.multi_processor_count,
                      "count": torch.cuda.device_count()}
    try:
        import albumentations

        env["albumentations_version"] = albumentations.__version__
    except ImportError:
        env["albumentations_version"] = None
    return env


class Tee:
    """Writes to a stream and a log file (the file stops at ``limit`` bytes); anything else is the
    stream's (encoding, fileno...)."""

    def __init__(self, stream, log, limit: int = MAX_LOG_BYTES):
        self.stream, self.log, self.limit, self.written = stream, log, limit, 0

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        self.stream.write(text)
        if self.written < self.limit:
            data = text if self.written + len(text) <= self.limit else text[: self.limit - self.written] + \
                "\n[log truncated at the size limit]\n"
            self.log.write(data)
            self.written += len(data)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return False


def start_watchdog(budget: Budget, report: dict) -> threading.Timer:
    """A timer that interrupts the main thread (KeyboardInterrupt) when the whole budget is spent,
    so the run in progress is recorded as interrupted and the report is finished in time.

    ``_thread.interrupt_main`` does nothing while SIGINT is ignored, as it is in a process a shell
    starts in the background without job control (``cmd &`` in a script, ``nohup``): then Python's
    default handler is installed first (from the main thread), or the watchdog would never fire.
    """
    import _thread

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def fire():
        report["budget"]["watchdog_fired"] = True
        print(f"\n[watchdog] the {budget.total_seconds:.0f} s budget is spent: interrupting the run in progress",
              file=sys.stderr, flush=True)
        _thread.interrupt_main()

    timer = threading.Timer(max(0.0, budget.total_seconds - budget.elapsed()), fire)
    timer.daemon = True
    timer.start()
    return timer


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so the report is finished."""


def on_sigterm(signum, frame) -> None:
    """SIGTERM's handler: raise :class:`Terminated`."""
    raise Terminated("SIGTERM")
