"""What the bundle holds besides the dependency wheels: the project's wheel, the data archive's facts,
the GPU report, run.sh, the commit it was built from, and which module each wheel installs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import BundleError, output_tail
from .packaging_compat import Version, tomllib
from .paths import ROOT, RUN_SH_TEMPLATE
from .wheels import WheelInfo, read_wheel, sha256_of, wheel_top_level

#: Top-level modules the import check must not import: importing ipykernel_launcher starts a kernel.
NEVER_IMPORT = frozenset({"ipykernel_launcher"})

# -- the GPU report: the one place that knows how benchmarks/ is laid out ---------------------------
#: The GPU report package, copied into the bundle's top folder as ``gpu_report/`` (run.sh runs
#: ``python gpu_report`` there: the folder's ``__main__.py``).
GPU_REPORT = ROOT / "benchmarks" / "gpu_report"
#: Modules of benchmarks/ that the report imports from beside its folder: copied beside it.
REPORT_SIBLINGS = ("peer_airbench.py",)


def copy_gpu_report(dest: Path) -> bool:
    """Copy :data:`GPU_REPORT` (without ``__pycache__``) to ``dest/gpu_report`` and its :data:`REPORT_SIBLINGS`
    beside it, in the bundle folder ``dest``, where run.sh's ``gpu-report`` job finds them. Returns False when
    there is no report to copy.

    Raises:
        FileNotFoundError: a sibling is missing (the report would fail to import on the node).
    """
    if not (GPU_REPORT / "__main__.py").is_file():
        return False
    shutil.copytree(GPU_REPORT, dest / "gpu_report", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for sibling in REPORT_SIBLINGS:
        shutil.copy2(GPU_REPORT.parent / sibling, dest / sibling)
    return True


#: What the bundle takes from the working tree: "dirty" means one of these differs from the commit.
BUNDLED_SOURCES = ("pyproject.toml", "README.md", "cifarhelpers", "notebooks",
                   GPU_REPORT.relative_to(ROOT).as_posix())  # = "benchmarks/gpu_report"


def copy_run_sh(dest: Path) -> Path:
    """Copy :data:`offline_bundle.paths.RUN_SH_TEMPLATE` verbatim (it has no placeholders) into the bundle
    folder ``dest`` as ``run.sh``, executable (mode 755, whatever the checkout's mode). Returns its path."""
    run_sh = dest / "run.sh"
    shutil.copyfile(RUN_SH_TEMPLATE, run_sh)
    run_sh.chmod(0o755)
    return run_sh


def git_state() -> dict:
    """The repo's commit and whether the bundled sources (:data:`BUNDLED_SOURCES`, untracked files
    included) differ from it; None where git is unavailable, or where this Python cannot import the
    project (build with the project's environment, ``.venv/bin/python``, to record them)."""
    try:
        from cifarhelpers.provenance import git_state as checkout_state
    except ImportError as err:
        print(f"bundle: WARNING: the commit is not recorded: this Python cannot import cifarhelpers ({err}); "
              "build with .venv/bin/python", file=sys.stderr)
        return {"commit": None, "dirty": None}
    commit, dirty = checkout_state(ROOT, tuple(BUNDLED_SOURCES))
    return {"commit": commit, "dirty": dirty}


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
            raise BundleError(f"building the project's wheel failed:\n{output_tail(proc.stdout + proc.stderr)}")
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


def copy_data(data: Path, dest: Path, log: Callable[[str], None] = print) -> dict:
    """Copy the CIFAR-10 archive ``data`` into ``dest/data/`` and check its sha256 against the README.md
    beside it (:func:`expected_sha256`), when that gives one.

    Returns:
        MANIFEST.json's ``data`` entry: file (relative to the bundle), size (bytes), sha256, unpacks_to
        (:func:`archive_top_folder`) and checked_against (that README.md, or None).

    Raises:
        BundleError: the copy's sha256 differs from the README's.
    """
    (dest / "data").mkdir()
    log(f"copying {data}")
    shutil.copy2(data, dest / "data" / data.name)
    digest = sha256_of(dest / "data" / data.name)
    want = expected_sha256(data)
    if want is not None and digest != want:
        raise BundleError(f"{data}: sha256 {digest} differs from {want} in {data.parent / 'README.md'}")
    log(f"  data sha256 {digest[:16]}... " + ("matches README.md" if want else "(no README.md sha256 to check)"))
    return {"file": f"data/{data.name}", "size": (dest / "data" / data.name).stat().st_size,
            "sha256": digest, "unpacks_to": archive_top_folder(data),
            "checked_against": str(data.parent / "README.md") if want else None}


def module_owner(wheels: Iterable[WheelInfo]) -> list[list[str]]:
    """``[top-level module, wheel file name]`` rows, sorted, for every module the wheels install except
    :data:`NEVER_IMPORT`: the list run.sh's import check imports (MANIFEST.json ``modules``)."""
    rows = []
    for w in wheels:
        for mod in wheel_top_level(w.path):
            if mod not in NEVER_IMPORT:
                rows.append([mod, w.path.name])
    return sorted(rows)
