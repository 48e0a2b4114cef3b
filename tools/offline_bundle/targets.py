"""The target of a bundle: its Python version and platform, the tags pip is asked for, the marker
environment its requirements are evaluated in, and what it already has (the presets ``gpu-node`` and ``local``)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import BundleError
from .packaging_compat import default_environment, sys_tags

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
        """``"312"`` for Python 3.12."""
        return self.python_version.replace(".", "")

    @property
    def tag(self) -> str:
        """``cp312-manylinux_2_28_x86_64``: names the wheel cache."""
        return f"cp{self.py_nodot}-{self.platform}"

    @property
    def platforms(self) -> list[str]:
        """The platform tags the target accepts, best first (:func:`platform_fallbacks`)."""
        return platform_fallbacks(self.platform)

    @property
    def abis(self) -> list[str]:
        """The ABI tags the target accepts: ``cp312``, ``abi3``, ``none``."""
        return [f"cp{self.py_nodot}", "abi3", "none"]

    def environment(self) -> dict[str, str]:
        """The PEP 508 marker environment of the target (CPython on Linux when the tag says so)."""
        return target_environment(self.python_version, self.platform)

    def pip_args(self) -> list[str]:
        """``pip download`` flags that select wheels for the target: Python version, CPython, ABIs, platforms."""
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
