"""environment.yml describes the same environment as pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name = re.split(r"[<>=!~ \[;]", spec, maxsplit=1)[0]
        out[name.lower().replace("_", "-")] = spec.replace(" ", "")
    return out


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"] + [s for extra in project["optional-dependencies"].values()
                                                       for s in extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(d.startswith("python=3.11") for d in conda)
    assert "-e ." in pip
    listed = _requirements([p for p in pip if not p.startswith("-e")])
    assert listed == wanted, "environment.yml and pyproject.toml disagree on names or version bounds"


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_constraints_pin_every_direct_requirement_inside_its_range():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    pins = _constraints()
    for spec in specs:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"constraints.txt does not pin {name}"
        assert req.specifier.contains(pins[name]), f"constraints.txt pins {name}=={pins[name]} outside {spec}"


def test_ranges_accept_the_torch_builds_users_already_have():
    """pip keeps an installed torch that satisfies the range: Colab's, the GPU node's 2.11, ours."""
    from packaging.requirements import Requirement

    deps = {Requirement(s).name: Requirement(s) for s in
            tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for torch_version, vision_version in [("2.6.0", "0.21.0"), ("2.8.0+cu126", "0.23.0+cu126"),
                                          ("2.11.0", "0.26.0"), ("2.14.1", "0.29.1")]:
        assert deps["torch"].specifier.contains(torch_version, prereleases=False), torch_version
        assert deps["torchvision"].specifier.contains(vision_version), vision_version
    assert "==" not in str(deps["torch"].specifier) and "==" not in str(deps["torchvision"].specifier)


def test_importing_the_package_needs_no_notebook_or_test_extra():
    """papermill, ipykernel, jupyter, nbval and pytest are extras: every module of the package
    imports without them, and the notebook runner names the extra to install."""
    import subprocess
    import sys

    blocker = ("import sys, importlib.abc\n"
               "class Block(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path, target=None):\n"
               "        if name.split('.')[0] in {'papermill', 'ipykernel', 'jupyter', 'nbval', 'pytest', 'nbformat'}:\n"
               "            raise ImportError(f'blocked {name}')\n"
               "sys.meta_path.insert(0, Block())\n"
               "import pkgutil, importlib, cifarhelpers\n"
               "for module in pkgutil.walk_packages(cifarhelpers.__path__, 'cifarhelpers.'):\n"
               "    importlib.import_module(module.name)\n"
               "from cifarhelpers.notebook_runner import main\n"
               "raise SystemExit(main(['run', '--profile', 'short']))\n")
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "pip install 'cifarhelpers[notebooks]'" in done.stderr, done.stderr
