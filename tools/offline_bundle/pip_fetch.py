"""Fetching wheels for the target with pip: ``pip download --no-deps --only-binary=:all:`` for its tags,
a pure-Python wheel built from the sdist where none is published, and pip's failures read into clear
messages (which requirement has no wheel; for torch, the Pythons and platforms that do have one)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote

from .errors import BundleError, output_tail
from .packaging_compat import Requirement, SpecifierSet, Version, canonicalize_name, parse_wheel_filename
from .requirements import read_constraints
from .targets import Target
from .wheels import WheelInfo, atomic_copy, read_wheel


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
                    raise BundleError(f"pip download failed for {', '.join(map(str, remaining))}:\n{output_tail(out)}")
                remaining.remove(failing)
                no_wheel.append(failing)
            got = {}
            if remaining:
                for f in sorted(staging.glob("*.whl")):
                    dest = self.cache / f.name
                    if not dest.exists():
                        atomic_copy(f, dest)
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
                                  f"building one from its sdist failed:\n{output_tail(proc.stdout + proc.stderr)}")
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
            atomic_copy(built[0], dest)
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
