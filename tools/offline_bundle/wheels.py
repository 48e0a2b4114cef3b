"""Wheel files: their metadata, the top-level modules they install, their sha256, copying them into a cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from .errors import BundleError
from .packaging_compat import canonicalize_name, parse_wheel_filename


@dataclass
class WheelInfo:
    """A wheel file and what its name and METADATA say (:func:`read_wheel`)."""

    path: Path
    name: str                   # canonical
    version: str
    requires: list[str]
    requires_python: str | None
    tags: list[str]
    source: str = "index"       # "index", "built from sdist", "project"

    @property
    def pure(self) -> bool:
        """Pure Python: every tag is ``py*-none-any``."""
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
    """The sha256 of a file, as 64 hex digits (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy into the cache under a temporary name, then rename: a concurrent build never reads half a wheel."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)
