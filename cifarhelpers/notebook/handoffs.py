"""The files the notebooks write into their shared output folder: a save/load pair for each file a later
notebook reads (01 -> 02, 03 -> 04 and 07, 04 -> 05) and a save for the sweep's summary; 05 and 06 write
their summaries for you with :func:`cifarhelpers.files.write_json`.

=========================  =======  =======  ====================================================
file                       written  read by  content
=========================  =======  =======  ====================================================
``dataset_statistics.json``  01     02       per-channel mean/std/var/min/max of both splits ([0, 1]
                                             scale), class counts, the data source
``lr_range_test.json``       03     04, 07   the LR range test's curve and settings, LRMAX (the
                                             suggestion) and LRMIN = LRMAX / 10
``train_run.json``           04     05       the run folder holding ``model.pt`` and ``metrics.json``
``analysis.json``            05     (you)    accuracy, confusion matrices, most confused pairs,
                                             per-class metrics, GradCAM layer and its measurement
``model_zoo.json``           06     (you)    parameters and receptive field of every model
``lr_sweep.json``            07     (you)    the LR sweep's folder, table and best LRMAX, beside
                                             notebook 03's suggestion
=========================  =======  =======  ====================================================

Every ``load_*`` takes the output folder and, optionally, the file itself (a notebook parameter such
as ``lr_path``), and raises ConfigError naming the notebook and the cell that write a missing or malformed
file (:data:`PRODUCERS`, :func:`written_by`). On Colab each notebook runs in its own VM: they share the
output folder only on Google Drive (:mod:`cifarhelpers.notebook.colab`), and without it the message says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import torch

from cifarhelpers.data import ChannelStats, CIFAR10Data, class_counts
from cifarhelpers.errors import ConfigError
from cifarhelpers.files import display_path, read_json, write_json
from cifarhelpers.sweep import UNITS, best_row
from cifarhelpers.training import LR_JSON, LRRangeTestResult, load_run_model, train_statistics

from .colab import drive_mounted, on_colab

STATS_JSON = "dataset_statistics.json"
TRAIN_JSON = "train_run.json"
ANALYSIS_JSON = "analysis.json"
ZOO_JSON = "model_zoo.json"
SWEEP_JSON = "lr_sweep.json"


class Producer(NamedTuple):
    """Where a file another notebook reads is written: the notebook, the heading of its section (a
    markdown ``## <section>`` line) and the function its code cell there calls to write the file."""

    notebook: str
    section: str
    call: str


#: The files a later notebook reads, by the notebook and cell that write them (a test checks the notebooks).
PRODUCERS = {
    STATS_JSON: Producer("01_dataset_statistics.ipynb", "Per-channel statistics", "save_statistics"),
    LR_JSON: Producer("03_lr_range_test.ipynb", "LRMAX and LRMIN", "save_lr_range_test"),
    TRAIN_JSON: Producer("04_train_onecycle.ipynb", "Result", "save_train_run"),
}


def written_by(name: str) -> str:
    """Which notebook and cell write ``name`` (a key of :data:`PRODUCERS`), for messages, e.g.
    ``the save_lr_range_test cell under "LRMAX and LRMIN" in notebook 03 (03_lr_range_test.ipynb)``."""
    p = PRODUCERS[name]
    return f'the {p.call} cell under "{p.section}" in notebook {p.notebook[:2]} ({p.notebook})'


def colab_hint() -> str:
    """On Colab without Google Drive, a sentence for a message about a missing file; else ``""``."""
    if not on_colab() or drive_mounted():
        return ""
    return (" On Colab each notebook runs in its own VM, and without Google Drive they do not share their output "
            "folder: run the first code cell (it mounts Drive) in both notebooks, then the writing notebook again.")


def _read(output_dir: str | os.PathLike, name: str, path: str | os.PathLike | None) -> tuple[dict, Path]:
    file = Path(path) if path else Path(output_dir) / name
    return read_json(file, f"{name} (written by {written_by(name)})"), file


# -- 01 -> 02, 04: the training-set statistics ----------------------------------------------------

def save_statistics(output_dir: str | os.PathLike, data: CIFAR10Data, train: ChannelStats,
                    test: ChannelStats) -> Path:
    """Write notebook 01's ``dataset_statistics.json``: statistics of both splits ([0, 1] scale),
    class counts and the data source. Returns its path."""
    return write_json(Path(output_dir) / STATS_JSON, {
        "train": train.to_dict(), "test": test.to_dict(), "classes": list(data.classes),
        "class_counts": {"train": class_counts(data.y_train), "test": class_counts(data.y_test)},
        "data": data.source.to_dict(), "scale": "[0, 1]",
    })


def load_statistics(output_dir: str | os.PathLike, data: CIFAR10Data | None = None,
                    path: str | os.PathLike | None = None) -> tuple[ChannelStats, str]:
    """The training-set statistics notebook 01 wrote, and where they came from.

    Args:
        output_dir: the folder holding ``dataset_statistics.json``.
        data: when given and the file is absent (a notebook run on its own), the statistics are
            measured afresh from ``data.x_train``.
        path: the file itself, overriding ``output_dir``.

    Returns:
        ``(stats, source)``: the train :class:`ChannelStats` ([0, 1] scale) and a short text naming
        the file or saying they were measured.

    Raises:
        ConfigError: the file is missing (and no ``data``) or malformed; the message names notebook 01.
    """
    file = Path(path) if path else Path(output_dir) / STATS_JSON
    if not file.is_file() and data is not None and not path:
        return train_statistics(data), "measured from the training set (notebook 01's file is absent)"
    content, file = _read(output_dir, STATS_JSON, path)
    try:
        stats = ChannelStats(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in content["train"].items()})
    except (KeyError, TypeError) as err:
        raise ConfigError(f"statistics file {str(file)!r} lacks the train statistics ({err}): run notebook 01 "
                          "again") from err
    return stats, f"read from {file}"


