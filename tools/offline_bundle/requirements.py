"""What the bundle must provide and what the target has: requirements, markers, closures, constraints.

Pure functions (unit-tested in tests/test_bundle.py): Requires-Dist lines are evaluated for the
TARGET's marker environment (:meth:`offline_bundle.targets.Target.environment`), never for this Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .packaging_compat import Requirement, canonicalize_name

#: Names in the ``notebooks`` extra that serve interactive use only (front ends, widgets, servers).
#: Headless execution (papermill driving an ipykernel) needs none of them, so they are not bundled.
INTERACTIVE_ONLY = frozenset(canonicalize_name(n) for n in (
    "jupyter",            # the metapackage: notebook + jupyterlab + console + nbconvert + ipywidgets
    "notebook", "jupyterlab", "jupyter-console", "qtconsole", "nbclassic", "voila",
    "jupyter-server", "ipywidgets", "widgetsnbextension", "jupyterlab-widgets",
))
#: What executing the notebooks headless needs: always bundled (unless the target has them).
HEADLESS_NOTEBOOK = ("papermill", "ipykernel")
#: The extra the GPU report's ``peer`` part needs (airbench): bundled with the runtime dependencies.
BENCHMARK_EXTRA = "benchmark"


def applies(req: Requirement, env: Mapping[str, str], extras: Iterable[str] = ()) -> bool:
    """Whether ``req`` (one line of Requires-Dist) applies on the target ``env`` when the package
    that declares it is installed with ``extras`` (none: only the unconditional lines)."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def dependencies(requires: Iterable[str] | None, env: Mapping[str, str],
                 extras: Iterable[str] = ()) -> list[Requirement]:
    """The Requires-Dist lines that apply on ``env`` for a package installed with ``extras``."""
    extras = tuple(extras)
    out = []
    for line in requires or ():
        req = Requirement(line)
        if applies(req, env, extras):
            out.append(req)
    return out


def _installed_distribution(name: str):
    from importlib import metadata

    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def installed_closure(names: Iterable[str], env: Mapping[str, str],
                      distribution: Callable[[str], object | None] = _installed_distribution,
                      ) -> tuple[dict[str, str], list[str]]:
    """The has-list and everything it depends on, from installed distributions' metadata.

    Args:
        names: requirement strings of what the target has (versions are ignored here).
        env: the TARGET's marker environment (markers are evaluated for it, not for here).
        distribution: ``name -> object with .requires`` or None when not installed
            (default: ``importlib.metadata`` of the running Python).

    Returns:
        ``(closure, unknown)``: canonical name -> the has-list name it came with (itself for the
        has-list), and the names not installed here, whose own dependencies are therefore unknown.
    """
    roots = [(canonicalize_name(Requirement(n).name), tuple(Requirement(n).extras)) for n in names]
    closure: dict[str, str] = {name: name for name, _ in roots}   # a has-list name comes with itself
    unknown: list[str] = []
    stack = [(name, name, extras) for name, extras in reversed(roots)]
    seen_extras: dict[str, set[str]] = {}
    expanded: set[str] = set()
    while stack:
        name, root, extras = stack.pop()
        new_extras = set(extras) - seen_extras.get(name, set())
        if name in expanded and not new_extras:
            continue
        first = name not in expanded
        expanded.add(name)
        closure.setdefault(name, root)
        seen_extras.setdefault(name, set()).update(extras)
        dist = distribution(name)
        if dist is None:
            if first:
                unknown.append(name)
            continue
        for req in dependencies(getattr(dist, "requires", None), env, seen_extras[name]):
            stack.append((canonicalize_name(req.name), root, tuple(req.extras)))
    return closure, sorted(unknown)


def project_requirements(pyproject: Mapping, extra: str = "notebooks") -> tuple[list[Requirement], list[str]]:
    """What the bundle must provide: runtime dependencies, the :data:`BENCHMARK_EXTRA` extra, the ``extra``
    minus interactive-only names, and :data:`HEADLESS_NOTEBOOK` where not named yet. Returns (requirements,
    skipped names)."""
    project = pyproject["project"]
    reqs = [Requirement(s) for s in project.get("dependencies", [])]
    reqs += [Requirement(s) for s in project.get("optional-dependencies", {}).get(BENCHMARK_EXTRA, [])]
    skipped = []
    for spec in project.get("optional-dependencies", {}).get(extra, []):
        req = Requirement(spec)
        if canonicalize_name(req.name) in INTERACTIVE_ONLY:
            skipped.append(req.name)
        else:
            reqs.append(req)
    named = {canonicalize_name(r.name) for r in reqs}
    reqs += [Requirement(n) for n in HEADLESS_NOTEBOOK if canonicalize_name(n) not in named]
    return reqs, skipped


def read_constraints(path: Path | None) -> dict[str, Requirement]:
    """``constraints.txt``: canonical name -> requirement (comments, blank lines and options skipped)."""
    if path is None or not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        out[canonicalize_name(req.name)] = req
    return out

