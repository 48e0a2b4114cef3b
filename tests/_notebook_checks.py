"""Helpers of the notebook chain test (tests/test_notebooks.py): which outputs of an executed notebook must
equal the committed notebook's, and what a run leaves in the checkout.

Profile-independent cells: a code cell whose source holds ``# NBVAL_CHECK_OUTPUT`` (nbval's marker, so
``pytest --nbval-lax notebooks/`` checks the same cells) prints what does not depend on the device, the profile
or the run: class counts and statistics of the whole copy, parameter counts, summary and receptive-field tables,
and checks that print True when the notebook's results hang together. Their text outputs (stdout and each
result's ``text/plain``; stderr is left out: warnings differ between machines) must be equal after the regexes
of ``notebooks/nbval_sanitize.cfg`` (timings, addresses, paths), the one list of what may still vary.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
from pathlib import Path

from cifarhelpers.notebook import NOTEBOOKS_DIR

CHECKED = "# NBVAL_CHECK_OUTPUT"
SANITIZE_CFG = NOTEBOOKS_DIR / "nbval_sanitize.cfg"
REPO_ROOT = NOTEBOOKS_DIR.parent
#: Folders of the checkout that hold the environment, not outputs: entries only, their contents are not read
#: (.cache holds the data copy and its decode cache, which loading the copy writes once, by design).
ENVIRONMENT = {".git", ".venv", ".cache"}
#: The caches of the tools that run the tests (another pytest session may write them meanwhile): left out.
TOOL_CACHES = {"__pycache__", ".pytest_cache", ".ruff_cache", ".import_linter_cache", ".mypy_cache"}


def sanitizers(path: Path = SANITIZE_CFG) -> list[tuple[re.Pattern, str]]:
    """The ``(regex, replacement)`` pairs of an nbval sanitize file (sections with ``regex`` and ``replace``)."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise FileNotFoundError(path)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def is_checked(cell) -> bool:
    """Whether a cell is a profile-independent one, whose outputs are compared."""
    return cell.cell_type == "code" and CHECKED in cell.source


def checked_text(cell, rules: list[tuple[re.Pattern, str]]) -> str:
    """A code cell's stdout and results (``text/plain``), joined, with ``rules`` applied (:func:`sanitizers`)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            parts.append("".join(output.get("text", "")))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
    text = "".join(parts)
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def _newest(path: Path) -> float:
    """The newest modification time of ``path`` and everything under it (tool caches left out)."""
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_mtime if os.path.lexists(path) else -1.0
    newest = path.stat().st_mtime
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in TOOL_CACHES]
        for name in dirs + files:
            newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest


def checkout_state(root: Path = REPO_ROOT) -> dict[str, str] | None:
    """What a run could have written into the git checkout at ``root``, as ``git status --ignored`` shows it
    (a folder once): every ignored entry (``runs/``, ``data/``, ``.ipynb_checkpoints/``, where outputs land) with
    the newest modification time under it, every untracked entry (present or not: its files are source being
    written, so only a new entry counts), and the content of the committed notebooks, which the chain reads.
    Tool caches are left out, and the folders of :data:`ENVIRONMENT` are not read into. None when ``root`` is
    not a git checkout.

    Two states taken around a run are equal when the run wrote nothing there; in a working tree where someone
    else adds a file or an ignored folder meanwhile, the difference names it too.
    """
    try:
        listing = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--ignored=matching"], cwd=root,
                                 capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    state: dict[str, str] = {}
    tokens = iter(listing.split("\0"))
    for token in tokens:
        if not token:
            continue
        code, path = token[:2], token[3:]
        if code[0] in "RC":
            next(tokens, None)  # a rename's or copy's source path follows
        if code not in ("??", "!!") or TOOL_CACHES & set(Path(path).parts):
            continue
        top = Path(path).parts[0]
        state[path] = code if code == "??" or top in ENVIRONMENT else f"{code} {_newest(root / path)}"
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        state[notebook.relative_to(root).as_posix()] = notebook.read_text(encoding="utf-8")
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The entries of two :func:`checkout_state` results that differ, e.g. ``["runs/ (new)"]``."""
    found = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            found.append(f"{path} (new)")
        elif path not in after:
            found.append(f"{path} (gone)")
        elif before[path] != after[path]:
            found.append(f"{path} (changed)")
    return found


__all__ = ["CHECKED", "REPO_ROOT", "SANITIZE_CFG", "changes", "checked_text", "checkout_state", "is_checked",
           "sanitizers"]
