"""environment.yml describes the same environment as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
