"""Running the numbered notebooks: the setup each notebook calls first, the files they hand to
each other, and the papermill runner.

Run all six headless, in order, into a new run folder::

    cifar-notebooks run                                # profile auto: full on a GPU, short on a CPU
    cifar-notebooks run -p epochs 5 -p max_lr 0.02     # parameters go to every notebook that has them
    python -m cifarhelpers.notebooks run --profile short --output-dir runs

Each notebook starts with ``start_notebook(...)``, which validates its parameters (a bad value
stops the notebook at once with a message naming the parameter and its valid range), picks the
device and profile, creates the output folder and loads the data.

The notebooks hand files to each other through their (shared) output folder:

======================  =========  ==============  ==================================================
file                    written    read by         content
======================  =========  ==============  ==================================================
dataset_statistics.json 01         02, 04          per-channel mean/std/min/max/var, class counts
lr_range_test.json      03         04              LRMAX (the suggestion), LRMIN = LRMAX / 10, curve
train_run.json          04         05              the run folder holding model.pt and metrics.json
======================  =========  ==============  ==================================================
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import PROFILES, TrainConfig, _integer, _real, _text
from .data import CIFAR10Data, ChannelStats, balanced_subset, dataset_statistics, load_cifar10
from .devices import device_name, resolve_device
from .errors import CifarHelpersError, ConfigError, require
from .runs import ensure_writable_dir, new_run_dir, read_json, write_json

NOTEBOOKS = (
    "01_dataset_statistics.ipynb",
    "02_augmentation_preview.ipynb",
    "03_lr_range_test.ipynb",
    "04_train_onecycle.ipynb",
    "05_misclassification_gradcam.ipynb",
    "06_model_zoo.ipynb",
)
NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
#: Files the notebooks hand to each other inside the output folder.
STATS_JSON = "dataset_statistics.json"   # 01 -> 02, 04: mean/std the transforms use
LR_JSON = "lr_range_test.json"           # 03 -> 04: LRMAX, LRMIN
TRAIN_JSON = "train_run.json"            # 04 -> 05: the run folder with model.pt and metrics.json
ANALYSIS_JSON = "analysis.json"          # 05: accuracy, confusion matrix, per-class metrics
ZOO_JSON = "model_zoo.json"              # 06: parameters and receptive field of every model

#: The notebooks' short profile: what runs when no GPU is present. Smaller than ``cifar-train``'s
#: (``config.SHORT_PROFILE``) so that the six notebooks together, LR range test and training
#: included, finish in about five minutes on 2 CPU cores. The full profile is the recipe as
#: configured: all 50,000 images, 24 epochs, batch 512.
NOTEBOOK_SHORT_PROFILE: dict[str, Any] = {
    "epochs": 2,
    "train_subset": 2048,
    "test_subset": 1000,
    "batch_size": 128,
}
#: LR range test iterations per profile (the batch size is the training batch size: 512 full, 128 short).
LR_TEST_ITERATIONS = {"full": 100, "short": 30}
#: Fewest LR range test iterations: lr_range_test skips 10 points at the start and 5 at the end.
MIN_LR_TEST_ITERATIONS = 17


@dataclass
class NotebookSetup:
    """What a notebook needs after its parameters cell.

    Attributes:
        device: the torch device to use.
        profile: ``"full"`` or ``"short"`` (``"auto"`` resolved: full on CUDA, short elsewhere).
        output_dir: the folder the notebook writes into (created).
        data: the CIFAR-10 copy (None when the notebook needs no data, e.g. 06).
        seed: the notebook's seed.
        data_root: the ``data_root`` parameter as given (None: ``$CIFAR10_ROOT``, else ``./data``).
        params: the notebook-specific parameters, validated.
    """

    device: torch.device
    profile: str
    output_dir: Path
    data: CIFAR10Data | None
    seed: int = 0
    data_root: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: device, profile, data copy (layout, root, hash) and output folder."""
        if self.data is None:
            data = "no data needed"
        else:
            src = self.data.source
            data = f"{src.layout} copy at {src.root} (sha256 {src.sha256[:12]}...)"
        return (f"device: {device_name(self.device)} | profile: {self.profile} | data: {data} | "
                f"output: {self.output_dir}")


# ------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------


def _optional_path(name: str, value: Any) -> None:
    _text(name, os.fspath(value) if isinstance(value, os.PathLike) else value, optional=True)


