"""The offline bundle (tools/bundle.py and tools/offline_bundle/, `make bundle`): its pure parts, and a
bundle proved complete.

The end-to-end tests build a bundle for THIS machine's Python with our GPU node's has-list, and run it
with ``run.sh`` in a Python that sees ONLY the packages the node is said to have (taken from this
project's environment, with their dependency closure, and pip) plus what run.sh installs from the
bundle: a bare ``venv --without-pip`` whose site-packages holds symlinks to exactly those
distributions' files (found through their RECORD).
A wheel missing from the bundle makes them fail. They need PyPI (or a filled wheel cache) and the
CIFAR-10 archive (the shared one, else one packed from ``$CIFAR10_ROOT``), and take minutes: marked ``data``
and ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tools") not in sys.path:  # the package tools/offline_bundle/, as tools/bundle.py imports it
    sys.path.insert(0, str(ROOT / "tools"))

from offline_bundle import (  # noqa: E402
    build, contents, errors, paths, pip_fetch, requirements, resolution, targets, wheels,
)
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402

GPU_ENV = targets.make_target("gpu-node").environment()
LOCAL_ENV = targets.make_target("local").environment()


# ------------------------------------------------------------------------------------------
# Pure parts
# ------------------------------------------------------------------------------------------


def test_markers_are_evaluated_for_the_target_not_for_this_python():
    papermill = ['aiohttp>=3.9; python_version == "3.12"', "click", 'black>=19.3b0; extra == "dev"',
                 "appnope>=0.1.2; platform_system == 'Darwin'", 'colorama; sys_platform == "win32"',
                 'triton==3.8.0; platform_system == "Linux" and platform_machine == "x86_64"']
    on_node = [r.name for r in requirements.dependencies(papermill, GPU_ENV)]
    assert on_node == ["aiohttp", "click", "triton"], "cp312 Linux x86_64 needs aiohttp; no extras, no macOS/Windows"
    py311 = targets.target_environment("3.11", "manylinux_2_28_x86_64")
    assert [r.name for r in requirements.dependencies(papermill, py311)] == ["click", "triton"]
    assert "black" in [r.name for r in requirements.dependencies(papermill, GPU_ENV, extras=["dev"])]
    arm = targets.target_environment("3.12", "manylinux_2_28_aarch64")
    assert [r.name for r in requirements.dependencies(papermill, arm)] == ["aiohttp", "click"]


def test_target_environment_and_tags():
    node = targets.make_target("gpu-node")
    assert (GPU_ENV["python_version"], GPU_ENV["sys_platform"], GPU_ENV["platform_machine"],
            GPU_ENV["platform_system"]) == ("3.12", "linux", "x86_64", "Linux")
    assert node.tag == "cp312-manylinux_2_28_x86_64" and node.abis == ["cp312", "abi3", "none"]
    plats = node.platforms
    assert plats[0] == "manylinux_2_28_x86_64"
    for older in ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"):
        assert older in plats
    assert plats.index("manylinux2014_x86_64") == plats.index("manylinux_2_17_x86_64") + 1
    assert "manylinux_2_29_x86_64" not in plats
    assert targets.platform_fallbacks("manylinux2014_x86_64")[0] == "manylinux_2_17_x86_64"
    args = node.pip_args()
    assert args[:4] == ["--python-version", "3.12", "--implementation", "cp"] and "--abi" in args
    local = targets.make_target("local")
    assert local.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert LOCAL_ENV["python_full_version"] == ".".join(map(str, sys.version_info[:3]))
    custom = targets.make_target(None, "3.13", "manylinux_2_34_aarch64")
    assert custom.name == "cp313-manylinux_2_34_aarch64" and custom.has == ()
    with pytest.raises(errors.BundleError, match="expected 3.X"):
        targets.make_target("gpu-node", python_version="312")


class _Dist:
    def __init__(self, *requires):
        self.requires = list(requires) or None


def test_closure_follows_dependencies_markers_and_extras():
    installed = {
        "torch": _Dist("filelock", "typing-extensions>=4.10", 'setuptools; python_version >= "3.12"',
                       'triton==3.8; platform_system == "Linux"', 'opt-einsum; extra == "opt-einsum"'),
        "filelock": _Dist(), "typing-extensions": _Dist(), "setuptools": _Dist(), "triton": _Dist("torch"),
        "matplotlib": _Dist("packaging", "python-dateutil>=2.7", "Pillow>=8"),
        "python-dateutil": _Dist("six>=1.5"), "six": _Dist(), "packaging": _Dist(), "pillow": _Dist(),
        "seaborn": _Dist("matplotlib[tk]"), "opt-einsum": _Dist(), "tk-extra": _Dist(),
    }
    installed["matplotlib"].requires.append('tk-extra; extra == "tk"')
    closure, unknown = requirements.installed_closure(
        ["torch==2.11", "PyYAML", "seaborn"], GPU_ENV, distribution=lambda n: installed.get(canonicalize_name(n)))
    assert set(closure) == {"torch", "filelock", "typing-extensions", "setuptools", "triton", "pyyaml", "seaborn",
                            "matplotlib", "packaging", "python-dateutil", "six", "pillow", "tk-extra"}
    assert closure["six"] == "seaborn" and closure["torch"] == "torch" and closure["pyyaml"] == "pyyaml"
    assert unknown == ["pyyaml"], "a has-list name not installed here: dependencies unknown, said so"
    closure311, _ = requirements.installed_closure(["torch"], LOCAL_ENV if LOCAL_ENV["python_version"] == "3.11" else
                                             targets.target_environment("3.11", "manylinux_2_28_x86_64"),
                                             distribution=lambda n: installed.get(canonicalize_name(n)))
    assert "setuptools" not in closure311, "torch needs setuptools only on 3.12+"


def test_closure_from_this_environment():
    closure, _ = requirements.installed_closure(["torch", "matplotlib"], GPU_ENV)
    for name in ("torch", "typing-extensions", "sympy", "mpmath", "jinja2", "markupsafe", "packaging", "pyparsing"):
        assert name in closure
    assert closure["markupsafe"] == "torch" and closure["matplotlib"] == "matplotlib"
    assert "albumentations" not in closure


def test_project_requirements_skip_interactive_names():
    pyproject = {"project": {"dependencies": ["torch==2.14.1", "papermill>=2.6"],
                             "optional-dependencies": {"notebooks": ["jupyter>=1.1", "nbclient>=0.10"],
                                                       "test": ["pytest"]}}}
    reqs, skipped = requirements.project_requirements(pyproject)
    assert [str(r) for r in reqs] == ["torch==2.14.1", "papermill>=2.6", "nbclient>=0.10", "ipykernel"]
    assert skipped == ["jupyter"]
    import tomllib

    real, _ = requirements.project_requirements(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    names = {canonicalize_name(r.name) for r in real}
    assert {"papermill", "ipykernel", "albumentations", "grad-cam", "airbench"} <= names and "jupyter" not in names
    assert "pytest" not in names


def _wheel(folder: Path, name: str, version: str, requires=(), files=("{pkg}/__init__.py",)) -> Path:
    pkg = name.replace("-", "_")
    path = folder / f"{pkg}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for f in files:
            zf.writestr(f.format(pkg=pkg), "")
        meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
        zf.writestr(f"{pkg}-{version}.dist-info/METADATA", "\n".join(meta) + "\n")
    return path


def test_resolver_recurses_excludes_what_the_target_has_and_merges_specifiers(tmp_path):
    index = {
        ("app", "1.0"): ["lib>=1", "torch", 'aiohttp; python_version == "3.12"', "helper"],
        ("lib", "1.0"): [], ("lib", "2.0"): ["tiny"], ("tiny", "1.0"): [],
        ("aiohttp", "3.0"): ["multidict"], ("multidict", "6.0"): [],
        ("helper", "1.0"): ["lib<2"],
    }
    calls = []

    def fetch(reqs):
        calls.append(sorted(str(r) for r in reqs))
        got = {}
        for req in reqs:
            name = canonicalize_name(req.name)
            versions = sorted((v for (n, v) in index if n == name), key=lambda v: tuple(map(int, v.split("."))))
            best = [v for v in versions if req.specifier.contains(v)][-1]
            got[name] = wheels.read_wheel(_wheel(tmp_path, name, best, index[(name, best)]))
        return got

    res = resolution.resolve([Requirement("app"), Requirement("numpy>=1")], GPU_ENV,
                         {"torch": "torch", "numpy": "numpy"}, fetch, log=lambda _: None)
    assert {n: w.version for n, w in res.wheels.items()} == {"app": "1.0", "lib": "1.0", "aiohttp": "3.0",
                                                              "multidict": "6.0", "helper": "1.0"}
    assert "tiny" not in res.wheels, "lib 2.0 was replaced by 1.0 (helper needs lib<2): its dependency is dropped"
    assert any("lib<2,>=1" in c for c in calls), "a specifier met later is merged and the name fetched again"
    assert {p["required_by"] for p in res.provided["numpy"]} == {"<project>"}
    assert res.provided["torch"][0]["required_by"] == "app 1.0"
    res311 = resolution.resolve([Requirement("app")], targets.target_environment("3.11", "manylinux_2_28_x86_64"),
                            {"torch": "torch"}, fetch, log=lambda _: None)
    assert "aiohttp" not in res311.wheels


def test_no_wheel_for_names_the_requirement_pip_found_no_wheel_for():
    reqs = [Requirement("albumentations<3"), Requirement("grad-cam<2,>=1.5.4")]
    assert pip_fetch.no_wheel_for("ERROR: No matching distribution found for grad-cam==1.5.7", reqs) == reqs[1]
    pinned = ("The conflict is caused by:\n    The user requested grad-cam<2 and >=1.5.4\n"
              "    The user requested (constraint) grad-cam==1.5.7\nERROR: Cannot install grad-cam<2 and >=1.5.4")
    assert pip_fetch.no_wheel_for(pinned, reqs) == reqs[1]
    assert pip_fetch.no_wheel_for("ERROR: HTTP error 503 while getting https://...", reqs) is None


# What `pip download -vv` logs for torch's index page (pip 23.2 format; the wheel names are what counts).
_TORCH_LOG = "\n".join(
    f"  Skipping link: none of the wheel's tags ({tags}) are compatible (run pip debug --verbose "
    f"to show compatible tags): https://files.pythonhosted.org/packages/ab/cd/torch-{version}-{tags}.whl "
    f"(from https://pypi.org/simple/torch/) (requires-python:>=3.9)"
    for version, tags in [
        ("2.8.0", "cp39-cp39-manylinux_2_28_x86_64"), ("2.8.0", "cp312-cp312-manylinux_2_28_x86_64"),
        ("2.14.1", "cp310-cp310-manylinux_2_28_x86_64"), ("2.14.1", "cp312-cp312-manylinux_2_28_x86_64"),
        ("2.14.1", "cp312-cp312-manylinux_2_28_aarch64"), ("2.14.1", "cp312-cp312-win_amd64"),
        ("2.14.1", "cp314-cp314t-manylinux_2_28_x86_64"),
    ]) + "\n  Found link https://files.pythonhosted.org/packages/ef/01/torchvision-0.29.1-cp312-cp312-win_amd64.whl"
_RESOLUTION_IMPOSSIBLE = (
    "ERROR: Cannot install torch>=2.6 because these package versions have conflicting dependencies.\n\n"
    "The conflict is caused by:\n    The user requested torch>=2.6\n"
    "    The user requested (constraint) torch<=2.14.1,==2.14.1\n\n"
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/")


def test_a_python_or_platform_torch_has_no_wheel_for_gets_the_versions_that_work():
    wheels = pip_fetch.published_wheels(_TORCH_LOG, "torch")
    assert sorted(wheels) == ["2.14.1", "2.8.0"], "torchvision's wheel is not torch's"
    pin, req = Requirement("torch==2.14.1"), Requirement("torch>=2.6")
    py39 = pip_fetch.wheel_only_message(req, pin, targets.make_target(None, "3.9", "manylinux_2_28_x86_64"), wheels)
    assert py39.startswith("torch==2.14.1 (the version constraints.txt pins) publishes no wheel for CPython 3.9 on "
                           "manylinux_2_28_x86_64")
    assert "its wheels are for CPython 3.10, 3.12: pass --python-version" in py39, "not the free-threaded 3.14t"
    assert "torch 2.8.0 (also within torch>=2.6) has a wheel for this target" in py39
    assert "name it in --has" in py39
    arm = pip_fetch.wheel_only_message(req, pin, targets.make_target(None, "3.12", "macosx_14_0_arm64"), wheels)
    assert "For CPython 3.12 its wheels are for manylinux_2_28_aarch64, manylinux_2_28_x86_64, win_amd64: " \
           "pass --platform" in arm
    # a wheel exists (also through an older manylinux tag the target accepts), or the log named none: pip's error stands
    py39_target = targets.make_target(None, "3.9", "manylinux_2_28_x86_64")
    assert pip_fetch.wheel_only_message(req, pin, targets.make_target("gpu-node"), wheels) is None
    newer_glibc = targets.make_target(None, "3.12", "manylinux_2_34_x86_64")
    assert pip_fetch.wheel_only_message(req, pin, newer_glibc, wheels) is None
    assert pip_fetch.wheel_only_message(req, None, py39_target, wheels) is None, "unpinned, torch 2.8.0 fits"
    assert pip_fetch.wheel_only_message(req, pin, py39_target, {}) is None


def test_pips_resolution_impossible_for_torch_becomes_the_clear_message(tmp_path, monkeypatch):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch==2.14.1\n")
    target = targets.make_target(None, "3.9", "manylinux_2_28_x86_64")
    fetcher = pip_fetch.PipFetcher(target, tmp_path / "cache", constraints, log=lambda _: None)
    calls = []

    def fake_run(cmd, **kwargs):  # no network: pip's answers, stubbed
        calls.append(cmd)
        log = _TORCH_LOG if "-vv" in cmd else _RESOLUTION_IMPOSSIBLE
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=log)

    monkeypatch.setattr(pip_fetch.subprocess, "run", fake_run)
    with pytest.raises(errors.BundleError) as err:
        fetcher([Requirement("torch>=2.6"), Requirement("tqdm>=4.66")])
    message = str(err.value)
    assert "ResolutionImpossible" not in message and "CPython 3.10, 3.12: pass --python-version" in message
    probe = calls[-1]
    assert probe[-1] == "torch===no-such-version", "the look-up asks for a version no index has: nothing downloads"
    assert not any("--no-binary" in c for c in calls), "no attempt to build torch from a source distribution"


def test_wheel_metadata_and_top_level_modules(tmp_path):
    path = _wheel(tmp_path, "demo-pkg", "1.2", ["numpy>=1", 'x; extra == "y"'],
                  files=("{pkg}/__init__.py", "single.py", "_fast.cpython-312-x86_64-linux-gnu.so",
                         "demo_pkg-1.2.data/purelib/extra_mod/__init__.py", "demo_pkg-1.2.data/scripts/tool",
                         "ipykernel_launcher.py", "not-a-module.txt", "demo.pth"))
    info = wheels.read_wheel(path)
    assert (info.name, info.version, info.requires, info.pure) == ("demo-pkg", "1.2", ["numpy>=1", 'x; extra == "y"'], True)
    assert wheels.wheel_top_level(path) == ["_fast", "demo_pkg", "extra_mod", "ipykernel_launcher", "single"]
    rows = contents.module_owner([info])
    assert ["ipykernel_launcher", path.name] not in rows, "importing ipykernel_launcher would start a kernel"


def test_size_check_lists_the_largest_files():
    mib = build.MIB
    assert build.check_size({"a.whl": 10 * mib, "data/c.tar.gz": 19 * mib}, 60) == pytest.approx(29)
    with pytest.raises(errors.BundleError) as err:
        build.check_size({"wheels/small.whl": mib, "wheels/torch.whl": 900 * mib, "data/c.tar.gz": 19 * mib}, 60)
    text = str(err.value)
    assert "920.00 MiB" in text and "60 MiB" in text and "--max-mib" in text
    assert text.index("torch.whl") < text.index("c.tar.gz") < text.index("small.whl"), "largest first"


def test_expected_sha256_comes_from_the_readme_beside_the_archive(tmp_path):
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    archive.write_bytes(b"x")
    assert contents.expected_sha256(archive) is None
    (tmp_path / "README.md").write_text("`cifar10-jpeg.tar.gz` ...\n\nsha256: " + "ab" * 32 + "\n")
    assert contents.expected_sha256(archive) == "ab" * 32
    shared = paths.DEFAULT_DATA
    if shared.is_file():
        assert contents.expected_sha256(shared) == "efac85c8ed52f4ead1e1f1b670d8dcf435d551fccebdd8b6365e0a01a504f3a4"


def test_run_sh_is_valid_bash_and_makefile_has_the_target():
    run_sh = paths.RUN_SH_TEMPLATE.read_text()
    proc = subprocess.run(["bash", "-n", str(paths.RUN_SH_TEMPLATE)], text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert "set -euo pipefail" in run_sh and "--no-index --no-deps" in run_sh
    makefile = (ROOT / "Makefile").read_text()
    assert "\nbundle:" in makefile and "tools/bundle.py --target gpu-node" in makefile


def test_run_sh_passes_shellcheck():
    """ShellCheck (https://www.shellcheck.net) finds nothing in run.sh at its default severity (style and up):
    each finding is fixed, or disabled on its line with the reason."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run tries to install it)")
    proc = subprocess.run([shellcheck, "--shell=bash", str(paths.RUN_SH_TEMPLATE)], text=True, capture_output=True)
    assert proc.returncode == 0, f"shellcheck {paths.RUN_SH_TEMPLATE}:\n{proc.stdout}{proc.stderr}"


