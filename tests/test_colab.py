"""Colab: every notebook's badge and install cell come from pyproject.toml's [project.urls]; the install
keeps Colab's torch and Jupyter; on Colab, data is downloaded and outputs go to Google Drive when mounted.
No data needed."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import nbformat
import pytest
import torch

from cifarhelpers import colab, notebook_setup
from cifarhelpers.colab import (
    COLAB_EXTRA,
    NOTEBOOKS_DIR,
    badge_markdown,
    colab_output_dir,
    install_cell_source,
    repository_url,
    sync_notebooks,
)

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NOTEBOOK_PATHS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def test_the_repository_url_is_one_setting_in_pyproject():
    urls = PROJECT["urls"]
    assert urls["Repository"] == urls["Homepage"] == "https://github.com/cifarhelpers/cifarhelpers"
    assert repository_url() == urls["Repository"]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_each_committed_notebook_has_the_generated_badge_and_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    badge_lines = [line for line in nb.cells[0].source.splitlines() if "colab-badge.svg" in line]
    assert badge_lines == [badge_markdown(path.name)]
    assert f"{PROJECT['urls']['Repository'].removeprefix('https://github.com/')}/blob/main/notebooks/{path.name}" \
        in badge_lines[0]
    (cell,) = [c for c in nb.cells if "colab" in c.metadata.get("tags", [])]
    assert cell.source == install_cell_source()


def test_sync_finds_nothing_to_change_in_the_committed_notebooks():
    assert sync_notebooks(check=True) == []
    assert colab.main(["--check"]) == 0


def test_sync_rewrites_only_the_badge_and_the_install_cell(tmp_path):
    shutil.copy(NOTEBOOKS_DIR / "06_model_zoo.ipynb", tmp_path / "06_model_zoo.ipynb")
    path = tmp_path / "06_model_zoo.ipynb"
    nb = nbformat.read(path, as_version=4)
    before = [(c.source, c.get("outputs")) for c in nb.cells]
    nb.cells[0].source = nb.cells[0].source.replace("github/cifarhelpers/cifarhelpers", "github/someone/old")
    nb.cells[1].source = "# NBVAL_SKIP\n!pip install cifarhelpers"
    nbformat.write(nb, path)
    assert colab.main(["--check", "--notebooks-dir", str(tmp_path)]) == 1
    assert sync_notebooks(tmp_path) == ["06_model_zoo.ipynb"]
    after = [(c.source, c.get("outputs")) for c in nbformat.read(path, as_version=4).cells]
    assert after == before, "badge and install cell restored, every other cell and output untouched"


def test_the_install_cell_installs_the_colab_extra_from_the_repository_and_keeps_colabs_torch():
    source = install_cell_source()
    (spec,) = re.findall(r'"(cifarhelpers\[[^"]*)"', source)
    assert spec == f"cifarhelpers[{COLAB_EXTRA}] @ git+{PROJECT['urls']['Repository']}"
    assert source.startswith("# NBVAL_SKIP") and 'if "google.colab" in sys.modules:' in source
    installs = source.split("subprocess.run(", 1)[1]
    assert "torch" not in installs and "--upgrade" not in installs and "-U" not in installs.split(), \
        "nothing asks pip to replace Colab's torch"
    from packaging.requirements import Requirement

    torch_requirement = next(Requirement(d) for d in PROJECT["dependencies"] if Requirement(d).name == "torch")
    assert torch_requirement.specifier.contains("2.8.0+cu126"), "a Colab torch build meets the range: pip keeps it"
    extras = PROJECT["optional-dependencies"]
    colab_names = {Requirement(r).name for r in extras[COLAB_EXTRA]}
    assert colab_names == {"papermill"}, "no jupyter or ipykernel over Colab's own"
    assert {"jupyter", "ipykernel"} <= {Requirement(r).name for r in extras["notebooks"]}, "the local extra has them"


# -- where outputs go on Colab ------------------------------------------------------------------

@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    """A Colab runtime whose /content is ``tmp_path``; Drive is not mounted until the test mounts it."""
    monkeypatch.setattr(colab, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.setattr(colab, "DRIVE_FOLDER", tmp_path / "drive" / "MyDrive" / "cifarhelpers")
    monkeypatch.setattr(colab, "LOCAL_FOLDER", tmp_path / "cifarhelpers")
    monkeypatch.setattr(notebook_setup, "on_colab", lambda: True)
    return tmp_path


def test_on_colab_outputs_go_to_drive_when_mounted_else_the_vm_with_a_note(fake_colab):
    target, note = colab_output_dir("../runs/notebooks")
    assert target == fake_colab / "cifarhelpers" / "runs" / "notebooks"
    assert "deleted with this VM" in note and 'drive.mount("/content/drive")' in note
    (fake_colab / "drive" / "MyDrive").mkdir(parents=True)
    target, note = colab_output_dir("../runs/notebooks")
    assert target == fake_colab / "drive" / "MyDrive" / "cifarhelpers" / "runs" / "notebooks"
    assert "Google Drive" in note and "survive" in note
    assert colab_output_dir(fake_colab / "mine") == (fake_colab / "mine", None), "an absolute folder is kept"


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

    monkeypatch.setattr(notebook_setup, "on_colab", lambda: False)
    monkeypatch.setattr(notebook_setup, "load_cifar10", fake_load)
    with pytest.raises(RuntimeError):
        notebook_setup.start_notebook(output_dir=tmp_path / "out", device="cpu")
    assert asked["download"] is False
    setup = notebook_setup.start_notebook(output_dir=tmp_path / "out", device="cpu", load_data=False)
    assert setup.output_dir == tmp_path / "out" and setup.device == torch.device("cpu")