def _lr_range(params: dict[str, Any]) -> None:
    start, end = params.get("start_lr"), params.get("end_lr")
    if start is not None and end is not None and not start < end:
        raise ConfigError(f"start_lr={start!r} must be below end_lr={end!r}: the LR range test sweeps upwards")


#: Checks of the notebook parameters that are not :class:`TrainConfig` fields; each raises
#: ConfigError naming the parameter, its value and what is allowed.
PARAMETER_CHECKS = {
    "num_iter": lambda v: _integer("num_iter", v, minimum=MIN_LR_TEST_ITERATIONS, optional=True),
    "start_lr": lambda v: _real("start_lr", v, low=0.0, low_open=True),
    "end_lr": lambda v: _real("end_lr", v, low=0.0, low_open=True),
    "images_per_class": lambda v: _integer("images_per_class", v, minimum=1),
    "num_images": lambda v: _integer("num_images", v, minimum=1),
    "draws": lambda v: _integer("draws", v, minimum=1),
    "num_mistakes": lambda v: _integer("num_mistakes", v, minimum=1),
    "eval_batch_size": lambda v: _integer("eval_batch_size", v, minimum=1),
    "gradcam_layer": lambda v: _text("gradcam_layer", v, optional=True),
    "models": lambda v: _text("models", v, optional=True),
    "stats_path": lambda v: _optional_path("stats_path", v),
    "lr_path": lambda v: _optional_path("lr_path", v),
    "train_path": lambda v: _optional_path("train_path", v),
}


def validate_parameters(params: dict[str, Any]) -> None:
    """Check notebook parameters before any work: TrainConfig fields (``None`` meaning "the
    profile's value"), ``profile``, and the notebook-specific ones in :data:`PARAMETER_CHECKS`.
    Names that are neither are left alone (the runner rejects names no notebook declares).

    Raises:
        ConfigError: the first invalid value, named, with its valid range or choices.
        CheckpointError: ``resume`` names a folder without a readable, safe checkpoint.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    TrainConfig(**{k: v for k, v in params.items() if k in fields and v is not None})
    if "profile" in params and params["profile"] not in PROFILES:
        raise ConfigError(f"profile={params['profile']!r} is invalid: choose one of {list(PROFILES)}")
    for name, check in PARAMETER_CHECKS.items():
        if name in params:
            check(params[name])
    _lr_range(params)
    if params.get("resume"):
        from .checkpoint import load_checkpoint

        load_checkpoint(params["resume"])  # a folder without a readable, safe checkpoint fails here


def resolve_loader(loader: str | None, device: torch.device) -> str:
    """The data loader to use: ``loader`` if given, else ``"device"`` on a CUDA GPU (the data set
    lives there, augmented in batches) and ``"albumentations"`` elsewhere (the reference path)."""
    if loader is not None:
        return loader
    return "device" if torch.device(device).type == "cuda" else "albumentations"


# ------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------


def start_notebook(*, data_root: str | None = None, device: str = "auto", profile: str = "auto",
                   output_dir: str | os.PathLike, seed: int = 0, download: bool = False, load_data: bool = True,
                   **params: Any) -> NotebookSetup:
    """Validate the parameters, resolve device and profile, create the output folder, load data.

    Prints :meth:`NotebookSetup.describe` (device, profile, data copy), so an executed notebook
    says what produced its outputs.

    Args:
        data_root: CIFAR-10 folder; None: ``$CIFAR10_ROOT``, else ``./data``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        profile: ``"auto"`` (full on CUDA, short elsewhere), ``"full"`` or ``"short"``.
        output_dir: the notebook's output folder (created).
        seed: seed of the notebook's random draws, >= 0.
        download: download torchvision's copy into ``data_root`` when none is found.
        load_data: False for a notebook that needs no data (06).
        **params: the notebook's other parameters, checked by :func:`validate_parameters` and
            kept in ``setup.params``.

    Raises:
        ConfigError: a parameter is invalid (named, with its valid values), or the device is unavailable.
        DataError / DataNotFoundError: the data cannot be read.
    """
    validate_parameters({**params, "data_root": data_root, "device": device, "output_dir": os.fspath(output_dir),
                         "seed": seed, "download": download, "profile": profile})
    torch_device = resolve_device(device)
    resolved = profile if profile != "auto" else ("full" if torch_device.type == "cuda" else "short")
    out = ensure_writable_dir(output_dir)
    data = load_cifar10(data_root, download=download, progress=True) if load_data else None
    setup = NotebookSetup(device=torch_device, profile=resolved, output_dir=out, data=data, seed=seed,
                          data_root=data_root, params=dict(params))
    print(setup.describe())
    return setup


def notebook_config(setup: NotebookSetup, **params: Any) -> TrainConfig:
    """The training config of a notebook: the profile's values (:data:`NOTEBOOK_SHORT_PROFILE` for
    ``"short"``, the recipe's own for ``"full"``), then every parameter that is not None, with the
    setup's device, seed, data root and output folder, and ``loader`` resolved by :func:`resolve_loader`.

    Raises:
        ConfigError: an invalid parameter (named, with its valid range).
    """
    given = {k: v for k, v in params.items() if v is not None}
    base = dict(NOTEBOOK_SHORT_PROFILE) if setup.profile == "short" else {}
    common = {"device": str(setup.device), "seed": setup.seed, "data_root": setup.data_root,
              "output_dir": str(setup.output_dir), "loader": resolve_loader(params.get("loader"), setup.device)}
    return TrainConfig(**{**base, **common, **given})


def steps_per_epoch(cfg: TrainConfig, num_train_images: int = 50_000) -> int:
    """Optimizer steps per epoch of ``cfg``: training images (the subset, else all
    ``num_train_images``) // batch size (the last incomplete batch is dropped)."""
    return (cfg.train_subset or num_train_images) // cfg.batch_size


