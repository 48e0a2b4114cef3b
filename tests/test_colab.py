"""Colab: every notebook's badge and Colab cell come from pyproject.toml's [project.urls]; the cell installs
with %pip (pip's errors show) keeping Colab's torch and Jupyter, and mounts Google Drive; on Colab, data is
downloaded and outputs go to Google Drive when mounted, else stay on the VM with a note. No data needed.
(The whole chain on a stand-in Colab, each notebook in its own VM: tests/test_notebooks.py.)"""

from __future__ import annotations

import re
import shutil
import sys
import types
from pathlib import Path

import nbformat
import pytest
import tomllib
import torch

from cifarhelpers.cli import colab as colab_cli
from cifarhelpers.notebook import (
    COLAB_EXTRA,
    NOTEBOOKS_DIR,
    badge_markdown,
    colab,
    colab_cell_source,
    colab_output_dir,
    mount_drive,
    repository_url,
    sync_notebooks,
)
from cifarhelpers.notebook import setup as notebook_setup

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NOTEBOOK_PATHS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_the_repository_url_is_one_setting_in_pyproject(tmp_path):
    """A fork changes [project.urls] and runs `python -m cifarhelpers.cli.colab`; nothing else names the URL."""
    urls = PROJECT["urls"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", urls["Repository"])
    assert urls["Homepage"] == urls["Repository"]
    assert repository_url() == urls["Repository"]
    fork = tmp_path / "pyproject.toml"
    fork.write_text('[project.urls]\nRepository = "https://github.com/someone/cifarhelpers/"\n')
    assert repository_url(fork) == "https://github.com/someone/cifarhelpers"
    assert colab_cell_source(repository_url(fork)).count("git+https://github.com/someone/cifarhelpers\"") == 1
    fork.write_text('[project.urls]\nRepository = "https://gitlab.com/someone/cifarhelpers"\n')
    with pytest.raises(ValueError, match=r"it must be https://github.com/<owner>/<name>"):
        repository_url(fork)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_each_committed_notebook_has_the_generated_badge_and_colab_cell(path):
    nb = nbformat.read(path, as_version=4)
    badge_lines = [line for line in nb.cells[0].source.splitlines() if "colab-badge.svg" in line]
    assert badge_lines == [badge_markdown(path.name)]
    assert f"{PROJECT['urls']['Repository'].removeprefix('https://github.com/')}/blob/main/notebooks/{path.name}" \
        in badge_lines[0]
    (cell,) = [c for c in nb.cells if "colab" in c.metadata.get("tags", [])]
    assert cell.source == colab_cell_source()


def test_sync_finds_nothing_to_change_in_the_committed_notebooks():
    assert sync_notebooks(check=True) == []
    assert colab_cli.main(["--check"]) == 0


def test_sync_rewrites_only_the_badge_and_the_install_cell(tmp_path):
    shutil.copy(NOTEBOOKS_DIR / "06_model_zoo.ipynb", tmp_path / "06_model_zoo.ipynb")
    path = tmp_path / "06_model_zoo.ipynb"
    nb = nbformat.read(path, as_version=4)
    before = [(c.source, c.get("outputs")) for c in nb.cells]
    nb.cells[0].source = nb.cells[0].source.replace("github/cifarhelpers/cifarhelpers", "github/someone/old")
    nb.cells[1].source = "# NBVAL_SKIP\n!pip install cifarhelpers"
    nbformat.write(nb, path)
    assert colab_cli.main(["--check", "--notebooks-dir", str(tmp_path)]) == 1
    assert sync_notebooks(tmp_path) == ["06_model_zoo.ipynb"]
    after = [(c.source, c.get("outputs")) for c in nbformat.read(path, as_version=4).cells]
    assert after == before, "badge and install cell restored, every other cell and output untouched"


def test_the_colab_cell_installs_the_colab_extra_with_pip_magic_and_keeps_colabs_torch():
    source = colab_cell_source()
    (spec,) = re.findall(r'%pip install "(cifarhelpers\[[^"]*)"', source)
    assert spec == f"cifarhelpers[{COLAB_EXTRA}] @ git+{PROJECT['urls']['Repository']}"
    assert source.startswith("# NBVAL_SKIP") and 'if "google.colab" in sys.modules:' in source
    assert "subprocess" not in source and "--quiet" not in source and "-q " not in source, "pip's messages show"
    installs = source.split("%pip install", 1)[1].splitlines()[0]
    assert "torch" not in installs and "--upgrade" not in installs and "-U" not in installs.split(), \
        "nothing asks pip to replace Colab's torch"
    from packaging.requirements import Requirement

    torch_requirement = next(Requirement(d) for d in PROJECT["dependencies"] if Requirement(d).name == "torch")
    assert torch_requirement.specifier.contains("2.8.0+cu126"), "a Colab torch build meets the range: pip keeps it"
    extras = PROJECT["optional-dependencies"]
    colab_names = {Requirement(r).name for r in extras[COLAB_EXTRA]}
    assert colab_names == {"papermill"}, "no jupyter or ipykernel over Colab's own"
    assert {"jupyter", "ipykernel"} <= {Requirement(r).name for r in extras["notebooks"]}, "the local extra has them"


def test_the_colab_cell_is_python_once_ipython_reads_its_magic_and_does_nothing_off_colab():
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(colab_cell_source())
    assert "get_ipython().run_line_magic('pip', 'install \"cifarhelpers[colab] @ git+" in code, \
        "the %pip line, indented"
    ran = []
    namespace = {"get_ipython": lambda: types.SimpleNamespace(run_line_magic=lambda *a: ran.append(a))}
    exec(compile(code, "colab-cell", "exec"), namespace)  # this is no Colab: nothing is installed or mounted
    assert ran == [] and "google.colab" not in sys.modules


# -- where outputs go on Colab ------------------------------------------------------------------

@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    """A Colab runtime whose /content is ``tmp_path``; Drive is not mounted until the test mounts it."""
    monkeypatch.setattr(colab, "COLAB_CONTENT", tmp_path)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    return tmp_path


def test_on_colab_outputs_go_to_drive_when_mounted_else_the_vm_with_a_note(fake_colab):
    target, note = colab_output_dir("../runs/notebooks")
    assert target == fake_colab / "cifarhelpers" / "runs" / "notebooks"
    assert "on this VM only" in note and "cannot read them" in note and "run the first code cell again" in note
    (fake_colab / "drive" / "MyDrive").mkdir(parents=True)
    target, note = colab_output_dir("../runs/notebooks")
    assert target == fake_colab / "drive" / "MyDrive" / "cifarhelpers" / "runs" / "notebooks"
    assert "Google Drive" in note and "the other notebooks read them" in note
    assert colab_output_dir(fake_colab / "mine") == (fake_colab / "mine", None), "an absolute folder is kept"


def _stand_in_drive(monkeypatch, mount):
    drive_module = types.ModuleType("google.colab.drive")
    drive_module.mount = mount
    package = types.ModuleType("google.colab")
    package.drive = drive_module
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive_module)


