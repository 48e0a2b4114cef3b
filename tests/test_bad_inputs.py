"""Bad input, tried: data, config and CLI flags, checkpoints, disk, notebook parameters, LR range test.

Every case feeds one bad input and asserts (1) the error type (or the CLI's exit status), (2) a
message that names the problem and the fix, and (3) that nothing earlier was lost or overwritten:
the output folder holding an interrupted run (checkpoint of epoch 1 of 2) and a finished run is
unchanged byte for byte, with no new run folder and no temp file in it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from _reliability import make_small_copy, snapshot

from cifarhelpers import files as files_module
from cifarhelpers.cli.train import main
from cifarhelpers.errors import CheckpointError, ConfigError, DataError, DataNotFoundError, RunWriteError
from cifarhelpers.files import write_json
from cifarhelpers.models import build_model
from cifarhelpers.notebook import parse_value, run_notebooks, start_notebook
from cifarhelpers.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    TrainConfig,
    fit,
    load_checkpoint,
    load_weights,
    lr_range_test,
    resume_config,
    run_lr_range_test,
)
from cifarhelpers.training import train as train_module

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_thread")]

TINY = dict(model="dilated_net", device="cpu", train_subset=64, test_subset=50, batch_size=32, epochs=2,
            max_lr=0.005, seed=3)


# -- what must survive every bad input ----------------------------------------------------------

@pytest.fixture(scope="module")
def earlier(small_root, small_data, tmp_path_factory):
    """An output folder with an interrupted run (epoch 1 of 2 checkpointed, then Ctrl-C) and a
    finished one, plus inputs built once: a second real copy (other images), a copy with a
    corrupt image, and a notebook folder."""
    base = tmp_path_factory.mktemp("bad-inputs")
    out = base / "runs"
    real_train = train_module.train_one_epoch

    def train_one_epoch(*args, epoch, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C during epoch 2
        return real_train(*args, epoch=epoch, **kwargs)

    cfg = TrainConfig(**TINY, data_root=str(small_root), output_dir=str(out))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "train_one_epoch", train_one_epoch)
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, data=small_data, progress=False)
    (interrupted,) = out.iterdir()
    finished = fit(cfg.replace(epochs=1), data=small_data, progress=False).run_dir
    assert load_checkpoint(interrupted)["epoch"] == 1
    metrics = json.loads((interrupted / METRICS_FILE).read_text())
    assert metrics["status"] == "interrupted" and metrics["stopped_epoch"] == 2 and len(metrics["history"]) == 1

    other_root = make_small_copy(Path(os.environ["CIFAR10_ROOT"]), base / "other-copy", 20, 10, offset=20)
    broken_root = make_small_copy(Path(os.environ["CIFAR10_ROOT"]), base / "broken-copy", 20, 10)
    (broken_root / "train" / "cat" / "0000.jpg").write_bytes(b"\xff\xd8 not really a jpeg")

    notebooks = base / "notebooks"
    notebooks.mkdir()
    _write_notebook(notebooks / "only.ipynb")
    return SimpleNamespace(out=out, interrupted=interrupted, finished=finished, cfg=cfg, root=small_root,
                           data=small_data, other_root=other_root, broken_root=broken_root, notebooks=notebooks)


def _write_notebook(path: Path) -> None:
    """A notebook with a papermill parameters cell, whose body must never run in these tests."""
    import nbformat

    params = nbformat.v4.new_code_cell('profile = "auto"\nepochs = None\nmax_lr = None\nstart_lr = 1e-6\n'
                                       'end_lr = 10.0\ndevice = "auto"\noutput_dir = "runs"')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell('raise SystemExit("a refused run must not execute any notebook")')
    notebook = nbformat.v4.new_notebook(cells=[params, body])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(path))


@pytest.fixture
def ctx(earlier, tmp_path):
    """``earlier`` plus a scratch folder for this case's bad files (outside the guarded folder)."""
    return SimpleNamespace(**vars(earlier), scratch=tmp_path)


class CliFailed(Exception):
    """The CLI exited with a non-zero status; ``str()`` is its stderr."""

    def __init__(self, status: int, stderr: str):
        super().__init__(stderr)
        self.status = status


