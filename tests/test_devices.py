"""code_version names the code a result came from: in the checkout (git) and in an installed copy
($CIFARHELPERS_GIT_COMMIT); git_state reads a checkout's commit and whether it has changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cifarhelpers
from cifarhelpers.provenance import CODE_COMMIT_ENV, code_version, git_state

ROOT = Path(__file__).resolve().parents[1]


def test_code_version_in_the_checkout_names_the_git_commit(monkeypatch):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    monkeypatch.setenv(CODE_COMMIT_ENV, "deadbeefdead")  # a checkout asks git, whatever the environment says
    assert code_version().startswith(f"cifarhelpers {cifarhelpers.__version__}, git {head}")


def test_git_state_names_the_commit_and_the_changes_that_count(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git")
    assert git_state(tmp_path) == (None, None), "not a checkout"

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    commit, dirty = git_state(tmp_path)
    assert len(commit) == 40 and dirty is False
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert git_state(tmp_path) == (commit, True) and git_state(tmp_path, untracked=False) == (commit, False)
    assert git_state(tmp_path, ("pkg",)) == (commit, False), "a change outside the paths does not count"
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path, ("pkg",)) == (commit, True)


def test_an_installed_copy_takes_the_commit_from_the_environment(tmp_path):
    """A copy of the package outside any checkout (as the offline bundle installs it) cannot ask git;
    the commit it was built from comes from $CIFARHELPERS_GIT_COMMIT, and without it the version alone."""
    shutil.copytree(Path(cifarhelpers.__file__).parent, tmp_path / "cifarhelpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import json, os\n"
        "from cifarhelpers.provenance import code_version\n"
        "out = {}\n"
        "for value in [None, '', '8cd0fd5209cdf6879289b29e54e7ea79b37c5e4b', 'abc1234-dirty']:\n"
        f"    os.environ.pop({CODE_COMMIT_ENV!r}, None)\n"
        f"    if value is not None: os.environ[{CODE_COMMIT_ENV!r}] = value\n"
        "    out[repr(value)] = code_version()\n"
        "import cifarhelpers; out['file'] = cifarhelpers.__file__\n"
        "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(tmp_path)), "the copy, not the checkout, was imported"
    version = f"cifarhelpers {cifarhelpers.__version__}"
    assert out["None"] == version and out["''"] == version
    assert out["'8cd0fd5209cdf6879289b29e54e7ea79b37c5e4b'"] == f"{version}, git 8cd0fd5209cd"
    assert out["'abc1234-dirty'"] == f"{version}, git abc1234 + uncommitted changes"