def test_run_sh_is_copied_verbatim_executable_and_its_usage_is_lines_3_to_8(tmp_path):
    run_sh = contents.copy_run_sh(tmp_path)
    assert run_sh == tmp_path / "run.sh" and run_sh.read_bytes() == paths.RUN_SH_TEMPLATE.read_bytes()
    assert run_sh.stat().st_mode & 0o777 == 0o755, "run.sh is executable in every bundle"
    proc = subprocess.run(["bash", str(run_sh), "--help"], capture_output=True, text=True, cwd=tmp_path)
    usage = proc.stderr.splitlines()  # run.sh prints its own lines 3-8: an edit above them would shift them
    assert proc.returncode == 0 and len(usage) == 6 and usage[0] == "", proc.stderr
    assert usage[1].startswith("  bash run.sh gpu-report") and usage[5].startswith("  bash run.sh check"), usage


def test_the_gpu_report_goes_into_the_bundle_with_the_modules_it_loads(tmp_path):
    if not (contents.GPU_REPORT / "__main__.py").is_file():
        assert contents.copy_gpu_report(tmp_path) is False and not list(tmp_path.iterdir())
        return
    assert contents.copy_gpu_report(tmp_path) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["gpu_report", *contents.REPORT_SIBLINGS])
    copied = sorted(p.relative_to(tmp_path / "gpu_report") for p in (tmp_path / "gpu_report").rglob("*.py"))
    assert copied == sorted(p.relative_to(contents.GPU_REPORT) for p in contents.GPU_REPORT.rglob("*.py")
                            if "__pycache__" not in p.parts) and not list(tmp_path.rglob("__pycache__"))
    sources = " ".join(p.read_text() for p in contents.GPU_REPORT.rglob("*.py"))
    siblings = {p.stem for p in contents.GPU_REPORT.parent.glob("*.py")}  # modules beside the folder it may import
    loaded = set(re.findall(r"^\s*(?:import|from) (\w+)", sources, flags=re.M)) & siblings
    assert {f"{name}.py" for name in loaded} <= set(contents.REPORT_SIBLINGS), "a module it loads is not bundled"
    proc = subprocess.run([sys.executable, str(tmp_path / "gpu_report"), "--plan", "round2", "--show-plan"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, "the copied report runs from its folder:\n" + proc.stderr[-3000:]


# ------------------------------------------------------------------------------------------
# End to end: build for this Python, run in a Python that has only the target's packages
# ------------------------------------------------------------------------------------------


def _owners() -> dict[str, set[str]]:
    """Relative path of every recorded file in this environment's site-packages -> owning distributions."""
    owners: dict[str, set[str]] = {}
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    for dist in metadata.distributions():
        try:
            if Path(dist.locate_file("")).resolve() != purelib:
                continue
        except Exception:  # noqa: BLE001 - odd distributions (eggs) are simply not mirrored
            continue
        name = canonicalize_name(dist.metadata["Name"])
        for f in dist.files or ():
            parts = Path(f).parts
            if parts and parts[0] != "..":
                owners.setdefault(Path(*parts).as_posix(), set()).add(name)
    return owners


def _mirror(names: set[str], dest: Path) -> None:
    """Symlink into ``dest`` exactly the files of the distributions ``names`` (from this environment's
    site-packages): a whole folder where only those distributions own files in it, else folder by folder."""
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    owners = _owners()
    tree: dict[str, set[str]] = {}
    for rel, who in owners.items():
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            tree.setdefault("/".join(parts[:i]), set()).update(who)

    def link(rel: str) -> None:
        src = purelib / rel
        if not src.exists():
            return
        if tree[rel] <= names or src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(src)
            return
        for child in sorted(c for c in tree if c.startswith(rel + "/") and "/" not in c[len(rel) + 1:]):
            if tree[child] & names:
                link(child)

    for top in sorted(t for t in tree if "/" not in t):
        if tree[top] & names:
            link(top)


@pytest.fixture(scope="module")
def node_python(tmp_path_factory) -> Path:
    """A bare venv that sees only the GPU node's packages (those installed here) and their closure, plus pip."""
    env_dir = tmp_path_factory.mktemp("node") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, env=_clean_env()).stdout.strip()
    has = [Requirement(h).name for h in targets.GPU_NODE_HAS] + ["pip"]   # the node's Python has pip
    closure, _ = requirements.installed_closure(has, LOCAL_ENV)
    _mirror(set(closure), Path(site))
    return python


def _clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CIFAR10_ROOT", "JUPYTER_PATH")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def _cifar10_archive(request, tmp_dir: Path) -> Path:
    """The archive to bundle: the shared ``../shared/data/cifar10-jpeg.tar.gz`` (what ``make bundle`` takes),
    else one packed here from the unpacked copy at ``$CIFAR10_ROOT`` (conftest's ``cifar_root``; a clone without
    ``../shared`` beside it).

    Raises:
        pytest.fail.Exception: neither is there (``cifar_root`` names the fix), or ``$CIFAR10_ROOT`` has no
            ``train/`` and ``test/`` folders to pack.
    """
    if paths.DEFAULT_DATA.is_file():
        return paths.DEFAULT_DATA
    root = request.getfixturevalue("cifar_root")
    if not ((root / "train").is_dir() and (root / "test").is_dir()):
        pytest.fail(f"the bundle tests pack CIFAR-10 from CIFAR10_ROOT={root}, which has no train/ and test/ "
                    f"folders: point it at an unpacked image-folder copy of {paths.DEFAULT_DATA.name}", pytrace=False)
    archive = tmp_dir / f"{root.name}.tar.gz"
    # the images only: not the decoded-array cache that loading writes beside them (~180 MiB)
    subprocess.run(["tar", "-czf", str(archive), "-C", str(root.parent), f"{root.name}/train", f"{root.name}/test"],
                   check=True)
    return archive


@pytest.fixture(scope="module")
def local_bundle(request, tmp_path_factory) -> Path:
    """The bundle for this Python with our GPU node's has-list (cached wheels in .cache/bundle-wheels)."""
    out = tmp_path_factory.mktemp("bundle") / "bundle-local"
    archive = _cifar10_archive(request, tmp_path_factory.mktemp("archive"))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bundle.py"), "--target", "local", "--out", str(out),
                           "--data", str(archive)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"building the bundle failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "total size:" in proc.stdout
    return out


def _run_sh(bundle_dir: Path, python: Path, tmp: Path, *args: str, timeout: float = 900, **env):
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["bash", str(bundle_dir / "run.sh"), *args], cwd=tmp, capture_output=True, text=True,
                          timeout=timeout, env=_clean_env(PYTHON=str(python), TMPDIR=str(tmp), **env))


