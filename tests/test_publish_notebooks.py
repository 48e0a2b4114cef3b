"""tools/publish_notebooks.py: outputs of notebooks executed elsewhere move into the committed notebooks, and nothing else."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("publish_notebooks", ROOT / "tools" / "publish_notebooks.py")
pn = importlib.util.module_from_spec(_spec)
sys.modules["publish_notebooks"] = pn
_spec.loader.exec_module(pn)

PROVENANCE_CPU = ("*The outputs committed with this notebook come from a real run on a CPU (2 cores) with the "
                  "**short profile**; the first output line names the device, profile and data copy.*")
REPORT = {"environment": {"device": "NVIDIA H200", "git_commit": "8cd0fd5209cdf6879289b29e54e7ea79b37c5e4b"},
          "started_at": "2026-11-26T13:56:00+0000"}


def committed_notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell(f"# 04 · Training\n\nProse.\n\n{PROVENANCE_CPU}", id="c0"),
        v4.new_code_cell("profile = 'auto'", id="c1", metadata={"tags": ["parameters"]}),
        v4.new_code_cell("setup = start()", id="c2", execution_count=2,
                         outputs=[v4.new_output("stream", name="stdout", text="device: CPU | profile: short | data: x\n")]),
        v4.new_markdown_cell("## Training", id="c3"),
        v4.new_code_cell("fit()", id="c4", execution_count=3,
                         outputs=[v4.new_output("stream", name="stdout", text="old CPU output\n")]),
    ])
    return nb


def executed_notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    nb = committed_notebook()
    nb.cells.insert(2, v4.new_code_cell("# Parameters\nprofile = 'full'\n", id="injected", execution_count=2,
                                        metadata={"tags": ["injected-parameters"]}))
    nb.cells[3].outputs = [
        v4.new_output("stream", name="stderr", text="/x/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update"),
        v4.new_output("stream", name="stdout", text="device: NVIDIA H200 | profile: full | data: x\n")]
    nb.cells[3].execution_count = 3
    nb.cells[5].outputs = [
        v4.new_output("stream", name="stderr", text="\rfit:   0%|          | 0/24 [00:00<?, ?epoch/s]"),
        v4.new_output("stream", name="stderr", text="\x1b[A"),
        v4.new_output("stream", name="stderr", text="\n"),
        v4.new_output("stream", name="stdout", text="epoch 24/24 test acc 89.87%\n"),
        v4.new_output("stream", name="stderr", text="UserWarning: something worth reading\n"),
        v4.new_output("stream", name="stderr", text="\rfit: 100%|██████████| 24/24 [00:19<00:00,  1.2epoch/s]")]
    nb.cells[5].execution_count = 4
    nb.metadata["papermill"] = {"parameters": {"profile": "full"}}
    return nb


def write(tmp_path: Path, executed: nbformat.NotebookNode, as_tar: bool = False) -> tuple[Path, Path, Path]:
    committed_dir, run_dir = tmp_path / "notebooks", tmp_path / "run" / "notebooks"
    committed_dir.mkdir()
    run_dir.mkdir(parents=True)
    nbformat.write(committed_notebook(), committed_dir / "04_train.ipynb")
    nbformat.write(executed, run_dir / "04_train.ipynb")
    report = tmp_path / "results" / "gpu_report.json"
    report.parent.mkdir()
    report.write_text(json.dumps(REPORT))
    source = run_dir
    if as_tar:
        source = tmp_path / "notebooks.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(run_dir, arcname="notebooks")
    return source, report, committed_dir


@pytest.mark.parametrize("as_tar", [False, True], ids=["folder", "tar.gz"])
def test_outputs_move_into_the_committed_cells_without_progress_bars_or_the_injected_cell(tmp_path, as_tar):
    source, report, committed_dir = write(tmp_path, executed_notebook(), as_tar)
    assert pn.publish(source, report, committed_dir) == [committed_dir / "04_train.ipynb"]
    nb = nbformat.read(committed_dir / "04_train.ipynb", as_version=4)
    assert [c.id for c in nb.cells] == ["c0", "c1", "c2", "c3", "c4"], "the committed cells, no injected one"
    assert nb.cells[2].outputs == [nbformat.v4.new_output("stream", name="stdout",
                                                          text="device: NVIDIA H200 | profile: full | data: x\n")]
    assert [("".join(o.text)) for o in nb.cells[4].outputs] == ["epoch 24/24 test acc 89.87%\n",
                                                                "UserWarning: something worth reading\n"]
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [None, 3, 4]
    first = nb.cells[0].source
    assert first.startswith("# 04 · Training\n\nProse.\n\n") and PROVENANCE_CPU not in first
    assert "**NVIDIA H200** with the **full profile**" in first and "`8cd0fd5`" in first and "2026-11-26" in first
    assert nb.metadata["papermill"] == {"parameters": {"profile": "full"}}


def test_a_notebook_run_from_other_code_is_refused_and_nothing_is_written(tmp_path):
    executed = executed_notebook()
    executed.cells[5].source = "fit(epochs=3)"
    source, report, committed_dir = write(tmp_path, executed)
    before = (committed_dir / "04_train.ipynb").read_bytes()
    with pytest.raises(SystemExit, match="source of cell 4 .* differs.*run it again"):
        pn.publish(source, report, committed_dir)
    assert (committed_dir / "04_train.ipynb").read_bytes() == before


def test_an_executed_notebook_without_a_committed_one_or_a_report_without_a_commit_is_refused(tmp_path):
    source, report, committed_dir = write(tmp_path, executed_notebook())
    (committed_dir / "04_train.ipynb").rename(committed_dir / "04_other.ipynb")
    with pytest.raises(SystemExit, match="no committed counterpart"):
        pn.publish(source, report, committed_dir)
    (committed_dir / "04_other.ipynb").rename(committed_dir / "04_train.ipynb")
    report.write_text(json.dumps({"environment": {"device": "NVIDIA H200"}}))
    with pytest.raises(SystemExit, match="no git commit"):
        pn.publish(source, report, committed_dir, dry_run=True)


def test_an_error_in_the_run_a_dirty_commit_and_a_second_bad_notebook(tmp_path):
    """An executed cell that failed is refused; one bad notebook stops all (none written); -dirty is said."""
    failed = executed_notebook()
    failed.cells[5].outputs.append(nbformat.v4.new_output("error", ename="RuntimeError", evalue="boom", traceback=[]))
    source, report, committed_dir = write(tmp_path, failed)
    with pytest.raises(SystemExit, match="cell 4 ended with an error"):
        pn.publish(source, report, committed_dir)

    good_first = source / "03_first.ipynb"  # sorts before 04_train, which still fails
    nbformat.write(executed_notebook(), good_first)
    nbformat.write(committed_notebook(), committed_dir / "03_first.ipynb")
    before = (committed_dir / "03_first.ipynb").read_bytes()
    with pytest.raises(SystemExit, match="04_train.ipynb: cell 4 ended with an error"):
        pn.publish(source, report, committed_dir)
    assert (committed_dir / "03_first.ipynb").read_bytes() == before, "nothing written when one notebook fails"

    nbformat.write(executed_notebook(), source / "04_train.ipynb")
    report.write_text(json.dumps({**REPORT, "environment": {**REPORT["environment"],
                                                            "git_commit": "8cd0fd5209cd-dirty"}}))
    pn.publish(source, report, committed_dir)
    first = nbformat.read(committed_dir / "04_train.ipynb", as_version=4).cells[0].source
    assert "code at commit `8cd0fd5` with uncommitted changes" in first


def test_the_committed_notebooks_hold_no_text_progress_bars():
    """No carriage-return frames, cursor-up escapes or rate counters in any committed output (the tool's
    filter is not used here, so a bar it would miss still fails this test)."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", ""))
                assert "\r" not in text and "\x1b" not in text, f"{path.name}: {text[:80]!r}"
                assert not re.search(r"\d(it|batch|epoch)/s\b|\?(it|batch|epoch)/s", text), f"{path.name}: {text[:80]!r}"


