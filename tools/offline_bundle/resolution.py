"""Resolution for another machine: every wheel the target needs, level by level, minus what it has.

pip cannot resolve "for another platform, minus what the target has", so :func:`resolve` does: a
fetcher (:class:`offline_bundle.pip_fetch.PipFetcher`, or a stub in the tests) returns one wheel per
requirement, whose Requires-Dist lines that apply on the target make the next level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import BundleError
from .packaging_compat import Requirement, SpecifierSet, Version, canonicalize_name
from .requirements import dependencies
from .wheels import WheelInfo


@dataclass
class Resolution:
    """What :func:`resolve` chose: the wheels, who needs each, and the target's own packages they need."""

    wheels: dict[str, WheelInfo] = field(default_factory=dict)             # canonical name -> wheel
    required_by: dict[str, set[str]] = field(default_factory=dict)         # name -> who needs it
    provided: dict[str, list[dict]] = field(default_factory=dict)          # target's names bundled wheels need


def resolve(roots: list[Requirement], env: Mapping[str, str], exclude: Mapping[str, str],
            fetch: Callable[[list[Requirement]], dict[str, WheelInfo]], log: Callable[[str], None] = print,
            ) -> Resolution:
    """Every wheel the target needs: ``roots`` and their dependencies for ``env``, minus ``exclude``.

    Works level by level: ``fetch`` gets the requirements first met on a level (each with every
    specifier met so far) and returns one wheel per name; their Requires-Dist lines that apply on
    the target make the next level. A name met again with a specifier its chosen version misses is
    fetched again with both. Finally only wheels reachable from the roots are kept.

    Args:
        roots: what the bundle must provide.
        env: the target's marker environment.
        exclude: canonical names the target has (the closure of its has-list) -> via which has-name.
        fetch: requirements -> {canonical name: WheelInfo}.
    """
    specs: dict[str, SpecifierSet] = {}
    extras: dict[str, set[str]] = {}
    res = Resolution()
    processed: dict[str, tuple[str, frozenset[str]]] = {}   # name -> (version, extras) whose deps are queued
    pending: list[tuple[Requirement, str]] = [(r, "<project>") for r in roots]
    while pending:
        wanted: dict[str, Requirement] = {}
        for req, parent in pending:
            name = canonicalize_name(req.name)
            if req.url:
                raise BundleError(f"{req} (required by {parent}): direct URL requirements are not supported")
            if name in exclude:
                res.provided.setdefault(name, []).append(
                    {"specifier": str(req.specifier), "required_by": parent, "via": exclude[name]})
                continue
            res.required_by.setdefault(name, set()).add(parent)
            specs[name] = specs.get(name, SpecifierSet()) & req.specifier
            extras.setdefault(name, set()).update(canonicalize_name(e) for e in req.extras)
            chosen = res.wheels.get(name)
            if chosen is None or not specs[name].contains(Version(chosen.version), prereleases=True):
                wanted[name] = Requirement(f"{name}{specs[name]}")
        pending = []
        if wanted:
            log(f"resolving {len(wanted)}: {', '.join(str(r) for r in wanted.values())}")
            got = fetch(list(wanted.values()))
            for name in wanted:
                if name not in got:
                    raise BundleError(f"no wheel came back for {wanted[name]}")
                res.wheels[name] = got[name]
        for name, wheel in res.wheels.items():
            state = (wheel.version, frozenset(extras.get(name, ())))
            if processed.get(name) == state:
                continue
            processed[name] = state
            for dep in dependencies(wheel.requires, env, extras.get(name, ())):
                pending.append((dep, f"{name} {wheel.version}"))
    # keep what is reachable from the roots with the final choices (a re-fetch can drop a dependency)
    keep: set[str] = set()
    stack = [canonicalize_name(r.name) for r in roots]
    while stack:
        name = stack.pop()
        if name in keep or name in exclude or name not in res.wheels:
            continue
        keep.add(name)
        stack += [canonicalize_name(d.name) for d in dependencies(res.wheels[name].requires, env, extras.get(name, ()))]
    res.wheels = {n: w for n, w in sorted(res.wheels.items()) if n in keep}
    res.required_by = {n: p for n, p in res.required_by.items() if n in keep}
    return res