# ------------------------------------------------------------------------------------------
# Hand-offs between notebooks
# ------------------------------------------------------------------------------------------


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
        return dataset_statistics(data.x_train), "measured from the training set (notebook 01's file is absent)"
    content = read_json(file, "statistics file (written by notebook 01)")
    try:
        stats = ChannelStats(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in content["train"].items()})
    except (KeyError, TypeError) as err:
        raise ConfigError(f"statistics file {str(file)!r} lacks the train statistics ({err}): run notebook 01 again") from err
    return stats, f"read from {file}"


def save_statistics(output_dir: str | os.PathLike, data: CIFAR10Data, train: ChannelStats, test: ChannelStats) -> Path:
    """Write notebook 01's ``dataset_statistics.json``: statistics of both splits ([0, 1] scale),
    class counts and the data source. Returns its path."""
    from .data import class_counts

    return write_json(Path(output_dir) / STATS_JSON, {
        "train": train.to_dict(), "test": test.to_dict(), "classes": list(data.classes),
        "class_counts": {"train": class_counts(data.y_train), "test": class_counts(data.y_test)},
        "data": data.source.to_dict(), "scale": "[0, 1]",
    })


def class_counts_table(data: CIFAR10Data) -> str:
    """Images per class of both splits as aligned text (one row per class, then the totals)."""
    from .data import class_counts

    train, test = class_counts(data.y_train), class_counts(data.y_test)
    lines = [f"{'label':<6}{'class':<12}{'train':>8}{'test':>8}"]
    lines += [f"{i:<6}{name:<12}{a:>8,}{b:>8,}" for i, (name, a, b) in enumerate(zip(data.classes, train, test))]
    lines.append(f"{'':<6}{'total':<12}{sum(train):>8,}{sum(test):>8,}")
    return "\n".join(lines)


def save_json(output_dir: str | os.PathLike, name: str, content: dict) -> Path:
    """Write ``content`` as ``output_dir/name`` (atomically) and return the path."""
    return write_json(Path(output_dir) / name, content)


def read_handoff(path: str | os.PathLike | None, output_dir: str | os.PathLike, name: str, writer: str) -> dict:
    """Read a file an earlier notebook wrote: ``path`` if given, else ``output_dir/name``.

    Raises:
        ConfigError: the file is missing or malformed; the message names the notebook that writes it.
    """
    return read_json(Path(path) if path else Path(output_dir) / name, f"{name} (written by notebook {writer})")


# ------------------------------------------------------------------------------------------
# 03: the LR range test
# ------------------------------------------------------------------------------------------