# -- 03 -> 04: the LR range test's suggestion -----------------------------------------------------

def load_lr_range_test(output_dir: str | os.PathLike, path: str | os.PathLike | None = None, *,
                       missing_ok: bool = False) -> tuple[LRRangeTestResult, Path] | None:
    """Notebook 03's LR range test, read back from ``lr_range_test.json``: the curve, every rule's
    suggestion and the rule used (``result.max_lr``, ``result.min_lr``; ``result.settings["model"]``
    the model it ran on), and the file's path.

    Args:
        output_dir: the folder holding the file.
        path: the file itself, overriding ``output_dir``.
        missing_ok: return None when the file is absent and no ``path`` was given (a notebook
            opened on its own: 04 falls back to the recipe's default, 07 shows no suggestion).

    Raises:
        ConfigError: the file is missing (unless ``missing_ok``) or malformed, or holds no finite
            positive LR (the message names notebook 03).
    """
    if missing_ok and not path and not (Path(output_dir) / LR_JSON).is_file():
        return None
    content, file = _read(output_dir, LR_JSON, path)
    try:
        return LRRangeTestResult.from_dict(content), file
    except ConfigError as err:
        raise ConfigError(f"{file}: {err}; run notebook 03 again") from err


def lr_range_test_note(found: tuple[LRRangeTestResult, Path] | None) -> str:
    """One line on notebook 03's suggestion, as notebook 07 shows it beside its sweep: the model the test
    ran on, the LRMAX of its rule and every rule's; or, when ``found`` is None (what
    :func:`load_lr_range_test` with ``missing_ok`` returns without the file), which notebook and cell write it."""
    if found is None:
        return (f"no LR range test here: {LR_JSON} is not in the output folder. Run notebook 03 first with the same "
                f"output_dir ({written_by(LR_JSON)} writes it) to see its suggestion beside the sweep." + colab_hint())
    test = found[0]
    return (f"notebook 03 ({test.settings.get('model')}) suggested LRMAX = {test.max_lr:.3e} by the {test.rule} rule "
            f"(all rules: {test.describe_suggestions()})")


# -- 04 -> 05: the trained model ------------------------------------------------------------------

