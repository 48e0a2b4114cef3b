"""The package's shape: import-linter's contracts (pyproject.toml) hold, and break on a wrong-way import or a
cycle; every module stays at most 350 lines; each family's ``__init__`` exports what it says; notebooks and
benchmarks import the families' public names, not their modules' insides."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cifarhelpers

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cifarhelpers"
FAMILIES = ("data", "models", "training", "sweep", "analysis", "notebook")
MAX_LINES = 350
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the copy of the package under ``package_parent``, with the contracts of pyproject.toml."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")], cwd=package_parent,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", proc.stdout)
    assert kept and int(kept.group(1)) >= 4, proc.stdout[-2000:]  # families, training, sweep, no cycles


@pytest.mark.parametrize("module, line, broken", [
    ("training/engine.py", "from cifarhelpers.notebook import handoffs", "Families import downward"),
    ("data/transforms.py", "from cifarhelpers.models import build_model", "Families import downward"),
    ("training/config.py", "from . import train", "No import cycles"),
])
def test_a_wrong_way_import_or_a_cycle_breaks_a_contract(tmp_path, module, line, broken):
    shutil.copytree(PACKAGE, tmp_path / "cifarhelpers", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "cifarhelpers" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, f"{module} + {line!r} was not caught:\n{proc.stdout[-3000:]}"
    report = " ".join(proc.stdout.split())
    assert f"{broken}" in report and "BROKEN" in report


@pytest.mark.parametrize("folder", ["cifarhelpers", "benchmarks", "tools"])
def test_every_module_is_at_most_350_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / folder).rglob("*.py"))
            if "__pycache__" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}; split them along their seams"


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_exports_what_its_all_lists_and_nothing_private(family):
    module = importlib.import_module(f"cifarhelpers.{family}")
    assert module.__doc__ and len(module.__doc__) > 200, f"cifarhelpers.{family} needs a docstring naming its modules"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"cifarhelpers.{family}.__all__ names what it does not have: {missing}"
    assert not [n for n in module.__all__ if n.startswith("_")]
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"


def _imports(source: str) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from cifarhelpers... import name`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cifarhelpers":
            found += [(node.module, alias.name) for alias in node.names]
    return found


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    magic = ("%", "!")  # IPython's magics and shell lines: kept as ``pass`` so the blocks around them still parse
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(magic) else line
                     for block in lines for line in block.splitlines())


def _users() -> list[tuple[str, str]]:
    users = [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "benchmarks").rglob("*.py"))]
    users += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "tools").rglob("*.py"))]
    users += [(str(p.relative_to(ROOT)), _notebook_code(p)) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    return users


def test_notebooks_benchmarks_and_tools_import_public_names_only():
    allowed_modules = {"cifarhelpers", *(f"cifarhelpers.{f}" for f in FAMILIES),
                       *(f"cifarhelpers.{m.stem}" for m in PACKAGE.glob("*.py") if m.stem != "__init__")}
    wrong = []
    for where, source in _users():
        for module, name in _imports(source):
            command = module.startswith("cifarhelpers.cli.")  # a command's module is its public face
            if name.startswith("_") or not (module in allowed_modules or command):
                wrong.append(f"{where}: from {module} import {name}")
    assert not wrong, "import these from the family's public names (cifarhelpers.<family>):\n" + "\n".join(wrong)
    assert len(_users()) >= 10


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy: the package imported it first
@pytest.mark.parametrize("command", ["train", "eval", "sweep", "notebooks", "colab"])
def test_each_command_runs_as_a_module(command, monkeypatch, capsys):
    """``python -m cifarhelpers.cli.<command>`` runs the command (run here as ``__main__`` in-process: the same
    module code a fresh interpreter runs, without its seconds of start-up)."""
    monkeypatch.setattr(sys, "argv", [f"cifarhelpers.cli.{command}", "--version"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module(f"cifarhelpers.cli.{command}", run_name="__main__", alter_sys=True)
    assert done.value.code == 0 and capsys.readouterr().out.split()[-1] == cifarhelpers.__version__


def test_the_files_the_suite_starts_first_exist():
    """conftest's LONGEST_FIRST names test files; one renamed would silently lose its place at the front."""
    from conftest import LONGEST_FIRST

    missing = [name for name in LONGEST_FIRST if not (ROOT / "tests" / name).is_file()]
    assert not missing, f"tests/conftest.py's LONGEST_FIRST names files that are not in tests/: {missing}"
