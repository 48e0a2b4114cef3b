"""Choosing the training device and naming it in reports."""

from __future__ import annotations

import platform

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a config's ``device`` string.

    Args:
        name: ``"auto"`` (CUDA if available, else Apple MPS, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or ``"mps"``.

    Raises:
        ConfigError: the device is unknown or not available on this machine (the message says
            which devices are).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device={name!r} is not a known device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} asked for CUDA but no CUDA GPU is available here; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"indices 0..{torch.cuda.device_count() - 1}"
            )
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device={name!r} asked for Apple MPS but it is not available here; use 'cpu' or 'auto'")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device={name!r} is not supported: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def device_name(device: torch.device) -> str:
    """Human-readable name: the GPU's name for CUDA, the processor model and core count for CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {model}, {torch.get_num_threads()} threads"


CODE_COMMIT_ENV = "CIFARHELPERS_GIT_COMMIT"


def git_state(repo, paths: tuple[str, ...] = (), untracked: bool = True) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout at ``repo``: the full 40-hex commit of HEAD, and whether the
    working tree differs from it (only under ``paths`` when given; untracked files count unless
    ``untracked=False``). ``(None, None)`` when git is missing or ``repo`` is not a checkout; dirty is None
    when git could not tell."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", *([] if untracked else ["--untracked-files=no"]), "--", *paths)
    return commit, None if status is None else bool(status)


def code_version() -> str:
    """The code a result came from: ``cifarhelpers <version>``, plus the git commit of the checkout the
    package runs from (``git <12 hex>``, ``+ uncommitted changes`` when the package's code or
    pyproject.toml differs from it; executed notebooks and run outputs do not count)
    when it is a git checkout with git installed. An installed copy (a wheel, the offline bundle) has no
    checkout to ask: then ``$CIFARHELPERS_GIT_COMMIT``, set by whoever knows the commit the copy was built
    from (the bundle's ``run.sh``, ``benchmarks/gpu_report.py --commit``), gives it, with ``-dirty`` at
    its end read as ``+ uncommitted changes``; without it, the version alone."""
    import os
    from pathlib import Path

    from . import __version__

    text = f"cifarhelpers {__version__}"
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():  # an installed copy: no checkout to ask
        given = os.environ.get(CODE_COMMIT_ENV, "").strip()
        dirty = given.endswith("-dirty")
        sha = given.removesuffix("-dirty")
        if not sha:
            return text
        return f"{text}, git {sha[:12]}" + (" + uncommitted changes" if dirty else "")
    commit, dirty = git_state(repo, ("cifarhelpers", "pyproject.toml"))
    if commit is None:
        return text
    return f"{text}, git {commit[:12]}" + (" + uncommitted changes" if dirty else "")
