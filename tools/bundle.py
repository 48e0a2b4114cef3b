"""Build an offline bundle of cifarhelpers for a machine with no package index (a GPU node).

A GPU node often has no internet but ships Python with torch. The bundle is one folder holding
every wheel the node lacks, the project's own wheel, the CIFAR-10 archive, the notebooks, the GPU
report script and ``run.sh``, which installs it all offline into a temporary folder and runs a job::

    make bundle                                     # = the line below, for our GPU node
    .venv/bin/python tools/bundle.py --target gpu-node        # -> dist/bundle-gpu-node/ (at most 60 MiB)
    .venv/bin/python tools/bundle.py                          # this machine's Python and platform -> dist/bundle-local/
    .venv/bin/python tools/bundle.py --python-version 3.12 --platform manylinux_2_28_x86_64 \\
        --has torch torchvision numpy --out dist/my-bundle    # any target: what it has is an input
    .venv/bin/python tools/bundle.py --target gpu-node --offline  # only wheels already in the cache

    # on the node, from any folder (its output: --out; at most 8 files come back from our node):
    bash dist/bundle-gpu-node/run.sh gpu-report --out "$OUT"
    bash dist/bundle-gpu-node/run.sh train --epochs 24
    bash dist/bundle-gpu-node/run.sh notebooks --profile full --output-dir "$OUT"
    bash dist/bundle-gpu-node/run.sh python -c 'import cifarhelpers'
    bash dist/bundle-gpu-node/run.sh check           # install, import and kernel check only (no data, no job)

``dist/`` is ignored by git: a runner that copies the working tree must be told to take the bundle
along (the project's device runner: ``carry: ["dist/bundle-gpu-node"]``, 64 MiB at most).

What goes in ``wheels/``: the project's runtime dependencies (``[project].dependencies`` in
pyproject.toml), what headless notebook execution needs (the ``notebooks`` extra minus the
interactive-only names in :data:`INTERACTIVE_ONLY`, plus :data:`HEADLESS_NOTEBOOK`), the ``benchmark``
extra (airbench, the GPU report's peer part), and their dependencies recursively, for the TARGET's Python version and platform, minus what the target has.
pip cannot resolve "for another platform, minus what the target has", so this script resolves
itself: it downloads each needed requirement with ``pip download --no-deps --only-binary=:all:
--python-version .. --platform .. --implementation cp --abi cp3XX`` (with older manylinux tags as
fallbacks), reads the wheel's ``Requires-Dist``, evaluates the markers for the target (its Python
version, Linux, its machine, the requested extras) and recurses into names the target lacks. A
requirement published only as a source distribution (grad-cam 1.5.7, airbench 0.1.8) is built here with ``pip
wheel --no-deps --no-binary NAME``; that is allowed for pure-Python projects only (a compiled one
fails with a message saying so). Versions follow ``constraints.txt`` at the repo root when it
exists (``-c``), so the bundle gets the versions CI tests.

What the target has is an input (``--has NAME ...``, or a target's preset list). Neither those nor
their own dependencies are bundled: a node that has torch has torch's dependencies. ASSUMPTION: the
dependencies of the has-list are computed from the distributions installed in the Python running
this script (``importlib.metadata``; run it with the project's ``.venv``), a close stand-in for a
node with those packages. A has-list name not installed here counts as present with unknown
dependencies (it is said so). The versions on the node are unknown here: ``run.sh`` checks at start
that the node's packages satisfy the bundled wheels' requirements on them and warns otherwise, and
``--force NAME`` bundles a package even though the target has it (it then shadows the node's copy).

The bundle is built from scratch in a temporary folder beside the final one and moved into place
only when complete and within ``--max-mib``. Downloaded and built wheels are cached in
``.cache/bundle-wheels/<tag>/`` (ignored by git) and found there by the next build (``--offline``
uses the cache alone).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform as platform_module
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from urllib.parse import unquote

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    from pip._vendor import tomli as tomllib

try:  # the project's .venv has packaging; a bare Python still has pip's vendored copy
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.tags import sys_tags
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version
except ImportError:  # pragma: no cover - depends on the interpreter
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename
    from pip._vendor.packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
DEFAULT_CACHE = ROOT / ".cache" / "bundle-wheels"
DEFAULT_MAX_MIB = 60.0
MIB = 1024 * 1024

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
#: Modules of benchmarks/ that gpu_report.py loads from its own folder: copied beside it.
REPORT_SIBLINGS = ("peer_airbench.py", "report_plans.py")
#: Top-level modules the import check must not import: importing ipykernel_launcher starts a kernel.
NEVER_IMPORT = frozenset({"ipykernel_launcher"})

#: Our GPU node: Python 3.12, Linux x86_64 (manylinux_2_28 is safe), torch 2.11 (CUDA 13),
#: torchvision 0.26 and the packages below preinstalled; no package index.
GPU_NODE_HAS = (
    "torch==2.11", "torchvision==0.26", "numpy", "scipy", "opencv-python-headless", "matplotlib",
    "seaborn", "scikit-learn", "pandas", "pillow", "pyyaml", "tqdm", "tensorboard", "psutil",
)
#: The node's typing-extensions comes with its torch 2.11 and may be older than pydantic's floor
#: (pydantic 2.14 needs >=4.16); it is pure Python, backward compatible and 0.1 MB: bundle ours.
GPU_NODE_FORCE = ("typing-extensions",)

TARGETS: dict[str, dict] = {
    "gpu-node": {"python_version": "3.12", "platform": "manylinux_2_28_x86_64",
                 "has": GPU_NODE_HAS, "force": GPU_NODE_FORCE},
    # this machine's interpreter and platform; the same has-list, so a local bundle stands in for
    # the node's (tests/test_bundle.py runs one end to end)
    "local": {"python_version": None, "platform": None, "has": GPU_NODE_HAS, "force": GPU_NODE_FORCE},
}


class BundleError(Exception):
    """A bundle cannot be built; the message says why and what to do."""


# ------------------------------------------------------------------------------------------
# The target: tags for pip, the environment for markers
# ------------------------------------------------------------------------------------------

_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


def platform_fallbacks(platform: str) -> list[str]:
    """The platform tags a target with ``platform`` accepts, best first.

    ``manylinux_2_28_x86_64`` accepts every manylinux wheel for an older glibc: manylinux_2_27 ..
    manylinux_2_5 and the legacy aliases manylinux2014 (= 2_17), manylinux2010 (= 2_12) and
    manylinux1 (= 2_5). Other platforms are returned as given.
    """
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    legacy = re.fullmatch(r"(manylinux2014|manylinux2010|manylinux1)_(\w+)", platform)
    if legacy:
        major, minor = _LEGACY_MANYLINUX[legacy.group(1)]
        arch = legacy.group(2)
    elif m:
        major, minor, arch = int(m.group(1)), int(m.group(2)), m.group(3)
    else:
        return [platform]
    out = [f"manylinux_{major}_{n}_{arch}" for n in range(minor, 4, -1)]
    for alias, (_, n) in _LEGACY_MANYLINUX.items():
        if n <= minor:
            out.insert(out.index(f"manylinux_{major}_{n}_{arch}") + 1, f"{alias}_{arch}")
    return out


def local_platform() -> str:
    """This machine's best manylinux platform tag (e.g. ``manylinux_2_36_x86_64``), else its first tag."""
    platforms = [t.platform for t in sys_tags()]
    return next((p for p in platforms if p.startswith("manylinux")), platforms[0])