@dataclass
class RangeTestOutcome:
    """What :func:`run_range_test` returns.

    Attributes:
        result: the :class:`~cifarhelpers.lr_range_test.LRRangeTestResult` (LRs, smoothed losses,
            suggestion, LRMAX, LRMIN).
        weights_unchanged: every tensor of the model's ``state_dict`` (weights and BatchNorm
            statistics) is bit-for-bit what it was before the test.
        train_images: images the test drew its batches from.
    """

    result: Any
    weights_unchanged: bool
    train_images: int


def lr_test_iterations(profile: str, num_iter: int | None = None) -> int:
    """The LR range test's iterations: ``num_iter`` if given, else the profile's (100 full, 30 short)."""
    return num_iter if num_iter is not None else LR_TEST_ITERATIONS[profile]


def run_range_test(cfg: TrainConfig, data: CIFAR10Data, *, num_iter: int, start_lr: float = 1e-6,
                   end_lr: float = 10.0, progress: bool = True) -> RangeTestOutcome:
    """The LR range test (torch-lr-finder, Adam, exponential steps) on a fresh, seeded ``cfg.model``
    with ``cfg``'s training data (subset, augmentation, batch size, loader) and weight decay:
    :func:`cifarhelpers.lr_range_test.run_lr_range_test`, which restores the model with
    torch-lr-finder's ``reset()`` and checks every tensor of its ``state_dict`` afterwards. The
    test builds its own Adam optimizer, so no scheduler is left attached to anything a later
    training uses.

    Raises:
        ConfigError: as :func:`cifarhelpers.lr_range_test.lr_range_test` (bad range, too few
            iterations, loss diverged too early) or :func:`cifarhelpers.train.prepare_data`.
    """
    from .lr_range_test import run_lr_range_test

    result = run_lr_range_test(cfg, num_iter=num_iter, start_lr=start_lr, end_lr=end_lr, data=data,
                               progress=progress)
    return RangeTestOutcome(result=result, weights_unchanged=result.restored,
                            train_images=cfg.train_subset or len(data.y_train))


def save_lr_suggestion(output_dir: str | os.PathLike, outcome: RangeTestOutcome, cfg: TrainConfig) -> Path:
    """Write notebook 03's ``lr_range_test.json``: ``max_lr`` (LRMAX, the suggestion), ``min_lr``
    (LRMAX / 10), the curve, the settings and the model. Returns its path.

    Raises:
        ConfigError: the suggestion is not a finite positive number (nothing is written).
    """
    result = outcome.result
    if not (math.isfinite(result.max_lr) and result.max_lr > 0):
        raise ConfigError(f"the LR range test suggested {result.max_lr!r}, not a finite positive LR: "
                          "run it again with more iterations (num_iter) or a narrower range")
    return write_json(Path(output_dir) / LR_JSON, {
        **result.to_dict(), "model": cfg.model, "loader": cfg.loader, "train_images": outcome.train_images,
        "weights_unchanged": outcome.weights_unchanged, "units": {"lr": "learning rate", "loss": "smoothed "
                                                                 "training cross-entropy"},
    })