def save_train_run(output_dir: str | os.PathLike, result: Any) -> Path:
    """Write notebook 04's ``train_run.json`` pointing notebook 05 at the run folder of ``result``
    (a :class:`cifarhelpers.training.train.RunResult`): relative to ``output_dir`` when it lies inside it (so
    the folder can move, e.g. Google Drive mounted elsewhere), else absolute. Returns its path."""
    metrics = result.metrics
    run_dir, out = Path(result.run_dir).resolve(), Path(output_dir).resolve()
    return write_json(Path(output_dir) / TRAIN_JSON, {
        "run_dir": (run_dir.relative_to(out) if run_dir.is_relative_to(out) else run_dir).as_posix(),
        "model": metrics["config"]["model"],
        "final_test_accuracy": result.final_test_accuracy,
        "test_images": metrics["data"]["test_images"],
        "train_images": metrics["data"]["train_images"],
        "epochs": len(result.history),
        "device": metrics["device"],
    })


def load_train_run(output_dir: str | os.PathLike, device: torch.device | str,
                   path: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict, Path]:
    """The model notebook 04 trained (eval mode, on ``device``), its ``metrics.json`` and its run folder.

    Args:
        output_dir: the folder holding ``train_run.json``.
        device: where to put the model.
        path: ``train_run.json`` itself, or a run folder (holding ``metrics.json`` and ``model.pt``);
            overrides ``output_dir``. A relative ``run_dir`` in the file is read from the file's folder.

    Raises:
        ConfigError: there is no trained model to read: ``train_run.json`` is missing (the message names
            notebook 04's cell that writes it, and the other ways: ``train_path``, or
            ``train_if_missing`` to train one in notebook 05; on Colab without Drive, that the notebooks
            then do not share their folder) or malformed.
        CheckpointError: the run folder lacks ``metrics.json`` or ``model.pt`` (notebook 04 did not
            finish: the message says to run or resume it), or they do not fit.
    """
    if path and Path(path).is_dir():
        run_dir = Path(path)
    else:
        file = Path(path) if path else Path(output_dir) / TRAIN_JSON
        if not file.is_file():
            raise ConfigError(f"no trained model yet: {display_path(file)} does not exist. Run notebook 04 first with "
                              f"the same output_dir ({written_by(TRAIN_JSON)} writes it, pointing at the model it "
                              "trained), or set train_path to a finished run folder (e.g. one cifar-train wrote), or "
                              "set train_if_missing = True to train one here." + colab_hint())
        content, file = _read(output_dir, TRAIN_JSON, path)
        if not isinstance(content, dict) or "run_dir" not in content:
            raise ConfigError(f"{file} names no run folder (run_dir): run notebook 04 again")
        run_dir = file.parent / content["run_dir"]  # an absolute run_dir stays as it is
    model, metrics = load_run_model(run_dir, device)
    return model, metrics, run_dir


# -- 07 -> you: the LR sweep -----------------------------------------------------------------------

def save_lr_sweep(output_dir: str | os.PathLike, result: Any, lr_range_test: LRRangeTestResult | None) -> Path:
    """Write notebook 07's ``lr_sweep.json``: the sweep folder, its table (accuracies as fractions),
    the LRMAX with the best mean test accuracy, and notebook 03's suggestions and the LRMAX it used
    (None if notebook 03 has not run).
    ``result`` is a :class:`cifarhelpers.sweep.runner.SweepResult`. Returns its path."""
    best = best_row(result.table)
    return write_json(Path(output_dir) / SWEEP_JSON, {
        "sweep_dir": str(result.sweep_dir), "backend": result.backend, "status": result.status,
        "table": result.table, "best_max_lr": best and best["max_lr"],
        "best_test_accuracy_mean": best and best["test_accuracy_mean"],
        "lr_range_test_max_lr": lr_range_test and lr_range_test.max_lr,
        "lr_range_test_suggestions": lr_range_test and lr_range_test.suggestions,
        "units": UNITS,
    })


__all__ = ["ANALYSIS_JSON", "PRODUCERS", "STATS_JSON", "TRAIN_JSON", "ZOO_JSON", "Producer", "colab_hint",
           "load_lr_range_test", "load_statistics", "load_train_run", "lr_range_test_note",
           "save_lr_sweep", "save_statistics", "save_train_run", "SWEEP_JSON", "written_by"]