def platform_machine(platform: str) -> str:
    """``platform_machine`` of a platform tag: ``manylinux_2_28_x86_64`` -> ``x86_64``."""
    for arch in ("x86_64", "aarch64", "ppc64le", "s390x", "armv7l", "i686", "arm64", "universal2"):
        if platform.endswith(arch):
            return arch
    return platform.rsplit("_", 1)[-1]


@dataclass
class Target:
    """A Python version and platform to bundle for, and what it already has."""

    name: str
    python_version: str              # "3.12"
    platform: str                    # the best platform tag, e.g. "manylinux_2_28_x86_64"
    has: tuple[str, ...] = ()        # requirement strings: "torch==2.11", "numpy"
    force: tuple[str, ...] = ()      # bundled even though the target has them

    @property
    def py_nodot(self) -> str:
        return self.python_version.replace(".", "")

    @property
    def tag(self) -> str:
        """``cp312-manylinux_2_28_x86_64``: names the wheel cache."""
        return f"cp{self.py_nodot}-{self.platform}"

    @property
    def platforms(self) -> list[str]:
        return platform_fallbacks(self.platform)

    @property
    def abis(self) -> list[str]:
        return [f"cp{self.py_nodot}", "abi3", "none"]

    def environment(self) -> dict[str, str]:
        """The PEP 508 marker environment of the target (CPython on Linux when the tag says so)."""
        return target_environment(self.python_version, self.platform)

    def pip_args(self) -> list[str]:
        args = ["--python-version", self.python_version, "--implementation", "cp"]
        for abi in self.abis:
            args += ["--abi", abi]
        for plat in self.platforms:
            args += ["--platform", plat]
        return args


def target_environment(python_version: str, platform: str) -> dict[str, str]:
    """Marker values for CPython ``python_version`` on ``platform`` (a wheel platform tag).

    This interpreter's full version is used when it is the same X.Y, else X.Y.0.
    """
    here = default_environment()
    full = here["python_full_version"] if here["python_version"] == python_version else f"{python_version}.0"
    env = {
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "python_version": python_version,
        "python_full_version": full,
        "platform_machine": platform_machine(platform),
        "platform_release": "",
        "platform_version": "",
    }
    if platform.startswith(("manylinux", "musllinux", "linux")):
        env.update(os_name="posix", sys_platform="linux", platform_system="Linux")
    elif platform.startswith("macosx"):
        env.update(os_name="posix", sys_platform="darwin", platform_system="Darwin")
    elif platform.startswith("win"):
        env.update(os_name="nt", sys_platform="win32", platform_system="Windows")
    else:
        env.update(os_name=here["os_name"], sys_platform=here["sys_platform"], platform_system=here["platform_system"])
    return env


def make_target(name: str | None, python_version: str | None = None, platform: str | None = None,
                has: Iterable[str] | None = None, force: Iterable[str] | None = None) -> Target:
    """A preset (``gpu-node``, ``local``) with flags overriding its fields; no preset: flags only."""
    preset = TARGETS.get(name or "local")
    if preset is None:
        raise BundleError(f"unknown target {name!r}; presets: {sorted(TARGETS)} (or give --python-version/--platform)")
    if name is None and (python_version or platform):
        preset = {"python_version": None, "platform": None, "has": (), "force": ()}
    pv = python_version or preset["python_version"] or f"{sys.version_info.major}.{sys.version_info.minor}"
    if not re.fullmatch(r"3\.\d+", pv):
        raise BundleError(f"--python-version {pv!r}: expected 3.X, e.g. 3.12")
    plat = platform or preset["platform"] or local_platform()
    label = name or f"cp{pv.replace('.', '')}-{plat}"
    return Target(label, pv, plat, tuple(preset["has"] if has is None else has),
                  tuple(preset["force"] if force is None else force))


# ------------------------------------------------------------------------------------------
# Requirements, markers and closures (pure: unit-tested in tests/test_bundle.py)
# ------------------------------------------------------------------------------------------


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


def check_size(sizes: Mapping[str, int], max_mib: float, show: int = 8) -> float:
    """Total size in MiB of ``{relative path: bytes}``; above ``max_mib`` a BundleError lists the largest."""
    total = sum(sizes.values()) / MIB
    if total > max_mib:
        largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:show]
        lines = "\n".join(f"  {size / MIB:8.2f} MiB  {path}" for path, size in largest)
        raise BundleError(f"the bundle would be {total:.2f} MiB, above the limit of {max_mib:g} MiB "
                          f"(--max-mib). Largest files:\n{lines}\nAdd what the target already has to --has, "
                          f"or raise --max-mib if the target allows it.")
    return total


# ------------------------------------------------------------------------------------------
# Wheels
# ------------------------------------------------------------------------------------------


@dataclass
class WheelInfo:
    path: Path
    name: str                   # canonical
    version: str
    requires: list[str]
    requires_python: str | None
    tags: list[str]
    source: str = "index"       # "index", "built from sdist", "project"

    @property
    def pure(self) -> bool:
        return all(t.split("-")[1] == "none" and t.split("-")[2] == "any" and t.startswith("py") for t in self.tags)


