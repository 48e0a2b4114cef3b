"""The files the notebooks hand to each other: a notebook opened without an earlier one's file names the
notebook and cell that write it (on Colab without Drive, why it is missing), notebook 05 can train its own
model instead, and the paths in the notebooks' outputs. (The chain through a stand-in Google Drive, each
notebook in its own Colab VM: tests/test_notebooks.py.)"""

from __future__ import annotations

import json
import sys
import types
from types import MappingProxyType, SimpleNamespace

import nbformat
import pytest
import torch

from cifarhelpers.errors import CheckpointError, ConfigError
from cifarhelpers.notebook import (
    NOTEBOOKS_DIR,
    PRODUCERS,
    TRAIN_JSON,
    NotebookSetup,
    analysis_model,
    colab,
    load_train_run,
    lr_range_test_note,
    save_train_run,
    training_config,
    written_by,
)
from cifarhelpers.training import PROFILES, Profile


@pytest.fixture
def colab_without_drive(tmp_path, monkeypatch):
    """A Colab VM (its /content in tmp_path) on which Google Drive is not mounted."""
    monkeypatch.setattr(colab, "COLAB_CONTENT", tmp_path / "content")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))


@pytest.mark.parametrize("name", sorted(PRODUCERS))
def test_each_producer_named_in_messages_is_the_notebook_section_and_cell_that_write_the_file(name):
    producer = PRODUCERS[name]
    cells = nbformat.read(NOTEBOOKS_DIR / producer.notebook, as_version=4).cells
    (start,) = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and f"## {producer.section}\n" in
                c.source + "\n"]
    end = next((i for i in range(start + 1, len(cells)) if cells[i].cell_type == "markdown" and "\n## " in
                "\n" + cells[i].source), len(cells))
    assert any(f"{producer.call}(" in c.source for c in cells[start:end] if c.cell_type == "code"), \
        f"no cell calling {producer.call} under '## {producer.section}' in {producer.notebook}"
    assert written_by(name) == (f'the {producer.call} cell under "{producer.section}" in notebook '
                                f"{producer.notebook[:2]} ({producer.notebook})")


def test_without_notebook_04s_file_notebook_05_says_which_notebook_and_cell_write_it(tmp_path):
    with pytest.raises(ConfigError, match=r"no trained model yet: .*train_run.json does not exist\. Run notebook 04 "
                                          r"first with the same output_dir \(the save_train_run cell under \"Result\" "
                                          r"in notebook 04 \(04_train_onecycle.ipynb\) writes it.*"
                                          r"train_if_missing = True") as info:
        load_train_run(tmp_path, "cpu")
    assert "Colab" not in str(info.value), "off Colab, nothing about Colab"
    with pytest.raises(ConfigError, match="Run notebook 04 first"):
        load_train_run(tmp_path, "cpu", tmp_path / "elsewhere" / TRAIN_JSON)


def test_on_colab_without_drive_the_message_says_the_notebooks_do_not_share_their_folder(tmp_path, colab_without_drive):
    with pytest.raises(ConfigError, match=r"On Colab each notebook runs in its own VM, and without Google Drive they "
                                          r"do not share their output folder: run the first code cell"):
        load_train_run(tmp_path, "cpu")
    assert 'the save_lr_range_test cell under "LRMAX and LRMIN" in notebook 03' in lr_range_test_note(None)
    assert "without Google Drive" in lr_range_test_note(None)
    setup = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path, data=None)
    with pytest.warns(UserWarning, match=r"Run notebook 03 first with the same output_dir \(the save_lr_range_test "
                                         r"cell under \"LRMAX and LRMIN\" in notebook 03 \(03_lr_range_test.ipynb\) "
                                         r"writes lr_range_test.json\).*own VM"):
        training_config(setup)
    (tmp_path / "content" / "drive" / "MyDrive").mkdir(parents=True)
    assert "Google Drive" not in lr_range_test_note(None), "with Drive mounted the file is simply not written yet"


def test_train_run_json_points_at_the_run_folder_relative_to_the_output_folder(tmp_path):
    run = tmp_path / "out" / "20261125-081621-custom_resnet"
    run.mkdir(parents=True)
    result = SimpleNamespace(run_dir=run, final_test_accuracy=0.5, history=[{}],
                             metrics={"config": {"model": "custom_resnet"}, "data": {"test_images": 10,
                                      "train_images": 20}, "device": "cpu"})
    content = json.loads(save_train_run(tmp_path / "out", result).read_text())
    assert content["run_dir"] == run.name, "relative: the folder can move (Drive mounted elsewhere)"
    moved = tmp_path / "moved"
    (tmp_path / "out").rename(moved)
    with pytest.raises(CheckpointError, match=str(moved / run.name)):  # found where it now is, unfinished
        load_train_run(moved, "cpu")
    elsewhere = SimpleNamespace(**{**vars(result), "run_dir": tmp_path / "runs" / "r1"})
    assert json.loads(save_train_run(moved, elsewhere).read_text())["run_dir"] == str(tmp_path / "runs" / "r1")


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

    from cifarhelpers.data import CIFAR10Data, DataSource
    from cifarhelpers.notebook import NotebookSetup
    from cifarhelpers.training import PROFILES

    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    data = CIFAR10Data(None, None, None, None, (), DataSource("image-folder", "/machine/specific/cifar10-jpeg", "ab" * 32))
    line = NotebookSetup(device=torch.device("cpu"), profile=PROFILES["short"], output_dir=tmp_path / "runs" / "nb",
                         data=data).describe()
    assert "data: image-folder copy 'cifar10-jpeg' (sha256 abababababab...)" in line
    assert "| output: ../runs/nb |" in line and "/machine" not in line and str(tmp_path) not in line
    assert line.split(" | ")[-1].startswith("code: cifarhelpers ")


# -- notebook 05 on its own: train_if_missing ---------------------------------------------------

@pytest.mark.data
def test_notebook_05_without_notebook_04s_model_stops_or_trains_one_with_the_device_loader(small_data, tmp_path,
                                                                                          capsys, one_thread):
    tiny = Profile("tiny", "a test's", MappingProxyType({"epochs": 1, "train_subset": 20, "test_subset": 20,
                                                         "batch_size": 10}), MappingProxyType({}))
    setup = NotebookSetup(device=torch.device("cpu"), profile=tiny, output_dir=tmp_path, data=small_data)
    with pytest.raises(ConfigError, match="train_if_missing = True"):
        analysis_model(setup)
    model, metrics, run_dir = analysis_model(setup, train_if_missing=True)
    assert "no model from notebook 04" in capsys.readouterr().out
    assert run_dir.parent == tmp_path and metrics["status"] == "completed" and not model.training
    assert metrics["config"]["loader"] == "device" and metrics["config"]["model"] == "custom_resnet"
    assert (metrics["data"]["train_images"], len(metrics["history"])) == (20, 1), "the profile's job"
    assert not (tmp_path / TRAIN_JSON).exists(), "notebook 04's file is notebook 04's to write"
    with pytest.raises(ConfigError, match="does not exist"):
        analysis_model(setup, train_path=str(tmp_path / "no-such" / TRAIN_JSON), train_if_missing=True)