def test_isolated_python_has_only_the_target_packages(node_python, tmp_path):
    """Fast (no bundle, no data): the stand-in node has torch & co. but nothing the bundle must bring."""
    probe = ("import importlib.util as u, importlib.metadata as md, torch, torchvision, numpy, scipy, cv2, matplotlib, "
             "seaborn, sklearn, pandas, PIL, yaml, tqdm, psutil, pip\n"
             "print(sorted(m for m in ('albumentations', 'cifarhelpers', 'papermill', 'ipykernel', 'pydantic', "
             "'pytorch_grad_cam', 'jupyter_client', 'pytest') if u.find_spec(m)))\n"
             "print(md.version('torch'))")
    # cwd: not the repo root, whose cifarhelpers/ folder `python -c` would import
    proc = subprocess.run([str(node_python), "-c", probe], capture_output=True, text=True, env=_clean_env(),
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] == "[]", f"the node's Python sees packages it must not have: {lines[0]}"
    assert lines[1] == metadata.version("torch")
    proc = subprocess.run([str(node_python), "-c", "import albumentations"], capture_output=True, text=True,
                          env=_clean_env(), cwd=tmp_path)
    assert proc.returncode != 0 and "No module named 'albumentations'" in proc.stderr


@pytest.mark.data
@pytest.mark.slow
def test_bundle_runs_the_gpu_report_smoke_in_the_isolated_python(local_bundle, node_python, tmp_path):
    manifest = json.loads((local_bundle / "MANIFEST.json").read_text())
    assert manifest["total_mib"] <= 60
    assert wheels.sha256_of(local_bundle / manifest["data"]["file"]) == manifest["data"]["sha256"]
    if paths.DEFAULT_DATA.is_file():   # the shared archive, whose sha256 its README gives
        assert manifest["data"]["sha256"].startswith("efac85c8")
    names = {w["name"] for w in manifest["wheels"]}
    assert {"cifarhelpers", "albumentations", "grad-cam", "papermill", "ipykernel", "airbench"} <= names
    assert not names & {"torch", "numpy", "jupyter", "notebook", "jupyterlab"}
    assert manifest["gpu_report"] == (ROOT / "benchmarks" / "gpu_report" / "__main__.py").is_file()
    out = tmp_path / "report"
    if manifest["gpu_report"]:
        # The parts that prove the bundle runs the report in the node's Python: a real (tiny) training, the peer
        # from its bundled wheel, and the profiler; without the torch.compile run, as the planned visits run it
        # (benchmarks/gpu_report/plans.py; on this CPU it took a minute). The notebooks run once per suite, in
        # tests/test_notebooks.py; the report's other parts are tested with a stand-in fit() in
        # tests/test_gpu_report.py.
        proc = _run_sh(local_bundle, node_python, tmp_path / "run", "gpu-report", "--smoke", "--out", str(out),
                       "--parts", "main_job", "peer", "profile", "--no-compile-run", "--budget-minutes", "25",
                       timeout=1800)
        assert proc.returncode == 0, f"run.sh gpu-report --smoke failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        written = sorted(p.name for p in out.iterdir())
        for name in ("gpu_report.json", "gpu_report.log", "profile_top_kernels.txt"):
            assert name in written, f"the report did not write {name}: {written}"
        report = json.loads((out / "gpu_report.json").read_text())
        assert report["status"] == "completed" and not report["errors"], (report["status"], report["errors"])
        assert report["parts"]["main_job"]["status"] == "completed", report["parts"]["main_job"]
        assert report["parts"]["notebooks"]["status"] == "not_requested", "the notebooks run once, elsewhere"
        assert "peer_airbench.py" in manifest["gpu_report_siblings"]
        peer = report["parts"]["peer"]  # airbench from the bundle's wheel, its files checked (no runs on a CPU)
        assert peer["status"] == "completed" and peer["package"]["version"] == "0.1.8", peer
        assert peer["files_check"]["train"]["read_by_airbench_cifarloader"] and peer["runs"] == []
        git = manifest["project"]["git"]
        if git["commit"]:  # run.sh hands the bundle's commit to the report (the bundle is no checkout)
            assert report["environment"]["git_commit"] == git["commit"] + ("-dirty" if git["dirty"] else "")
    else:  # the bundle was built before benchmarks/gpu_report/ existed: the main job instead
        proc = _run_sh(local_bundle, node_python, tmp_path / "run", "train", "--profile", "short", "--train-subset",
                       "256", "--test-subset", "200", "--epochs", "1", "--batch-size", "64", "--device", "cpu",
                       "--output-dir", str(out), "--quiet")
        assert proc.returncode == 0, f"run.sh train failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        (metrics,) = out.glob("*/metrics.json")
        assert json.loads(metrics.read_text())["status"] == "completed"
    assert "all " in proc.stderr and "bundled top-level modules import" in proc.stderr
    assert "(unpacked; waited" in proc.stderr, "run.sh used the bundled archive"
    assert not list((tmp_path / "run").glob("cifarhelpers-bundle.*")), "run.sh removes its temporary folder"