def read_wheel(path: Path) -> WheelInfo:
    """Name, version, Requires-Dist, Requires-Python and tags of a wheel (from its METADATA)."""
    name, version, _, tags = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as zf:
        meta_name = next((n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        if meta_name is None:
            raise BundleError(f"{path.name}: no .dist-info/METADATA inside; not a valid wheel")
        meta = HeaderParser().parsestr(zf.read(meta_name).decode("utf-8"))
    return WheelInfo(path, canonicalize_name(name), str(version), meta.get_all("Requires-Dist") or [],
                     meta.get("Requires-Python"), sorted(str(t) for t in tags))


def wheel_top_level(path: Path) -> list[str]:
    """The importable top-level names a wheel installs (packages, modules, extension modules)."""
    names = set()
    with zipfile.ZipFile(path) as zf:
        for entry in zf.namelist():
            parts = entry.split("/")
            if parts[0].endswith(".dist-info"):
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            first = parts[0]
            if len(parts) > 1:
                candidate = first
            elif first.endswith(".py"):
                candidate = first[:-3]
            elif first.endswith((".so", ".pyd")):
                candidate = first.split(".", 1)[0]
            else:
                continue
            if candidate.isidentifier():
                names.add(candidate)
    return sorted(names)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------
# Resolution
# ------------------------------------------------------------------------------------------


@dataclass
class Resolution:
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


def no_wheel_for(pip_output: str, reqs: list[Requirement]) -> Requirement | None:
    """Which of ``reqs`` a failed ``pip download --only-binary=:all:`` found no wheel for (None: it
    failed for another reason). pip names it in "No matching distribution found for X" or, when
    a constraint pins it, in "Cannot install X because ..." / "The user requested (constraint) X"."""
    by_name = {canonicalize_name(r.name): r for r in reqs}
    patterns = (r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)",
                r"The user requested \(constraint\) ([A-Za-z0-9][A-Za-z0-9._-]*)",
                r"Cannot install ([A-Za-z0-9][A-Za-z0-9._-]*)")
    for pattern in patterns:
        for m in re.finditer(pattern, pip_output):
            req = by_name.get(canonicalize_name(m.group(1)))
            if req is not None:
                return req
    return None


#: Compiled packages published as wheels only (no sdist to build here): when pip finds none for the
#: target, the bundle stops with the Pythons and platforms they do publish wheels for.
WHEEL_ONLY = frozenset({"torch", "torchvision"})


def published_wheels(pip_log: str, name: str) -> dict[str, list[frozenset]]:
    """The wheels of ``name`` named in a ``pip download -vv`` log, as version -> tag sets (one per file).

    pip logs every file of the index page it reads ("Found link" / "Skipping link: none of the
    wheel's tags ... are compatible"), so the log of any request for ``name`` lists all its wheels."""
    out: dict[str, set[frozenset]] = {}
    for filename in re.findall(r"[^/\s()'\"]+\.whl\b", pip_log):
        try:
            wname, version, _, tags = parse_wheel_filename(unquote(filename))
        except ValueError:  # InvalidWheelFilename, InvalidVersion
            continue
        if canonicalize_name(wname) == canonicalize_name(name):
            out.setdefault(str(version), set()).add(tags)
    return {v: sorted(t, key=lambda tags: sorted(map(str, tags))) for v, t in out.items()}


def _cp_version(tag) -> str | None:
    """``"3.12"`` for a CPython tag ``cp312-cp312-*``, ``cp312-abi3-*`` or ``cp312-none-*`` (None:
    free-threaded ``cp314-cp314t``, ``py3``, other interpreters)."""
    m = re.fullmatch(r"cp(\d)(\d+)", tag.interpreter)
    return f"{m.group(1)}.{m.group(2)}" if m and tag.abi in (tag.interpreter, "abi3", "none") else None


def wheel_only_message(req: Requirement, pin: Requirement | None, target: Target,
                       wheels: Mapping[str, Iterable[frozenset]], constraints: str = "constraints.txt") -> str | None:
    """Why a wheel-only ``req`` (see :data:`WHEEL_ONLY`) cannot be bundled for ``target``, with the
    CPython versions (for its platform) or platforms (for its Python) that do have wheels and the fix.

    Args:
        req: what the bundle needs (e.g. ``torch>=2.6``); pin: the constraints file's pin on it, if any.
        wheels: :func:`published_wheels` of the index. constraints: the pin's file name, for the message.

    Returns:
        The message, or None when a version allowed by ``req`` and ``pin`` has a wheel for the target
        (pip failed for another reason) or ``wheels`` lists none (nothing known: pip's error stands).
    """
    name = canonicalize_name(req.name)
    spec = req.specifier & (pin.specifier if pin is not None else SpecifierSet())
    allowed = {v: t for v, t in wheels.items() if spec.contains(v, prereleases=True)}
    if not allowed:
        return None
    pv, plats = target.python_version, set(target.platforms)

    def fits(tags) -> bool:  # a CPython wheel for the target's Python and one of its platform tags
        return any(_cp_version(t) == pv and t.platform in plats for t in tags)

    if any(fits(tags) for tag_sets in allowed.values() for tags in tag_sets):
        return None
    every = [t for tag_sets in allowed.values() for tags in tag_sets for t in tags]
    pythons = sorted({_cp_version(t) for t in every if t.platform in plats} - {None}, key=Version)
    platforms = sorted({t.platform for t in every if _cp_version(t) == pv})
    what = f"{pin} (the version {constraints} pins)" if pin is not None else f"{req} (no version of it)"
    msg = [f"{what} publishes no wheel for CPython {pv} on {target.platform} (or the older tags it accepts), and "
           f"{name} has no source distribution to build one from."]
    if pythons:
        msg.append(f"For {target.platform} its wheels are for CPython {', '.join(pythons)}: pass --python-version "
                   f"with one of them, the Python the target runs.")
    elif platforms:
        msg.append(f"For CPython {pv} its wheels are for {', '.join(platforms)}: pass --platform with the "
                   f"target's one.")
    else:
        anywhere = sorted({_cp_version(t) for t in every} - {None}, key=Version)
        msg.append(f"Its wheels are for CPython {', '.join(anywhere)} on {', '.join(sorted({t.platform for t in every}))}"
                   f": pass --python-version and --platform of a target among them.")
    other = [v for v, tag_sets in wheels.items() if req.specifier.contains(v, prereleases=True) and v not in allowed
             and any(fits(tags) for tags in tag_sets)]
    if pin is not None and other:
        msg.append(f"{name} {max(other, key=Version)} (also within {req}) has a wheel for this target: pin it (with the "
                   f"matching torch / torchvision release) in a constraints file of your own (--constraints FILE).")
    msg.append(f"If the target already has {name}, name it in --has (e.g. --has torch torchvision ...): the bundle "
               f"then leaves it out and uses the target's own.")
    return " ".join(msg)


class PipFetcher:
    """Fetches wheels for a target with ``pip download --no-deps`` into a cache folder; builds a
    wheel from the sdist (``pip wheel --no-binary``) when a requirement has no wheel, pure Python only."""

    def __init__(self, target: Target, cache: Path, constraints: Path | None, offline: bool = False,
                 log: Callable[[str], None] = print):
        self.target, self.cache, self.constraints, self.offline, self.log = target, cache, constraints, offline, log
        self.pins = read_constraints(constraints)
        self.notes: list[str] = []
        self.wheel_only_checked: set[str] = set()  # WHEEL_ONLY names already looked up on the index
        cache.mkdir(parents=True, exist_ok=True)

    def _pip(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--progress-bar", "off"]
        if self.offline:
            cmd += ["--no-index"]
        cmd += ["--find-links", str(self.cache)]
        if self.constraints:
            cmd += ["-c", str(self.constraints)]
        return subprocess.run(cmd, capture_output=True, text=True)

    def _built_marker(self, wheel: Path) -> Path:
        return wheel.with_name(wheel.name + ".built-from-sdist")

    def __call__(self, reqs: list[Requirement]) -> dict[str, WheelInfo]:
        remaining = list(reqs)
        no_wheel: list[Requirement] = []
        with tempfile.TemporaryDirectory(prefix="bundle-dl-") as tmp:
            staging = Path(tmp)
            while remaining:
                for f in staging.iterdir():
                    f.unlink()
                proc = self._pip("download", "--no-deps", "--only-binary=:all:", *self.target.pip_args(),
                                 "-d", str(staging), *map(str, remaining))
                if proc.returncode == 0:
                    break
                self._check_wheel_only(remaining)  # torch for a Python it has no wheels for: say so, not pip's error
                out = proc.stdout + proc.stderr
                failing = no_wheel_for(out, remaining)
                if failing is None:
                    raise BundleError(f"pip download failed for {', '.join(map(str, remaining))}:\n{_tail(out)}")
                remaining.remove(failing)
                no_wheel.append(failing)
            got = {}
            if remaining:
                for f in sorted(staging.glob("*.whl")):
                    dest = self.cache / f.name
                    if not dest.exists():
                        _atomic_copy(f, dest)
                    info = read_wheel(dest)
                    if self._built_marker(dest).exists():
                        info.source = "built from sdist"
                    got[info.name] = info
        for req in no_wheel:
            info = self._build_from_sdist(req)
            got[info.name] = info
        for name, info in got.items():
            note = f" ({info.source})" if info.source != "index" else ""
            self.log(f"  + {info.path.name}  {info.path.stat().st_size / 1024:,.0f} KiB{note}")
        return got

    def _build_from_sdist(self, req: Requirement) -> WheelInfo:
        name = canonicalize_name(req.name)
        where = f"cp{self.target.py_nodot} / {self.target.platform}"
        pin = self.pins.get(name)
        pin_note = ""
        if pin is not None:
            pin_note = f" {self.constraints.name} pins {pin}; "
            probe = self._probe_without_constraints(req)
            pin_note += (f"without the pin a wheel exists ({probe})." if probe else
                         "no version has a wheel for it either.")
        if self.offline:
            raise BundleError(f"{req} has no wheel for {where} in the cache ({self.cache}) and --offline "
                              f"forbids downloading its sdist.{pin_note}")
        self.log(f"  {req}: no wheel for {where};{pin_note} building one from its sdist")
        with tempfile.TemporaryDirectory(prefix="bundle-sdist-") as tmp:
            proc = self._pip("wheel", "--no-deps", "--no-binary", name, "-w", tmp, str(req))
            if proc.returncode != 0:
                raise BundleError(f"{req} has no wheel for {where}{pin_note and ' (' + pin_note.strip() + ')'}, and "
                                  f"building one from its sdist failed:\n{_tail(proc.stdout + proc.stderr)}")
            built = sorted(Path(tmp).glob("*.whl"))
            if len(built) != 1:
                raise BundleError(f"building {req} from its sdist gave {[b.name for b in built]}, expected one wheel")
            info = read_wheel(built[0])
            if not info.pure:
                raise BundleError(
                    f"{req} has no wheel for {where}, and its sdist builds a compiled wheel ({built[0].name}): "
                    f"a wheel compiled here would not match the target.{pin_note} Pin a version that publishes "
                    f"{where} wheels (constraints.txt), build the wheel on a machine like the target, or add "
                    f"the package to --has if the target has it.")
            if info.requires_python and not SpecifierSet(info.requires_python).contains(
                    self.target.environment()["python_full_version"], prereleases=True):
                raise BundleError(f"{built[0].name} requires Python {info.requires_python}; the target has "
                                  f"{self.target.python_version}")
            dest = self.cache / built[0].name
            self._built_marker(dest).write_text(f"{req}\n")
            _atomic_copy(built[0], dest)
        self.notes.append(f"{dest.name}: built from the sdist ({req} publishes no wheel for {where})")
        info = read_wheel(dest)
        info.source = "built from sdist"
        return info

    def _check_wheel_only(self, reqs: list[Requirement]) -> None:
        """Raise :func:`wheel_only_message` for the first of ``reqs`` in :data:`WHEEL_ONLY` that has no
        wheel for the target (each name is looked up once; not --offline, where the cache is all there is)."""
        for req in reqs:
            name = canonicalize_name(req.name)
            if name not in WHEEL_ONLY or name in self.wheel_only_checked or self.offline:
                continue
            self.wheel_only_checked.add(name)
            # a version no index has: pip downloads nothing and its -vv log lists every file of the name
            with tempfile.TemporaryDirectory(prefix="bundle-probe-") as tmp:
                proc = subprocess.run(
                    [sys.executable, "-m", "pip", "download", "-vv", "--no-deps", "--only-binary=:all:",
                     *self.target.pip_args(), "-d", tmp, "--disable-pip-version-check", "--progress-bar", "off",
                     f"{name}===no-such-version"], capture_output=True, text=True)
            msg = wheel_only_message(req, self.pins.get(name), self.target, published_wheels(
                proc.stdout + proc.stderr, name), self.constraints.name if self.constraints else "constraints")
            if msg:
                raise BundleError(msg)

    def _probe_without_constraints(self, req: Requirement) -> str | None:
        """The wheel pip finds for ``req`` when constraints.txt is left out (None: none)."""
        with tempfile.TemporaryDirectory(prefix="bundle-probe-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   *self.target.pip_args(), "-d", tmp, "--disable-pip-version-check", "--progress-bar", "off",
                   str(Requirement(req.name))]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            return wheels[0].name if proc.returncode == 0 and wheels else None


def _atomic_copy(src: Path, dest: Path) -> None:
    """Copy into the cache under a temporary name, then rename: a concurrent build never reads half a wheel."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)


#: What the bundle takes from the working tree: "dirty" means one of these differs from the commit.
BUNDLED_SOURCES = ("pyproject.toml", "README.md", "cifarhelpers", "notebooks", "benchmarks/gpu_report.py")


def git_state() -> dict:
    """The repo's commit and whether the bundled sources (:data:`BUNDLED_SOURCES`, untracked files
    included) differ from it; None where git is unavailable, or where this Python cannot import the
    project (build with the project's environment, ``.venv/bin/python``, to record them)."""
    try:
        from cifarhelpers.devices import git_state as checkout_state
    except ImportError as err:
        print(f"bundle: WARNING: the commit is not recorded: this Python cannot import cifarhelpers ({err}); "
              "build with .venv/bin/python", file=sys.stderr)
        return {"commit": None, "dirty": None}
    commit, dirty = checkout_state(ROOT, tuple(BUNDLED_SOURCES))
    return {"commit": commit, "dirty": dirty}


def _tail(text: str, lines: int = 25) -> str:
    keep = [line for line in text.splitlines() if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join(keep[-lines:])


# ------------------------------------------------------------------------------------------
# The project's wheel, the data, run.sh
# ------------------------------------------------------------------------------------------


def build_project_wheel(dest: Path, log: Callable[[str], None] = print) -> WheelInfo:
    """The project's own wheel, built from a clean copy of pyproject.toml, README.md and the package
    (no stale ``build/`` folder, nothing written into the repo)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])
    names = sorted({p.rstrip("*").rstrip(".") for p in packages} or {"cifarhelpers"})
    with tempfile.TemporaryDirectory(prefix="bundle-project-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for f in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in"):
            if (ROOT / f).is_file():
                shutil.copy2(ROOT / f, src / f)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
        for name in names:
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        try:  # a setuptools with bdist_wheel here builds it without a download; else pip fetches one
            import setuptools

            isolation = ["--no-build-isolation"] if Version(setuptools.__version__) >= Version("70.1") else []
        except ImportError:
            isolation = []
        out = Path(tmp) / "wheel"
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(out),
                               "--disable-pip-version-check", str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BundleError(f"building the project's wheel failed:\n{_tail(proc.stdout + proc.stderr)}")
        (wheel,) = out.glob("*.whl")
        shutil.copy2(wheel, dest / wheel.name)
    info = read_wheel(dest / wheel.name)
    info.source = "project"
    log(f"  + {wheel.name}  {(dest / wheel.name).stat().st_size / 1024:,.0f} KiB (project)")
    return info


def expected_sha256(archive: Path) -> str | None:
    """The sha256 that a README.md beside ``archive`` gives for it (``sha256: <hex>``), if any."""
    readme = archive.parent / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(errors="replace")
    if archive.name not in text:
        return None
    m = re.search(r"sha256:\s*`?([0-9a-f]{64})", text)
    return m.group(1) if m else None


def archive_top_folder(archive: Path) -> str:
    """The folder the archive unpacks into (its first member's first path component)."""
    with tarfile.open(archive) as tf:
        first = tf.next()
        if first is None:
            raise BundleError(f"{archive} is an empty archive")
        return first.name.lstrip("./").split("/", 1)[0]


def _module_owner(wheels: Iterable[WheelInfo]) -> list[list[str]]:
    rows = []
    for w in wheels:
        for mod in wheel_top_level(w.path):
            if mod not in NEVER_IMPORT:
                rows.append([mod, w.path.name])
    return sorted(rows)


# ------------------------------------------------------------------------------------------
# Building the bundle
# ------------------------------------------------------------------------------------------


def build_bundle(target: Target, out: Path, *, data: Path | None = DEFAULT_DATA, cache: Path = DEFAULT_CACHE,
                 constraints: Path | None = None, max_mib: float = DEFAULT_MAX_MIB, offline: bool = False,
                 log: Callable[[str], None] = print) -> dict:
    """Build the bundle for ``target`` into ``out`` (replaced only when the new one is complete).

    Returns the manifest (also written to ``out/MANIFEST.json``).
    """
    started = time.time()
    env = target.environment()
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots, skipped = project_requirements(pyproject)
    force = {canonicalize_name(Requirement(n).name) for n in target.force}
    has_reqs = [Requirement(h) for h in target.has]
    closure, unknown = installed_closure(target.has, env)
    exclude = {n: via for n, via in closure.items() if n not in force}
    notes: list[str] = []
    log(f"target {target.name}: CPython {target.python_version}, {target.platform} "
        f"(+{len(target.platforms) - 1} older tags); markers: python_version={env['python_version']} "
        f"sys_platform={env['sys_platform']} platform_machine={env['platform_machine']}")
    log(f"the target has {len(has_reqs)} packages, {len(exclude)} with their dependencies "
        f"(computed from {sys.prefix}); not bundled: {', '.join(sorted(exclude))}")
    if unknown:
        notes.append(f"not installed in {sys.prefix}, so their dependencies are unknown here and assumed "
                     f"present on the target only if also reached otherwise: {', '.join(unknown)}")
        log("note: " + notes[-1])
    if force:
        log(f"bundled even though the target has them (--force): {', '.join(sorted(force))}")
    if skipped:
        log(f"interactive-only names in the notebooks extra, not bundled: {', '.join(skipped)}")
    for has in has_reqs:  # the project's pins vs the versions the target is said to have
        for root in roots:
            if canonicalize_name(root.name) == canonicalize_name(has.name) and has.specifier and root.specifier:
                stated = [s.version for s in has.specifier if s.operator == "=="]
                if stated and not root.specifier.contains(stated[0].rstrip(".*"), prereleases=True):
                    notes.append(f"the project pins {root}; the target has {has}: the bundle uses the target's "
                                 f"(wheels install with --no-deps)")
                    log("note: " + notes[-1])
    if constraints is not None and constraints.is_file():
        log(f"versions pinned by {constraints}")
    else:
        constraints = None
        log("no constraints file: the newest versions that fit the specifiers (pass --constraints)")
    if data is not None and not data.is_file():
        raise BundleError(f"the CIFAR-10 archive {data} is missing: pass --data PATH, or --no-data to leave it out")

    tag_cache = cache / target.tag
    final_name = out.name
    work = Path(tempfile.mkdtemp(prefix=f".{final_name}.partial-", dir=out.parent))
    try:
        wheels_dir = work / "wheels"
        wheels_dir.mkdir()
        fetcher = PipFetcher(target, tag_cache, constraints, offline=offline, log=log)
        resolution = resolve(roots, env, exclude, fetcher, log=log)
        notes += fetcher.notes
        for w in resolution.wheels.values():
            shutil.copy2(w.path, wheels_dir / w.path.name)
            w.path = wheels_dir / w.path.name
        project = build_project_wheel(wheels_dir, log=log)
        wheels = [*resolution.wheels.values(), project]

        data_entry = None
        if data is not None:
            (work / "data").mkdir()
            log(f"copying {data}")
            shutil.copy2(data, work / "data" / data.name)
            digest = sha256_of(work / "data" / data.name)
            want = expected_sha256(data)
            if want is not None and digest != want:
                raise BundleError(f"{data}: sha256 {digest} differs from {want} in {data.parent / 'README.md'}")
            data_entry = {"file": f"data/{data.name}", "size": (work / "data" / data.name).stat().st_size,
                          "sha256": digest, "unpacks_to": archive_top_folder(data),
                          "checked_against": str(data.parent / "README.md") if want else None}
            log(f"  data sha256 {digest[:16]}... " + ("matches README.md" if want else "(no README.md sha256 to check)"))
        shutil.copytree(ROOT / "notebooks", work / "notebooks",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        report = ROOT / "benchmarks" / "gpu_report.py"
        if report.is_file():
            shutil.copy2(report, work / "gpu_report.py")
            for sibling in REPORT_SIBLINGS:  # the modules gpu_report.py loads from its own folder
                shutil.copy2(report.parent / sibling, work / sibling)
        else:
            notes.append("benchmarks/gpu_report.py did not exist: `run.sh gpu-report` is unavailable in this bundle")
            log("note: " + notes[-1])
        (work / "run.sh").write_text(RUN_SH)
        (work / "run.sh").chmod(0o755)

        sizes = {str(p.relative_to(work)): p.stat().st_size for p in work.rglob("*") if p.is_file()}
        manifest = {
            "bundle": final_name,
            "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "project": {"name": project.name, "version": project.version, "git": git_state()},
            "target": {"name": target.name, "python_version": target.python_version, "platform": target.platform,
                       "platforms": target.platforms, "abis": target.abis, "markers": env},
            "has": list(target.has),
            "force": sorted(force),
            "has_closure": {n: exclude[n] for n in sorted(exclude)},
            "has_closure_source": f"importlib.metadata of {sys.executable} (Python {platform_module.python_version()})",
            "has_unknown_dependencies": unknown,
            "requirements": [str(r) for r in roots],
            "skipped_interactive": skipped,
            "constraints": ({"file": str(constraints), "sha256": sha256_of(constraints)} if constraints else None),
            "wheels": [{"file": f"wheels/{w.path.name}", "name": w.name, "version": w.version,
                        "size": w.path.stat().st_size, "sha256": sha256_of(w.path), "source": w.source,
                        "required_by": sorted(resolution.required_by.get(w.name, {"<project>"}))}
                       for w in wheels],
            "target_provided": {n: resolution.provided[n] for n in sorted(resolution.provided)},
            "modules": _module_owner(wheels),
            "data": data_entry,
            "notebooks": sorted(str(p.relative_to(work)) for p in (work / "notebooks").rglob("*") if p.is_file()),
            "gpu_report": (work / "gpu_report.py").is_file(),
            "gpu_report_siblings": sorted(n for n in REPORT_SIBLINGS if (work / n).is_file()),
            "notes": notes,
        }
        manifest_text = json.dumps(manifest, indent=1)
        sizes["MANIFEST.json"] = len(manifest_text.encode()) + 200
        total_mib = check_size(sizes, max_mib)
        manifest["total_bytes"] = sum(sizes.values())
        manifest["total_mib"] = round(total_mib, 2)
        manifest["max_mib"] = max_mib
        (work / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")

        old = None
        if out.exists():
            old = out.parent / f".{final_name}.old-{os.getpid()}"
            out.rename(old)
        work.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    wheel_bytes = sum(w["size"] for w in manifest["wheels"])
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
    log(f"\nbundle {out}: {len(manifest['wheels'])} wheels ({wheel_bytes / MIB:.2f} MiB), data "
        f"({(data_entry or {}).get('size', 0) / MIB:.2f} MiB), notebooks, run.sh")
    log("largest: " + ", ".join(f"{Path(p).name} {s / MIB:.2f} MiB" for p, s in largest))
    log(f"total size: {total_mib:.2f} MiB (limit {max_mib:g} MiB), built in {time.time() - started:.0f} s")
    log(f"run it: bash {os.path.relpath(out / 'run.sh')} check")
    return manifest


# ------------------------------------------------------------------------------------------
# run.sh (written into every bundle)
# ------------------------------------------------------------------------------------------

RUN_SH = r'''#!/usr/bin/env bash
# Offline runner of a cifarhelpers bundle (written by tools/bundle.py; MANIFEST.json lists the contents).
#
#   bash run.sh gpu-report [args...]   python gpu_report.py --notebooks-dir <bundle>/notebooks args...
#   bash run.sh train [args...]        python -m cifarhelpers.cli args...
#   bash run.sh notebooks [args...]    python -m cifarhelpers.notebook_runner run --notebooks-dir <bundle>/notebooks args...
#   bash run.sh python [args...]       python args...   (e.g. run.sh python -c 'import cifarhelpers')
#   bash run.sh check                  install, import check and kernel check only (no data, no job)
#
# Works from any folder; relative paths in the arguments are taken from the folder it is run in.
# It installs every wheel in wheels/ offline (no index, no dependency resolution) into a new temporary
# folder and puts that on PYTHONPATH, writes a Jupyter kernel spec `python3` for this interpreter
# (papermill asks for that name; the kernel inherits PYTHONPATH), imports every bundled top-level module
# (a missing or broken one stops it here, named) and, for notebook jobs, starts that kernel once; then
# it unpacks the CIFAR-10 archive there (unless $CIFAR10_ROOT is an existing copy) and runs the job.
# The temporary folder is removed at exit.
#
# Environment:
#   PYTHON            the interpreter (default python3): the node's Python with torch
#   CIFAR10_ROOT      an unpacked CIFAR-10 copy to use instead of the bundled archive
#   TMPDIR            where the temporary folder goes (default /tmp)
#   BUNDLE_INSTALLER  pip | zipfile | auto (default): pip when `$PYTHON -m pip` works, else Python's zipfile
#                     (unpacks each wheel's files; wheels need nothing else to be importable)
#   BUNDLE_KEEP_TMP   1: keep the temporary folder (its path is printed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
say() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
usage() { sed -n '3,8p' "$here/run.sh" | sed 's/^# \{0,1\}//' >&2; }

job="${1:-}"
case "$job" in
  gpu-report|train|notebooks|python|check) shift ;;
  -h|--help|help) usage; exit 0 ;;
  *) say "unknown job '${job}'"; usage; exit 2 ;;
esac
command -v "$PYTHON" >/dev/null 2>&1 || { say "no interpreter '$PYTHON' (set PYTHON=/path/to/python3)"; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cifarhelpers-bundle.XXXXXX")"
unpack_pid=""
cleanup() {
  if [ -n "$unpack_pid" ]; then kill "$unpack_pid" 2>/dev/null || true; wait "$unpack_pid" 2>/dev/null || true; fi
  if [ "${BUNDLE_KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
site="$tmp/site"
mkdir -p "$site"
say "bundle $here; python $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

# The data archive unpacks in the background while the wheels install and the checks run.
archives=("$here"/data/*.tar.gz)
archive="${archives[0]}"
if [ -n "${CIFAR10_ROOT:-}" ] && [ -d "$CIFAR10_ROOT" ]; then
  archive=""
  say "data: CIFAR10_ROOT=$CIFAR10_ROOT (given)"
elif [ "$job" != check ] && [ -f "$archive" ]; then
  if [ -n "${CIFAR10_ROOT:-}" ]; then say "CIFAR10_ROOT=$CIFAR10_ROOT does not exist: using the bundled copy"; fi
  say "data: unpacking $(basename "$archive") into $tmp/data (in the background)"
  mkdir -p "$tmp/data"
  tar -xzf "$archive" -C "$tmp/data" &
  unpack_pid=$!
fi

# -- install -------------------------------------------------------------------------------
wheels=("$here"/wheels/*.whl)
installer="${BUNDLE_INSTALLER:-auto}"
if [ "$installer" = auto ]; then
  if "$PYTHON" -m pip --version >/dev/null 2>&1; then installer=pip; else installer=zipfile; fi
fi
t0=$SECONDS
case "$installer" in
  pip)
    say "installing ${#wheels[@]} wheels with pip into $site (--no-index --no-deps)"
    PIP_CONFIG_FILE=/dev/null PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --no-index --no-deps --no-compile --quiet \
      --disable-pip-version-check --target "$site" "${wheels[@]}"
    ;;
  zipfile)
    say "installing ${#wheels[@]} wheels by unpacking them with zipfile into $site (no pip)"
    "$PYTHON" - "$site" "${wheels[@]}" <<'PY'
import pathlib, shutil, sys, zipfile
site = pathlib.Path(sys.argv[1])
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if info.is_dir() or ".." in parts or info.filename.startswith("/"):
                continue
            if parts[0].endswith(".data"):          # <name>.data/purelib|platlib/... go to the top
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue                         # scripts, headers, data files: not needed to import
                parts = parts[2:]
            dest = site.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                dest.chmod(mode | 0o600)
PY
    ;;
  *) say "BUNDLE_INSTALLER=$installer: expected pip, zipfile or auto"; exit 2 ;;
esac
say "installed in $((SECONDS - t0)) s"

export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export NO_ALBUMENTATIONS_UPDATE=1 MPLBACKEND=Agg JUPYTER_PLATFORM_DIRS=1
export JUPYTER_RUNTIME_DIR="$tmp/jupyter-runtime" IPYTHONDIR="$tmp/ipython"
# papermill starts the kernel named python3: this spec comes first on JUPYTER_PATH (before any
# python3 spec of the machine or the user) and runs this very interpreter, which inherits PYTHONPATH.
mkdir -p "$tmp/jupyter/kernels/python3"
"$PYTHON" - "$tmp/jupyter/kernels/python3/kernel.json" <<'PY'
import json, sys
json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
           "display_name": "Python 3 (bundle)", "language": "python", "metadata": {"debugger": False}},
          open(sys.argv[1], "w"), indent=1)
PY
export JUPYTER_PATH="$tmp/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
[ -w "${HOME:-/nonexistent}" ] || export MPLCONFIGDIR="$tmp/matplotlib"

# -- checks: Python version, what the target was said to have, every bundled module, the kernel --
t0=$SECONDS
kernel_check=0
case "$job" in gpu-report|notebooks|check) kernel_check=1 ;; esac
"$PYTHON" - "$here/MANIFEST.json" "$site" "$kernel_check" <<'PY'
import importlib, importlib.metadata as md, json, os, sys, traceback
manifest, site, kernel_check = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3] == "1"
want = manifest["target"]["python_version"]
have = "%d.%d" % sys.version_info[:2]
if have != want:
    sys.exit(f"run.sh: this bundle is for Python {want} (its compiled wheels are cp{want.replace('.', '')}); "
             f"{sys.executable} is Python {have}. Set PYTHON, or build a bundle for {have}.")
try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
except ImportError:
    Requirement = SpecifierSet = None
bundled = {w["name"] for w in manifest["wheels"]}
for has in manifest["has"]:
    name = Requirement(has).name if Requirement else has.split("=")[0].split("<")[0].split(">")[0]
    try:
        print(f"  target has {name} {md.version(name)}", file=sys.stderr)
    except md.PackageNotFoundError:
        print(f"  WARNING: the bundle assumed this Python has {name}, but it is not installed", file=sys.stderr)
for name, needs in manifest["target_provided"].items():
    try:
        version = md.version(name)
    except md.PackageNotFoundError:
        print(f"  WARNING: {name} is needed by {needs[0]['required_by']} and assumed present (with "
              f"{needs[0]['via']}), but it is not installed", file=sys.stderr)
        continue
    if SpecifierSet is None:
        continue
    for need in needs:
        if need["specifier"] and not SpecifierSet(need["specifier"]).contains(version, prereleases=True):
            print(f"  WARNING: {need['required_by']} needs {name}{need['specifier']}; this Python has {version} "
                  f"(rebuild the bundle with --force {name} to bring a copy)", file=sys.stderr)
failed = []
for module, wheel in manifest["modules"]:
    try:
        importlib.import_module(module)
    except BaseException as err:  # noqa: BLE001 - SystemExit from a module counts too
        failed.append((module, wheel, f"{type(err).__name__}: {err}"))
for module, wheel, why in failed:
    print(f"  IMPORT FAILED: {module} (from {wheel}): {why}", file=sys.stderr)
if failed:
    sys.exit(f"run.sh: {len(failed)} of {len(manifest['modules'])} bundled modules do not import, first: "
             f"{failed[0][0]} ({failed[0][2]}); the job did not start")
print(f"  all {len(manifest['modules'])} bundled top-level modules import", file=sys.stderr)
try:
    import torch
    print(f"  torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""), file=sys.stderr)
except Exception as err:  # noqa: BLE001
    print(f"  WARNING: torch does not import: {err}", file=sys.stderr)
if kernel_check:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel
    spec = KernelSpecManager().get_kernel_spec("python3")
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    # Only the kernel's stdout stream counts, and in it only the lines with our marker: importing
    # albumentations & co. in a kernel may print anything (on the node tqdm warned on stderr that
    # IProgress was not found), which must neither pass for nor break the answer. stderr is kept
    # apart, for the message when the check fails.
    marker = "CIFARHELPERS_KERNEL_CHECK"
    out, err = [], []

    def collect(msg):
        if msg["msg_type"] == "stream":
            (out if msg["content"]["name"] == "stdout" else err).append(msg["content"]["text"])

    try:
        reply = kc.execute_interactive(
            "import sys, cifarhelpers, albumentations\n"
            f"print('{marker} executable=' + sys.executable)\n"
            f"print('{marker} cifarhelpers=' + cifarhelpers.__file__)\n",
            timeout=120, output_hook=collect)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    stdout, seen = "".join(out), {}  # seen: {"executable": ..., "cifarhelpers": <its __file__>}
    for line in stdout.splitlines():
        _, hit, rest = line.partition(marker + " ")  # after noise printed without a newline, too
        if hit:
            key, _, value = rest.partition("=")
            seen[key] = value
    found = seen.get("cifarhelpers", "")
    if reply["content"]["status"] != "ok" or not found.startswith(os.path.join(site, "")):
        content = reply["content"]
        if content["status"] != "ok":
            why = f"{content['status']}: {content.get('ename', '')}: {content.get('evalue', '')}"
        else:
            why = f"cifarhelpers from {found}" if found else f"no {marker} line in its stdout: {stdout[-500:]!r}"
        stderr = "".join(err).strip()
        sys.exit(f"run.sh: the Jupyter kernel python3 ({spec.argv[0]}) did not see the bundle in {site} ({why}); "
                 f"its stderr: {stderr[-2000:] or '(none)'}")
    print(f"  kernel python3 ({seen.get('executable', '?')}) imports cifarhelpers from the bundle", file=sys.stderr)
PY
say "checks passed in $((SECONDS - t0)) s"

if [ "$job" = check ]; then say "bundle OK (install, imports and kernel checked; data not unpacked)"; exit 0; fi

# -- data ----------------------------------------------------------------------------------
if [ -n "$unpack_pid" ]; then
  t0=$SECONDS
  if ! wait "$unpack_pid"; then unpack_pid=""; say "data: unpacking $archive failed"; exit 1; fi
  unpack_pid=""
  tops=("$tmp"/data/*)
  if [ "${#tops[@]}" -ne 1 ] || [ ! -d "${tops[0]}" ]; then
    say "data: $(basename "$archive") should unpack into one folder; got: ${tops[*]}"; exit 1
  fi
  export CIFAR10_ROOT="${tops[0]}"
  say "data: CIFAR10_ROOT=$CIFAR10_ROOT (unpacked; waited $((SECONDS - t0)) s for it)"
elif [ -z "${CIFAR10_ROOT:-}" ] || [ ! -d "${CIFAR10_ROOT:-}" ]; then
  say "data: none bundled and CIFAR10_ROOT unset: jobs that need CIFAR-10 will fail"
fi

# -- the job -------------------------------------------------------------------------------
# The commit the bundle was built from (the bundle is no git checkout): every job's code_version (the
# notebooks' first output line) names it through $CIFARHELPERS_GIT_COMMIT; the bundle's own code is that
# commit's, so a value inherited from the caller's environment is replaced (gpu-report's --commit wins).
c="$("$PYTHON" -c 'import json, sys; g = json.load(open(sys.argv[1]))["project"]["git"]; print((g["commit"] or "") + ("-dirty" if g["commit"] and g["dirty"] else ""))' "$here/MANIFEST.json")"
if [ -n "$c" ]; then export CIFARHELPERS_GIT_COMMIT="$c"; else unset CIFARHELPERS_GIT_COMMIT; fi
case "$job" in
  gpu-report)
    [ -f "$here/gpu_report.py" ] || { say "this bundle has no gpu_report.py (benchmarks/gpu_report.py did not exist when it was built)"; exit 1; }
    commit=()  # a later --commit wins
    if [ -n "$c" ]; then commit=(--commit "$c"); fi
    cmd=("$PYTHON" "$here/gpu_report.py" --notebooks-dir "$here/notebooks" ${commit[@]+"${commit[@]}"} "$@") ;;
  train) cmd=("$PYTHON" -m cifarhelpers.cli "$@") ;;
  notebooks) cmd=("$PYTHON" -m cifarhelpers.notebook_runner run --notebooks-dir "$here/notebooks" "$@") ;;
  python) cmd=("$PYTHON" "$@") ;;
esac
say "set-up took $SECONDS s; running: ${cmd[*]}"
t0=$SECONDS
set +e
"${cmd[@]}"
rc=$?
set -e
say "$job exited with $rc after $((SECONDS - t0)) s"
exit "$rc"
'''


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/bundle.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Presets: " + "; ".join(f"{n}: Python {p['python_version'] or 'this one'}, "
                                       f"{p['platform'] or 'this platform'}, has {', '.join(p['has'])}"
                                       for n, p in TARGETS.items()))
    parser.add_argument("--target", choices=sorted(TARGETS), default=None,
                        help="a preset (default: local, this machine's Python and platform)")
    parser.add_argument("--python-version", help="target Python X.Y, e.g. 3.12")
    parser.add_argument("--platform", help="target platform tag, e.g. manylinux_2_28_x86_64 (older tags follow)")
    parser.add_argument("--has", nargs="*", metavar="NAME", default=None,
                        help="what the target has (names, or name==version); replaces the preset's list")
    parser.add_argument("--force", nargs="*", metavar="NAME", default=None,
                        help="bundle these even though the target has them; replaces the preset's list")
    parser.add_argument("--out", type=Path, help="the bundle folder (default: dist/bundle-<target>)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the CIFAR-10 archive to include (default: %(default)s)")
    parser.add_argument("--no-data", action="store_true", help="leave the archive out (set CIFAR10_ROOT on the node)")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt",
                        help="pip constraints pinning versions, used when the file exists (default: %(default)s)")
    parser.add_argument("--no-constraints", action="store_true", help="ignore the constraints file")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="wheel cache; a subfolder per target tag (default: %(default)s)")
    parser.add_argument("--offline", action="store_true", help="use only wheels already in the cache")
    parser.add_argument("--max-mib", type=float, default=DEFAULT_MAX_MIB,
                        help="fail above this total size in MiB (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        target = make_target(args.target, args.python_version, args.platform, args.has, args.force)
        out = args.out or ROOT / "dist" / f"bundle-{target.name}"
        build_bundle(target, out, data=None if args.no_data else args.data.resolve(), cache=args.cache.resolve(),
                     constraints=None if args.no_constraints else args.constraints.resolve(),
                     max_mib=args.max_mib, offline=args.offline)
    except BundleError as err:
        print(f"tools/bundle.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