def cli(argv: list[str], status: int) -> None:
    """Run ``cifar-train`` in-process; it must fail with ``status``, raising CliFailed(stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code
    assert code == status, f"exit status {code}, expected {status}: {err.getvalue()}"
    raise CliFailed(code, err.getvalue())


def _copy_run(ctx, run_dir: Path) -> Path:
    dest = ctx.scratch / run_dir.name
    shutil.copytree(run_dir, dest)
    return dest


# -- the cases --------------------------------------------------------------------------------------

def data_root_missing(ctx):
    fit(ctx.cfg.replace(data_root=str(ctx.scratch / "nowhere")), progress=False)


def data_image_corrupt(ctx):
    fit(ctx.cfg.replace(data_root=str(ctx.broken_root)), progress=False)


def train_subset_larger_than_data(ctx):
    fit(ctx.cfg.replace(train_subset=500), data=ctx.data, progress=False)


def eval_subset_larger_than_data(ctx):
    fit(ctx.cfg.replace(test_subset=150), data=ctx.data, progress=False)


def subset_smaller_than_a_batch(ctx):
    fit(ctx.cfg.replace(train_subset=20), data=ctx.data, progress=False)


def papermill_float_for_an_integer(ctx):
    ctx.cfg.replace(batch_size=parse_value("64.0"))  # papermill -p batch_size 64.0


def papermill_text_for_a_number(ctx):
    ctx.cfg.replace(max_lr=parse_value("0,01"))  # papermill -p max_lr 0,01 (a decimal comma)


def cli_unknown_model(ctx):
    cli(["--data-root", str(ctx.root), "--output-dir", str(ctx.out), "--model", "vgg16"], status=2)


def cli_unknown_recipe(ctx):
    cli(["--data-root", str(ctx.root), "--output-dir", str(ctx.out), "--recipe", "adamw"], status=2)


def cli_word_for_a_number(ctx):
    cli(["--output-dir", str(ctx.out), "--epochs", "three"], status=2)


def cli_negative_max_lr(ctx):
    cli(["--data-root", str(ctx.root), "--output-dir", str(ctx.out), "--max-lr", "-1"], status=2)


def cli_word_after_a_boolean_flag(ctx):
    # booleans are --amp / --no-amp; the old "--amp false" still works (deprecated), another word does not
    cli(["--data-root", str(ctx.root), "--output-dir", str(ctx.out), "--amp", "maybe"], status=2)


def cli_train_subset_beyond_cifar10(ctx):
    # refused before any data is read: the data root does not even exist
    cli(["--data-root", str(ctx.scratch / "nowhere"), "--output-dir", str(ctx.out), "--train-subset", "60000"],
        status=2)


def unknown_device(ctx):
    ctx.cfg.replace(device="tpu")


def output_dir_is_a_file(ctx):
    target = ctx.scratch / "runs.txt"
    target.write_text("not a folder")
    fit(ctx.cfg.replace(output_dir=str(target)), data=ctx.data, progress=False)


def output_dir_not_writable(ctx, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files_module.tempfile, "NamedTemporaryFile", refuse)  # as a read-only folder would
    fit(ctx.cfg, data=ctx.data, progress=False)


def disk_full_creating_the_run_folder(ctx, monkeypatch):
    real_mkdir = Path.mkdir

    def mkdir(self, *args, exist_ok=False, **kwargs):
        if not exist_ok:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkdir(self, *args, exist_ok=exist_ok, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    fit(ctx.cfg, data=ctx.data, progress=False)


def disk_full_rewriting_metrics(ctx, monkeypatch):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == METRICS_FILE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    write_json(ctx.interrupted / METRICS_FILE, {"status": "overwritten"})


def resume_unknown_field(ctx):
    resume_config(ctx.interrupted, max_lrr=0.1)


def resume_missing_folder(ctx):
    fit(ctx.cfg.replace(resume=str(ctx.scratch / "gone")), data=ctx.data, progress=False)


def resume_folder_without_checkpoint(ctx):
    run = ctx.scratch / "diverged"  # what a run that diverged in epoch 1 leaves
    run.mkdir()
    write_json(run / METRICS_FILE, {"status": "diverged", "history": []})
    fit(ctx.cfg.replace(resume=str(run)), data=ctx.data, progress=False)


def resume_truncated_checkpoint(ctx):
    run = _copy_run(ctx, ctx.interrupted)
    full = (run / CHECKPOINT_FILE).read_bytes()
    (run / CHECKPOINT_FILE).write_bytes(full[: len(full) // 2])
    fit(ctx.cfg.replace(resume=str(run)), data=ctx.data, progress=False)


def resume_empty_checkpoint(ctx):
    run = _copy_run(ctx, ctx.interrupted)
    (run / CHECKPOINT_FILE).write_bytes(b"")
    fit(ctx.cfg.replace(resume=str(run)), data=ctx.data, progress=False)


def resume_text_file_as_checkpoint(ctx):
    run = _copy_run(ctx, ctx.interrupted)
    shutil.copy(run / METRICS_FILE, run / CHECKPOINT_FILE)
    fit(ctx.cfg.replace(resume=str(run)), data=ctx.data, progress=False)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def resume_checkpoint_that_runs_code(ctx):
    run = _copy_run(ctx, ctx.interrupted)
    torch.save({"format": "cifarhelpers-checkpoint-v1", "epoch": 1, "model": _Payload(ctx.scratch / "PWNED")},
               run / CHECKPOINT_FILE)
    try:
        fit(ctx.cfg.replace(resume=str(run)), data=ctx.data, progress=False)
    finally:
        assert not (ctx.scratch / "PWNED").exists(), "code from the checkpoint ran"


def resume_plain_state_dict(ctx):
    run = _copy_run(ctx, ctx.interrupted)
    torch.save(build_model("dilated_net").state_dict(), run / CHECKPOINT_FILE)
    fit(ctx.cfg.replace(resume=str(run)), data=ctx.data, progress=False)


def resume_with_another_batch_size(ctx):
    fit(resume_config(ctx.interrupted, batch_size=64), data=ctx.data, progress=False)


def resume_on_another_data_copy(ctx):
    fit(resume_config(ctx.interrupted, data_root=str(ctx.other_root)), progress=False)


def resume_a_finished_run(ctx):
    fit(resume_config(ctx.finished), data=ctx.data, progress=False)


def cli_resume_with_another_max_lr(ctx):
    cli(["--resume", str(ctx.interrupted), "--max-lr", "0.1", "--quiet"], status=1)


def weights_of_another_model(ctx):
    load_weights(build_model("custom_resnet"), ctx.finished)


def weights_file_without_a_state_dict(ctx):
    torch.save([1.0, 2.0, 3.0], ctx.scratch / "model.pt")
    load_weights(build_model("dilated_net"), ctx.scratch / "model.pt")


def notebook_unknown_parameter(ctx):
    run_notebooks({"epoch": 3}, output_dir=ctx.out, notebooks_dir=ctx.notebooks, notebooks=("only.ipynb",),
                  progress=False)


def notebook_float_for_epochs(ctx):
    run_notebooks({"epochs": parse_value("2.5")}, output_dir=ctx.out, notebooks_dir=ctx.notebooks,
                  notebooks=("only.ipynb",), progress=False)


def notebook_unknown_profile(ctx):
    run_notebooks({"profile": "fast"}, output_dir=ctx.out, notebooks_dir=ctx.notebooks, notebooks=("only.ipynb",),
                  progress=False)


def notebook_lr_range_upside_down(ctx):
    run_notebooks({"start_lr": 1.0, "end_lr": 0.1}, output_dir=ctx.out, notebooks_dir=ctx.notebooks,
                  notebooks=("only.ipynb",), progress=False)


def notebook_start_unknown_device(ctx):
    start_notebook(data_root=str(ctx.root), device="gpu", profile="short", output_dir=str(ctx.out / "nb01"))


def lr_test_range_upside_down(ctx):
    run_lr_range_test(ctx.cfg.replace(data_root=str(ctx.scratch / "nowhere")), start_lr=1.0, end_lr=0.1,
                      progress=False)


def lr_test_too_few_iterations(ctx):
    model = build_model("dilated_net")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        lr_range_test(model, [], device="cpu", num_iter=5)
    finally:
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@dataclass
class Case:
    action: Callable
    error: type[BaseException]
    patterns: tuple[str, ...]  # regexes the message must contain: the problem, then the fix


CASES = {
    # data
    "data_root_missing": Case(data_root_missing, DataNotFoundError,
                              (r"CIFAR-10 root .*nowhere .* does not exist", r"Pass root=\.\.\., set CIFAR10_ROOT")),
    "data_image_corrupt": Case(data_image_corrupt, DataError,
                               (r"cannot decode image .*train/cat/0000\.jpg",
                                r"Replace it with a valid 32x32 RGB image")),
    "train_subset_larger_than_data": Case(train_subset_larger_than_data, ConfigError,
                                          (r"train_subset=500 is out of range", r"integer from 1 to 200")),
    "test_subset_larger_than_data": Case(eval_subset_larger_than_data, ConfigError,
                                         (r"test_subset=150 is out of range", r"integer from 1 to 100")),
    "subset_smaller_than_a_batch": Case(subset_smaller_than_a_batch, ConfigError,
                                        (r"gives 20 training images, fewer than batch_size=32",
                                         r"Use a larger train_subset or a smaller batch_size")),
    # config, papermill -p values and CLI flags
    "papermill_float_for_an_integer": Case(papermill_float_for_an_integer, ConfigError,
                                           (r"batch_size=64\.0 \(float\) is invalid", r"must be an integer >= 1")),
    "papermill_text_for_a_number": Case(papermill_text_for_a_number, ConfigError,
                                        (r"max_lr='0,01' \(str\) is invalid", r"must be a finite number > 0\.0")),
    "cli_unknown_model": Case(cli_unknown_model, CliFailed,
                              (r"model='vgg16' \(str\) is invalid",
                               r"choose one of \['custom_resnet', 'resnet18', 'dilated_net'\]")),
    "cli_unknown_recipe": Case(cli_unknown_recipe, CliFailed,
                               (r"recipe='adamw' \(str\) is invalid", r"choose one of \['onecycle_adam'")),
    "cli_word_for_a_number": Case(cli_word_for_a_number, CliFailed,
                                  (r"argument --epochs", r"expected an integer, got 'three'")),
    "cli_negative_max_lr": Case(cli_negative_max_lr, CliFailed,
                                (r"max_lr=-1\.0 \(float\) is invalid", r"finite number > 0\.0 or None")),
    "cli_word_after_a_boolean_flag": Case(cli_word_after_a_boolean_flag, CliFailed,
                                          (r"argument --amp: takes no value, got 'maybe'",
                                           r"write --amp or --no-amp")),
    "cli_train_subset_beyond_cifar10": Case(cli_train_subset_beyond_cifar10, CliFailed,
                                            (r"train_subset=60000 is out of range: it must be an integer from 1 to "
                                             r"50,000 \(CIFAR-10 has 50,000 training images\)",
                                             r"use None for all of them")),
    "unknown_device": Case(unknown_device, ConfigError,
                           (r"device='tpu' is not a known device", r"use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")),
    "output_dir_is_a_file": Case(output_dir_is_a_file, ConfigError,
                                 (r"output_dir=.*runs\.txt' is a file, not a folder", r"choose a folder path")),
    "output_dir_not_writable": Case(output_dir_not_writable, ConfigError,
                                    (r"output_dir=.* is not writable \(Permission denied\)",
                                     r"choose a folder you can write to")),
    # disk
    "disk_full_creating_the_run_folder": Case(disk_full_creating_the_run_folder, RunWriteError,
                                              (r"could not create the run folder .*: No space left on device",
                                               r"Free some disk space or choose another output_dir")),
    "disk_full_rewriting_metrics": Case(disk_full_rewriting_metrics, RunWriteError,
                                        (r"could not write .*metrics\.json: No space left on device\. "
                                         r"The earlier version of the file is intact", r"Free some disk space")),
    # checkpoints and resuming
    "resume_unknown_field": Case(resume_unknown_field, ConfigError,
                                 (r"unknown config field\(s\) \['max_lrr'\]", r"valid fields are \[.*'max_lr'")),
    "resume_missing_folder": Case(resume_missing_folder, CheckpointError,
                                  (r"checkpoint '.*gone' does not exist", r"check the path")),
    "resume_folder_without_checkpoint": Case(resume_folder_without_checkpoint, CheckpointError,
                                             (r"run folder '.*diverged' has no checkpoint\.pt: no epoch finished",
                                              r"nothing to resume\. Start a new run")),
    "resume_truncated_checkpoint": Case(resume_truncated_checkpoint, CheckpointError,
                                        (r"cannot be read \(RuntimeError: .*\): it is truncated",
                                         r"Use an earlier checkpoint or train again")),
    "resume_empty_checkpoint": Case(resume_empty_checkpoint, CheckpointError,
                                    (r"cannot be read \(EOFError: the file ended early\)",
                                     r"Use an earlier checkpoint")),
    "resume_text_file_as_checkpoint": Case(resume_text_file_as_checkpoint, CheckpointError,
                                           (r"is not a torch file", r"check the path")),
    "resume_checkpoint_that_runs_code": Case(resume_checkpoint_that_runs_code, CheckpointError,
                                             (r"refused to load checkpoint .*could run arbitrary code",
                                              r"save model\.state_dict\(\) with torch\.save")),
    "resume_plain_state_dict": Case(resume_plain_state_dict, CheckpointError,
                                    (r"is not a cifarhelpers checkpoint",
                                     r"resume from a run folder written by cifar-train, or load plain weights")),
    "resume_with_another_batch_size": Case(resume_with_another_batch_size, CheckpointError,
                                           (r"cannot resume: 1 config field\(s\) differ .*batch_size: checkpoint 32, "
                                            r"now 64", r"Resume with the original settings")),
    "resume_on_another_data_copy": Case(resume_on_another_data_copy, CheckpointError,
                                        (r"cannot resume: the data differs from the checkpoint's",
                                         r"Point data_root at the copy the run started with")),
    "resume_a_finished_run": Case(resume_a_finished_run, ConfigError,
                                  (r"already finished its 1 epochs, so there is nothing to resume",
                                   r"start a new run")),
    "cli_resume_with_another_max_lr": Case(cli_resume_with_another_max_lr, CliFailed,
                                           (r"max_lr: checkpoint 0\.005, now 0\.1",
                                            r"cifar-train --resume FOLDER alone reuses them")),
    "weights_of_another_model": Case(weights_of_another_model, CheckpointError,
                                     (r"are from model 'dilated_net', not 'custom_resnet'",
                                      r"build_model\('dilated_net'\)")),
    "weights_file_without_a_state_dict": Case(weights_file_without_a_state_dict, CheckpointError,
                                              (r"does not hold a state_dict .* but list",
                                               r"save model\.state_dict\(\)")),
    # notebook parameters
    "notebook_unknown_parameter": Case(notebook_unknown_parameter, ConfigError,
                                       (r"unknown notebook parameter\(s\) \['epoch'\]",
                                        r"the notebooks take \[.*'epochs'")),
    "notebook_float_for_epochs": Case(notebook_float_for_epochs, ConfigError,
                                      (r"epochs=2\.5 \(float\) is invalid", r"must be an integer >= 1")),
    "notebook_unknown_profile": Case(notebook_unknown_profile, ConfigError,
                                     (r"profile='fast' \(str\) is invalid", r"choose one of \['auto', 'short', 'full'\]")),
    "notebook_lr_range_upside_down": Case(notebook_lr_range_upside_down, ConfigError,
                                          (r"start_lr=1\.0 must be below end_lr=0\.1", r"sweeps upwards")),
    "notebook_start_unknown_device": Case(notebook_start_unknown_device, ConfigError,
                                          (r"device='gpu' is not a known device", r"use 'auto', 'cpu'")),
    # LR range test
    "lr_test_range_upside_down": Case(lr_test_range_upside_down, ConfigError,
                                      (r"needs finite numbers 0 < start_lr < end_lr, got start_lr=1\.0, end_lr=0\.1",
                                       r"e\.g\. start_lr=1e-6, end_lr=10")),
    "lr_test_too_few_iterations": Case(lr_test_too_few_iterations, ConfigError,
                                       (r"num_iter=5 is too small", r">= skip_start \+ skip_end \+ 2 = 17")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_clearly_and_loses_nothing(name, ctx, monkeypatch):
    case = CASES[name]
    before = snapshot(ctx.out)
    checkpoint_before = (ctx.interrupted / CHECKPOINT_FILE).read_bytes()
    takes_monkeypatch = "monkeypatch" in case.action.__code__.co_varnames[: case.action.__code__.co_argcount]
    with pytest.raises(case.error) as info:
        case.action(ctx, monkeypatch) if takes_monkeypatch else case.action(ctx)
    monkeypatch.undo()
    message = str(info.value)
    for pattern in case.patterns:
        assert re.search(pattern, message, re.DOTALL), f"{pattern!r} not in: {message}"
    assert snapshot(ctx.out) == before, "something earlier was changed, or a run folder was made"
    assert not list(ctx.out.rglob(".*.tmp")), "a temp file was left"
    assert (ctx.interrupted / CHECKPOINT_FILE).read_bytes() == checkpoint_before
    # and the interrupted run is still resumable as it was: its checkpoint loads and fits its config
    assert load_checkpoint(ctx.interrupted)["epoch"] == 1