# Put first on sys.path through PYTHONPATH (which run.sh keeps, behind its site folder, and the kernel
# inherits), Python imports this at start-up. Its finder says something on stdout and on stderr when
# albumentations is imported, as tqdm did on the node (``TqdmWarning: IProgress not found`` on the
# kernel's stderr) -- in the kernel that happens inside run.sh's check cell, so it arrives as that
# cell's stream messages, beside the answer the check reads.
NOISY_SITECUSTOMIZE = '''\
import sys


class NoisyImport:
    def find_spec(self, name, path=None, target=None):
        if name == "albumentations":
            print("noise-on-stdout before the answer", end="")
            print("TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.", file=sys.stderr)
        return None


sys.meta_path.insert(0, NoisyImport())
'''


@pytest.mark.data
@pytest.mark.slow
def test_check_installs_without_pip_and_reads_only_the_kernels_answer_through_its_noise(local_bundle, node_python,
                                                                                        tmp_path):
    """One ``run.sh check`` (each takes half a minute here) for two things: run.sh's zipfile fallback installs a
    bundle that papermill's kernel ``python3`` imports cifarhelpers from; and what the kernel prints on stderr or
    stdout while the check cell imports is no answer and breaks none."""
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    (noisy / "sitecustomize.py").write_text(NOISY_SITECUSTOMIZE)
    proc = _run_sh(local_bundle, node_python, tmp_path / "run", "check", BUNDLE_INSTALLER="zipfile",
                   PYTHONPATH=str(noisy))
    assert "unpacking them with zipfile" in proc.stderr
    # the checks' own Python made the noise too (so the kernel, with the same PYTHONPATH, did as well)
    assert "IProgress not found" in proc.stderr and "noise-on-stdout" in proc.stdout, proc.stderr[-4000:]
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    assert "kernel python3" in proc.stderr and "imports cifarhelpers from the bundle" in proc.stderr
    assert "bundle OK" in proc.stderr


@pytest.mark.data
@pytest.mark.slow
def test_a_missing_wheel_stops_run_sh_naming_the_module(local_bundle, node_python, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(local_bundle, broken, ignore=shutil.ignore_patterns("data"))
    (victim,) = (broken / "wheels").glob("albucore-*.whl")
    victim.unlink()
    proc = _run_sh(broken, node_python, tmp_path / "run", "python", "-c", "print('job ran')")
    assert proc.returncode != 0 and "job ran" not in proc.stdout
    assert "IMPORT FAILED: albucore" in proc.stderr and "the job did not start" in proc.stderr