def test_mount_drive_mounts_at_content_drive_and_says_where_the_files_go(fake_colab, monkeypatch, capsys):
    asked = []

    def mount(mountpoint):
        asked.append(mountpoint)
        (Path(mountpoint) / "MyDrive").mkdir(parents=True)

    _stand_in_drive(monkeypatch, mount)
    assert mount_drive() == fake_colab / "drive" / "MyDrive" / "cifarhelpers"
    assert asked == [str(fake_colab / "drive")]
    assert "Google Drive mounted: the notebooks hand their files to each other in" in capsys.readouterr().out
    assert colab.drive_mounted()


def test_a_declined_mount_leaves_the_notebook_running_and_says_its_files_stay_on_the_vm(fake_colab, monkeypatch,
                                                                                           capsys):
    def mount(mountpoint):
        raise ValueError("mount failed")

    _stand_in_drive(monkeypatch, mount)
    assert mount_drive() is None
    out = capsys.readouterr().out
    assert "Google Drive not mounted (ValueError: mount failed)" in out and "on this VM only" in out
    assert "Run this cell again to mount Drive" in out and not colab.drive_mounted()


def test_off_colab_mount_drive_does_nothing(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert mount_drive() is None and capsys.readouterr().out == ""


def test_start_notebook_on_colab_downloads_by_default_and_writes_to_drive(fake_colab, monkeypatch, capsys):
    (fake_colab / "drive" / "MyDrive").mkdir(parents=True)
    asked = {}

    def fake_load(root, download, progress):
        asked["download"] = download
        raise RuntimeError("stop here: no data needed for this test")

    monkeypatch.setattr(notebook_setup, "load_cifar10", fake_load)
    with pytest.raises(RuntimeError, match="stop here"):
        notebook_setup.start_notebook(output_dir="../runs/notebooks", device="cpu")
    assert asked["download"] is True, "a fresh Colab VM has no copy: download by default"
    with pytest.raises(RuntimeError, match="stop here"):
        notebook_setup.start_notebook(output_dir="../runs/notebooks", device="cpu", download=False)
    assert asked["download"] is False, "an explicit False is kept"
    setup = notebook_setup.start_notebook(output_dir="../runs/notebooks", device="cpu", load_data=False)
    assert setup.output_dir == fake_colab / "drive" / "MyDrive" / "cifarhelpers" / "runs" / "notebooks"
    assert setup.output_dir.is_dir() and "outputs go to Google Drive" in capsys.readouterr().out


def test_off_colab_download_defaults_to_false_and_output_dir_is_kept(tmp_path, monkeypatch):
    asked = {}

    def fake_load(root, download, progress):
        asked["download"] = download
        raise RuntimeError("stop")

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(notebook_setup, "load_cifar10", fake_load)
    with pytest.raises(RuntimeError):
        notebook_setup.start_notebook(output_dir=tmp_path / "out", device="cpu")
    assert asked["download"] is False
    setup = notebook_setup.start_notebook(output_dir=tmp_path / "out", device="cpu", load_data=False)
    assert setup.output_dir == tmp_path / "out" and setup.device == torch.device("cpu")
