"""Provenance: which code a result came from (the package version and the git commit of its checkout)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CODE_COMMIT_ENV = "CIFARHELPERS_GIT_COMMIT"


def git_state(repo, paths: tuple[str, ...] = (), untracked: bool = True) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout at ``repo``: the full 40-hex commit of HEAD, and whether the
    working tree differs from it (only under ``paths`` when given; untracked files count unless
    ``untracked=False``). ``(None, None)`` when git is missing or ``repo`` is not a checkout; dirty is None
    when git could not tell."""
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
    from (the bundle's ``run.sh``, ``benchmarks/gpu_report --commit``), gives it, with ``-dirty`` at
    its end read as ``+ uncommitted changes``; without it, the version alone."""
    from cifarhelpers import __version__

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