def choose_lrs(recipe: str, max_lr: float | None, min_lr: float | None, *, output_dir: str | os.PathLike,
               lr_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """LRMAX and LRMIN for notebook 04.

    ``max_lr`` given: it (and ``min_lr``, None meaning max_lr / 10). Else, for the
    ``onecycle_adam`` recipe: notebook 03's ``lr_range_test.json`` (its test uses Adam, so its
    suggestion fits that recipe only). Other recipes: their default LR.

    Returns:
        ``{"max_lr": float | None, "min_lr": float | None, "source": str}`` (None: the config's default).

    Raises:
        ConfigError: notebook 03's file is needed but missing or malformed (the message names notebook 03).
    """
    if max_lr is not None:
        return {"max_lr": max_lr, "min_lr": min_lr, "source": "the max_lr parameter"}
    if recipe != "onecycle_adam":
        return {"max_lr": None, "min_lr": min_lr, "source": f"the {recipe} recipe's default"}
    file = Path(lr_path) if lr_path else Path(output_dir) / LR_JSON
    content = read_handoff(file, output_dir, LR_JSON, "03")
    suggested = content.get("max_lr")
    if not isinstance(suggested, (int, float)) or not math.isfinite(suggested) or suggested <= 0:
        raise ConfigError(f"{file} holds max_lr={suggested!r}, not a finite positive LR: run notebook 03 again")
    return {"max_lr": float(suggested), "min_lr": min_lr if min_lr is not None else float(content["min_lr"]),
            "source": f"notebook 03's LR range test ({file})"}


def training_config(setup: NotebookSetup, *, resume: str | os.PathLike | None = None, recipe: str = "onecycle_adam",
                    max_lr: float | None = None, min_lr: float | None = None,
                    lr_path: str | os.PathLike | None = None, **params: Any) -> tuple[TrainConfig, str]:
    """Notebook 04's training config, and where its LRMAX and LRMIN came from.

    Args:
        setup: the notebook's setup (device, profile, seed, data root, output folder).
        resume: a run folder to continue from its last checkpoint: its saved config is used, with
            this notebook's device and data root; the other training parameters are not used.
        recipe, max_lr, min_lr, lr_path: as :func:`choose_lrs` (notebook 03's suggestion by default).
        **params: the other :class:`TrainConfig` fields (None: the profile's value), as
            :func:`notebook_config`.

    Returns:
        ``(config, lr_source)``.

    Raises:
        ConfigError: an invalid parameter, or notebook 03's file is needed but missing.
        CheckpointError: ``resume`` holds no readable, safe checkpoint.
    """
    if resume:
        from .train import resume_config

        cfg = resume_config(resume, device=str(setup.device), data_root=setup.data_root)
        return cfg, f"the checkpoint in {resume} (resumed with its saved settings; this notebook's other training " \
                    "parameters are not used)"
    lrs = choose_lrs(recipe, max_lr, min_lr, output_dir=setup.output_dir, lr_path=lr_path)
    cfg = notebook_config(setup, recipe=recipe, max_lr=lrs["max_lr"], min_lr=lrs["min_lr"], **params)
    return cfg, lrs["source"]


# ------------------------------------------------------------------------------------------
# 04 -> 05: the trained model
# ------------------------------------------------------------------------------------------


def save_train_handoff(output_dir: str | os.PathLike, result: Any) -> Path:
    """Write notebook 04's ``train_run.json`` pointing notebook 05 at the run folder of ``result``
    (a :class:`cifarhelpers.train.RunResult`). Returns its path."""
    metrics = result.metrics
    return write_json(Path(output_dir) / TRAIN_JSON, {
        "run_dir": str(Path(result.run_dir).resolve()),
        "model": metrics["config"]["model"],
        "final_test_accuracy": result.final_test_accuracy,
        "test_images": metrics["data"]["test_images"],
        "train_images": metrics["data"]["train_images"],
        "epochs": len(result.history),
        "device": metrics["device"],
    })


def load_trained(output_dir: str | os.PathLike, device: torch.device | str,
                 train_path: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict, Path]:
    """The model notebook 04 trained (eval mode, on ``device``), its ``metrics.json`` and its run folder.

    Args:
        output_dir: the folder holding ``train_run.json``.
        device: where to put the model.
        train_path: ``train_run.json`` itself, or a run folder (holding ``metrics.json`` and
            ``model.pt``); overrides ``output_dir``.

    Raises:
        ConfigError: ``train_run.json`` is missing or malformed (the message names notebook 04).
        CheckpointError: the run folder lacks ``metrics.json`` or ``model.pt``, or they do not fit.
    """
    from .checkpoint import load_run_model

    if train_path and Path(train_path).is_dir():
        run_dir = Path(train_path)
    else:
        run_dir = Path(read_handoff(train_path, output_dir, TRAIN_JSON, "04")["run_dir"])
    model, metrics = load_run_model(run_dir, device)
    return model, metrics, run_dir


def evaluation_split(data: CIFAR10Data, test_subset: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The test images and labels a run evaluated on: the class-balanced subset ``prepare_data``
    draws for ``(test_subset, seed)``, or all 10,000 when ``test_subset`` is None.

    Returns:
        ``(images, labels)``: (N, 32, 32, 3) uint8 and (N,) int64.
    """
    return balanced_subset(data.x_test, data.y_test, test_subset, seed, name="test_subset")


# ------------------------------------------------------------------------------------------
# Runner
# ------------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A ``-p`` value as papermill's command line reads it: int, float, bool, None or str."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell, with their defaults (as source text).

    Raises:
        MissingDependencyError: papermill is not installed (``pip install 'cifarhelpers[notebooks]'``).
    """
    papermill = require("papermill", "notebooks", "reading notebook parameters")

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


def run_notebooks(parameters: dict[str, Any] | None = None, *, output_dir: str | os.PathLike = "runs",
                  notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR, notebooks: tuple[str, ...] = NOTEBOOKS,
                  progress: bool = True) -> Path:
    """Execute the notebooks in order with papermill into a new ``notebooks-*`` run folder.

    Every notebook gets ``output_dir`` = the run folder, plus those of ``parameters`` it declares.
    The executed notebooks are saved in the run folder beside what they wrote.

    Args:
        parameters: parameter values, e.g. ``{"profile": "short", "epochs": 3}``.
        output_dir: parent of the new run folder.
        notebooks_dir: where the notebooks are.
        notebooks: file names, run in this order.
        progress: papermill's progress bar (one tick per cell).

    Returns:
        The run folder.

    Raises:
        ConfigError: a parameter no notebook declares, an invalid value (checked by
            :func:`validate_parameters`) or a device this machine lacks, all before anything
            runs or any folder is made.
        papermill.PapermillExecutionError: a cell failed; the chain stops there. Its message
            starts with the notebook's name and the path of its executed copy, then papermill's
            "Exception encountered at In [n]" and the traceback (``err.notebook`` holds the name).
        MissingDependencyError: papermill or ipykernel is not installed (the message gives the pip
            command: ``pip install 'cifarhelpers[notebooks]'``).
    """
    papermill = require("papermill", "notebooks", "running the notebooks headless")
    require("ipykernel", "notebooks", "running the notebooks headless (the Jupyter kernel)")

    parameters = dict(parameters or {})
    notebooks_dir = Path(notebooks_dir)
    declared = {name: notebook_parameters(notebooks_dir / name) for name in notebooks}
    known = set().union(*declared.values())
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {unknown}; the notebooks take {sorted(known)}")
    if "output_dir" in parameters:
        raise ConfigError("output_dir is set by the runner (the new run folder): pass the parent folder as "
                          "run_notebooks(output_dir=...) or --output-dir")
    validate_parameters(parameters)
    if "device" in parameters:
        resolve_device(parameters["device"])  # e.g. "cuda" on a machine without one: refused here, not in a notebook
    run_dir = new_run_dir(output_dir, "notebooks").resolve()
    write_json(run_dir / "parameters.json", {"parameters": parameters, "notebooks": list(notebooks),
                                             "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for name in notebooks:
        given = {k: v for k, v in parameters.items() if k in declared[name]}
        print(f"running {name} {given or ''}", flush=True)
        try:
            papermill.execute_notebook(
                str(notebooks_dir / name), str(run_dir / name),
                parameters={**given, "output_dir": str(run_dir)},
                cwd=str(notebooks_dir), progress_bar=progress, kernel_name="python3",
            )
        except papermill.PapermillExecutionError as err:
            err.notebook = name
            err.traceback = [f"notebook {name} failed at cell In [{err.exec_count}] (executed copy with its "
                             f"outputs: {run_dir / name})", *err.traceback]
            raise
    return run_dir


def main(argv: list[str] | None = None) -> int:
    """``cifar-notebooks run`` / ``python -m cifarhelpers.notebooks run``."""
    parser = argparse.ArgumentParser(prog="cifar-notebooks", description="Run notebooks 01-06 with papermill.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks in order into a new run folder")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a notebook parameter, papermill style (repeatable), e.g. -p epochs 5")
    run.add_argument("--profile", choices=PROFILES, default=None, help="shorthand for -p profile ...")
    run.add_argument("--output-dir", default="runs", help="parent of the new run folder (default: runs)")
    run.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help="where the .ipynb files are")
    args = parser.parse_args(argv)
    parameters = {name: parse_value(value) for name, value in args.parameter}
    if args.profile:
        parameters["profile"] = args.profile
    try:
        run_dir = run_notebooks(parameters, output_dir=args.output_dir, notebooks_dir=args.notebooks_dir)
    except CifarHelpersError as err:
        print(f"cifar-notebooks: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # papermill's execution error names the notebook and cell
        if type(err).__name__ == "PapermillExecutionError":
            print(f"cifar-notebooks: a notebook failed: {err}", file=sys.stderr)
            return 1
        raise
    print(f"done: executed notebooks and their outputs are in {run_dir}")
    summary = run_dir / TRAIN_JSON
    if summary.is_file():
        print(json.dumps(json.loads(summary.read_text()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
