"""Notebook 05 opened alone: without notebook 04's trained model it says which notebook to run first."""

from __future__ import annotations

import json

import pytest

from cifarhelpers.errors import CheckpointError, ConfigError
from cifarhelpers.handoffs import TRAIN_JSON, load_train_run


def test_without_notebook_04s_file_notebook_05_says_to_run_notebook_04_first(tmp_path):
    with pytest.raises(ConfigError, match=r"no trained model yet: .*train_run.json \(written by notebook 04\) does not "
                                          r"exist\. Run notebook 04 first with the same output_dir"):
        load_train_run(tmp_path, "cpu")
    with pytest.raises(ConfigError, match="Run notebook 04 first"):
        load_train_run(tmp_path, "cpu", tmp_path / "elsewhere" / TRAIN_JSON)


def test_an_unfinished_notebook_04_run_is_named_with_how_to_finish_it(tmp_path):
    run = tmp_path / "20261125-081621-custom_resnet"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"config": {"model": "custom_resnet"}, "status": "interrupted"}))
    (tmp_path / TRAIN_JSON).write_text(json.dumps({"run_dir": str(run)}))
    with pytest.raises(CheckpointError, match=r"has no model\.pt: its training did not finish\. Run notebook 04 to the "
                                              r"end \(or continue it there with resume="):
        load_train_run(tmp_path, "cpu")
    with pytest.raises(CheckpointError, match="Run notebook 04 to the end"):
        load_train_run(tmp_path, "cpu", run)


# -- paths in the notebooks' outputs ----------------------------------------------------------

def test_display_path_is_relative_beside_the_notebook_and_absolute_only_elsewhere(tmp_path, monkeypatch):
    from cifarhelpers.files import display_path

    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(repo / "notebooks")
    assert display_path(repo / "runs" / "notebooks") == "../runs/notebooks"
    assert display_path(repo / "notebooks" / "x.json") == "x.json"
    assert display_path("../runs/notebooks/analysis.json") == "../runs/notebooks/analysis.json"
    assert display_path(repo / "runs" / "r1", start=repo / "runs") == "r1"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert display_path(tmp_path / "home" / "data") == "~/data"
    assert display_path("/opt/elsewhere/data") == "/opt/elsewhere/data"


def test_the_setup_line_names_the_data_copy_and_output_folder_without_the_machines_layout(tmp_path, monkeypatch):
    import torch

    from cifarhelpers.config import PROFILES
    from cifarhelpers.data import CIFAR10Data, DataSource
    from cifarhelpers.notebook_setup import NotebookSetup

    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    data = CIFAR10Data(None, None, None, None, (), DataSource("image-folder", "/machine/specific/cifar10-jpeg", "ab" * 32))
    line = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path / "runs" / "nb",
                         data=data).describe()
    assert "data: image-folder copy 'cifar10-jpeg' (sha256 abababababab...)" in line
    assert "| output: ../runs/nb |" in line and "/machine" not in line and str(tmp_path) not in line
    assert line.split(" | ")[-1].startswith("code: cifarhelpers ")