@pytest.mark.parametrize("as_tar", [False, True], ids=["folder", "tar.gz"])
def test_two_executed_notebooks_of_one_name_are_refused(tmp_path, as_tar):
    source, report, committed_dir = write(tmp_path, executed_notebook())
    (source / "again").mkdir()
    nbformat.write(executed_notebook(), source / "again" / "04_train.ipynb")
    if as_tar:
        with tarfile.open(tmp_path / "notebooks.tar.gz", "w:gz") as tar:
            tar.add(source, arcname="notebooks")
        source = tmp_path / "notebooks.tar.gz"
    with pytest.raises(SystemExit, match="two notebooks named 04_train.ipynb"):
        pn.publish(source, report, committed_dir, dry_run=True)


def test_the_runs_temporary_folders_are_shown_as_an_ellipsis_and_a_first_line_of_another_commit_is_refused(tmp_path):
    executed = executed_notebook()
    executed.metadata["papermill"] = {
        "input_path": "/work/x/dist/bundle-gpu-node/notebooks/04_train.ipynb",
        "parameters": {"output_dir": "/tmp/gpu-report-work-ab/notebooks/20261126-1-notebooks",
                       "data_root": "/tmp/cifarhelpers-bundle.Xy/data/cifar10-jpeg"}}
    executed.cells[3].outputs[1]["text"] = ("device: NVIDIA H200 | profile: full | data: x | output: /tmp/gpu-report-"
                                           "work-ab/notebooks/20261126-1-notebooks | code: cifarhelpers 0.1.0, git "
                                           "8cd0fd5209cd\n")
    source, report, committed_dir = write(tmp_path, executed)
    pn.publish(source, report, committed_dir)
    nb = nbformat.read(committed_dir / "04_train.ipynb", as_version=4)
    assert "output: …/20261126-1-notebooks | code:" in "".join(nb.cells[2].outputs[0].text)
    assert nb.metadata["papermill"] == {"input_path": "…/notebooks/04_train.ipynb", "parameters": {
        "output_dir": "…/20261126-1-notebooks", "data_root": "…/cifar10-jpeg"}}
    assert "data copy and commit;" in nb.cells[0].source and "bundle" not in nb.cells[0].source
    executed.cells[3].outputs[1]["text"] = executed.cells[3].outputs[1]["text"].replace("8cd0fd5209cd", "75fa3463628b")
    nbformat.write(executed, source / "04_train.ipynb")
    with pytest.raises(SystemExit, match="ran code at commit 75fa3463628b .* the report names 8cd0fd5209cd"):
        pn.publish(source, report, committed_dir, dry_run=True)
