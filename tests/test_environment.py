"""environment.yml describes the same environment as pyproject.toml; LICENSE is the license it declares."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: conda-forge's names for what pyproject.toml calls torch (the conda package `pytorch`).
CONDA_NAMES = {"pytorch": "torch"}


def _requirements(specs: list[str]) -> dict[str, str]:
    """name -> the requirement without spaces, under pyproject's (pip's) names."""
    out = {}
    for spec in specs:
        name = re.split(r"[<>=!~ \[;]", spec, maxsplit=1)[0]
        pip_name = CONDA_NAMES.get(name, name)
        out[pip_name.lower().replace("_", "-")] = pip_name + spec[len(name):].replace(" ", "")
    return out


def test_environment_yml_holds_the_package_and_its_notebooks_extra_with_pyprojects_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["notebooks"])
    text = (ROOT / "environment.yml").read_text()
    env = yaml.safe_load(text)
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(d.startswith("python=3.11") for d in conda) and "pip" in conda
    assert "-e ." in pip
    packages = [d for d in conda if not d.startswith(("python=", "pip"))]
    assert {re.split(r"[<>=]", d)[0] for d in packages} == {"pytorch", "torchvision"}, "PyTorch from conda-forge"
    listed = _requirements(packages + [p for p in pip if not p.startswith("-e")])
    assert listed == wanted, "environment.yml and pyproject.toml disagree on names or version bounds"
    for extra in ("test", "tensorboard", "sweep"):  # pytest, nbval, Ray: not for every conda user
        for name in _requirements(project["optional-dependencies"][extra]):
            assert name not in listed, f"{name} (extra {extra}) is in environment.yml"


def test_environment_yml_cuda_advice_asks_for_the_cuda_builds_within_the_same_ranges():
    """The commented lines a conda user pastes for an NVIDIA GPU: conda-forge's build string cuda*,
    pyproject's ranges, both packages."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"])
    text = (ROOT / "environment.yml").read_text()
    cuda = re.findall(r"^#\s+- (pytorch|torchvision) (\S+) cuda\*$", text, flags=re.M)
    assert [name for name, _ in cuda] == ["pytorch", "torchvision"]
    for name, version in cuda:
        pip_name = CONDA_NAMES.get(name, name)
        assert wanted[pip_name] == pip_name + version
    assert "CONDA_OVERRIDE_CUDA=" in text and "conda env create -f environment.yml" in text


def test_license_file_is_the_mit_license_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] in ({"text": "MIT"}, "MIT")  # the table form, or the SPDX string of setuptools>=77
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 cifarhelpers contributors\n")
    assert "Permission is hereby granted, free of charge" in text and 'THE SOFTWARE IS PROVIDED "AS IS"' in text


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
               "from cifarhelpers.cli.notebooks import main\n"
               "raise SystemExit(main(['run', '--profile', 'short']))\n")
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "pip install 'cifarhelpers[notebooks]'" in done.stderr, done.stderr
