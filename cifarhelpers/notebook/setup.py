"""What every numbered notebook calls first: its parameters validated, device, profile, output folder
and data, then the training config of notebooks 03 and 04 and the sweep of notebook 07.

Each notebook's first code cell after its ``parameters`` cell is::

    setup = start_notebook(data_root=data_root, device=device, profile=profile, seed=seed,
                           output_dir=output_dir, start_lr=start_lr, ...)   # its own parameters too
    cfg = notebook_config(setup, model=model, batch_size=batch_size, ...)    # 03 and 04
    spec = sweep_config(setup, max_lrs=max_lrs, num_seeds=num_seeds, ...)   # 07
    model, metrics, run_dir = analysis_model(setup, train_path=..., ...)    # 05

A bad parameter stops the notebook at once with a message naming it and its valid range; the
setup prints one line naming the device, profile and data copy, so an executed notebook says what
produced its outputs. Paths in that line (and in the notebooks' "written ..." lines) are shown with
:func:`cifarhelpers.files.display_path`: relative to the notebook's folder, not the machine's layout.

On Google Colab (:mod:`cifarhelpers.notebook.colab`), ``download=None`` (the notebooks' default) means True,
and a relative ``output_dir`` goes to Google Drive when it is mounted (else the setup says how). The
files the notebooks hand to each other are in :mod:`cifarhelpers.notebook.handoffs`; the headless runner is
:mod:`cifarhelpers.notebook.runner`.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cifarhelpers.checks import check_boolean, check_choice, check_integer, check_real, check_text
from cifarhelpers.data import CIFAR10Data, load_cifar10
from cifarhelpers.errors import ConfigError
from cifarhelpers.files import display_path, ensure_writable_dir
from cifarhelpers.provenance import code_version
from cifarhelpers.sweep import BACKENDS, SweepConfig
from cifarhelpers.training import (
    FIELD_NAMES,
    LR_JSON,
    PROFILE_CHOICES,
    Profile,
    TrainConfig,
    device_name,
    fit,
    load_checkpoint,
    resolve_device,
    resolve_profile,
    resolved_loader,
    resume_config,
)

from .colab import colab_output_dir, on_colab
from .handoffs import TRAIN_JSON, colab_hint, load_lr_range_test, load_train_run, written_by


@dataclass
class NotebookSetup:
    """What a notebook needs after its parameters cell.

    Attributes:
        device: the torch device to use.
        profile: the resolved :class:`~cifarhelpers.training.config.Profile` (``"auto"``: full on CUDA, short elsewhere).
        output_dir: the folder the notebook writes into (created).
        data: the CIFAR-10 copy (None when the notebook needs no data, e.g. 06).
        seed: the notebook's seed.
        data_root: the ``data_root`` parameter as given (None: ``$CIFAR10_ROOT``, else ``./data``).
        params: the notebook-specific parameters, validated.
    """

    device: torch.device
    profile: Profile
    output_dir: Path
    data: CIFAR10Data | None
    seed: int = 0
    data_root: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: device, profile, data copy (layout, folder name, hash), output folder (as
        :func:`~cifarhelpers.files.display_path` shows it: no machine-specific absolute path where
        the folder lies beside the notebook) and the code (:func:`~cifarhelpers.provenance.code_version`)."""
        if self.data is None:
            data = "no data needed"
        else:
            src = self.data.source
            data = f"{src.layout} copy {Path(src.root).name!r} (sha256 {src.sha256[:12]}...)"
        return (f"device: {device_name(self.device)} | profile: {self.profile.name} | data: {data} | "
                f"output: {display_path(self.output_dir)} | code: {code_version()}")


#: :meth:`NotebookSetup.describe`'s line, as a notebook's first output shows it: device and profile.
_SETUP_LINE = re.compile(r"^device: (.+?) \| profile: (\w+) \| data: ", re.MULTILINE)


def parse_setup_line(text: str) -> tuple[str, str] | None:
    """``(device, profile)`` from a text holding :meth:`NotebookSetup.describe`'s line (an executed
    notebook's first output), e.g. ``("NVIDIA H100 80GB HBM3", "full")``; None when there is no such line."""
    found = _SETUP_LINE.search(text)
    return (found.group(1), found.group(2)) if found else None


def _lr_range(params: dict[str, Any]) -> None:
    start, end = params.get("start_lr"), params.get("end_lr")
    if start is not None and end is not None and not start < end:
        raise ConfigError(f"start_lr={start!r} must be below end_lr={end!r}: the LR range test sweeps upwards")


#: Checks of the notebook parameters that are not :class:`TrainConfig` fields; each raises
#: ConfigError naming the parameter, its value and what is allowed.
PARAMETER_CHECKS = {
    "start_lr": lambda v: check_real("start_lr", v, low=0.0, low_open=True),
    "end_lr": lambda v: check_real("end_lr", v, low=0.0, low_open=True),
    "images_per_class": lambda v: check_integer("images_per_class", v, minimum=1),
    "num_images": lambda v: check_integer("num_images", v, minimum=1),
    "draws": lambda v: check_integer("draws", v, minimum=1),
    "num_mistakes": lambda v: check_integer("num_mistakes", v, minimum=1),
    "num_gradcam": lambda v: check_integer("num_gradcam", v, minimum=1),
    "num_correct": lambda v: check_integer("num_correct", v, minimum=0),
    "min_confused": lambda v: check_integer("min_confused", v, minimum=1),
    "layer_images": lambda v: check_integer("layer_images", v, minimum=0),
    "tta": lambda v: check_boolean("tta", v),
    "train_if_missing": lambda v: check_boolean("train_if_missing", v),
    "eval_batch_size": lambda v: check_integer("eval_batch_size", v, minimum=1),
    "gradcam_layer": lambda v: check_text("gradcam_layer", v, optional=True),
    "models": lambda v: check_text("models", v, optional=True),
    "stats_path": lambda v: check_text("stats_path", v, optional=True),
    "lr_path": lambda v: check_text("lr_path", v, optional=True),
    "train_path": lambda v: check_text("train_path", v, optional=True),
    "profile": lambda v: check_choice("profile", v, PROFILE_CHOICES),
    "max_lrs": lambda v: v is None or parse_max_lrs(v),
    "num_seeds": lambda v: check_integer("num_seeds", v, minimum=1, optional=True),
    "backend": lambda v: check_choice("backend", v, BACKENDS),
    "address": lambda v: check_text("address", v, optional=True),
    "gpus_per_trial": lambda v: check_real("gpus_per_trial", v, low=0.0, optional=True),
}


def parse_max_lrs(value: str | float) -> tuple[float, ...]:
    """Notebook 07's ``max_lrs`` parameter: ``"0.001,0.01"`` (or one number) to ``(0.001, 0.01)``.

    Raises:
        ConfigError: a value that is not a finite number > 0 (named).
    """
    texts = value.split(",") if isinstance(value, str) else [value]
    lrs = []
    for text in texts:
        try:
            lr = float(text) if isinstance(text, str) else text
        except ValueError:
            lr = text.strip()
        check_real("max_lrs", lr, low=0.0, low_open=True)
        lrs.append(lr)
    return tuple(lrs)


def validate_parameters(params: dict[str, Any]) -> None:
    """Check notebook parameters before any work: TrainConfig fields (``None`` meaning "the
    profile's value") and the notebook-specific ones in :data:`PARAMETER_CHECKS`, which win where a
    name is both (notebook 03's ``start_lr``/``end_lr`` bound its LR range test, not OneCycle's
    ``TrainConfig.end_lr``). Names that are neither are left alone (the runner rejects names no
    notebook declares).

    Raises:
        ConfigError: the first invalid value, named, with its valid range or choices.
        CheckpointError: ``resume`` names a folder without a readable, safe checkpoint.
    """
    TrainConfig(**{k: v for k, v in params.items()
                   if k in FIELD_NAMES and k not in PARAMETER_CHECKS and v is not None})
    for name, check in PARAMETER_CHECKS.items():
        if name in params:
            check(params[name])
    _lr_range(params)
    if params.get("resume"):
        load_checkpoint(params["resume"])  # a folder without a readable, safe checkpoint fails here


def resolve_loader(loader: str | None, device: torch.device, transform_set: str = "cutout8") -> str:
    """The data loader to use, ``"albumentations"`` or ``"device"``: ``loader`` itself, or for ``"auto"``
    (and None) :func:`cifarhelpers.training.loaders.resolved_loader`'s choice: the device loader on a CUDA GPU
    (the data set lives there, augmented in batches) when it implements ``transform_set``, else albumentations."""
    return resolved_loader(loader or "auto", transform_set, torch.device(device).type)


def start_notebook(*, data_root: str | None = None, device: str = "auto", profile: str = "auto",
                   output_dir: str | os.PathLike, seed: int = 0, download: bool | None = None, load_data: bool = True,
                   **params: Any) -> NotebookSetup:
    """Validate the parameters, resolve device and profile, create the output folder, load data.

    Prints :meth:`NotebookSetup.describe` (device, profile, data copy), so an executed notebook
    says what produced its outputs.

    Args:
        data_root: CIFAR-10 folder; None: ``$CIFAR10_ROOT``, else ``./data``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        profile: ``"auto"`` (full on CUDA, short elsewhere), ``"full"`` or ``"short"``.
        output_dir: the notebook's output folder (created). On Colab a relative one goes to Google
            Drive when mounted, else to the VM's disk with a note on mounting Drive
            (:func:`cifarhelpers.notebook.colab.colab_output_dir`).
        seed: seed of the notebook's random draws, >= 0.
        download: download torchvision's copy into ``data_root`` when none is found; None: True on
            Colab (a fresh VM has no copy), False elsewhere.
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
    colab = on_colab()
    download = colab if download is None else download
    if colab:
        output_dir, note = colab_output_dir(output_dir)
        if note:
            print(note)
    out = ensure_writable_dir(output_dir)
    data = load_cifar10(data_root, download=download, progress=True) if load_data else None
    setup = NotebookSetup(device=torch_device, profile=resolve_profile(profile, torch_device.type), output_dir=out,
                          data=data, seed=seed, data_root=data_root, params=dict(params))
    print(setup.describe())
    return setup


def notebook_config(setup: NotebookSetup, **params: Any) -> TrainConfig:
    """The training config of a notebook: the model's and recipe's own settings (``TrainConfig.preset``),
    then the profile's values, then every parameter that is not None, with the setup's device, seed, data root
    and output folder, and ``loader`` (``"auto"`` unless given) resolved by :func:`resolve_loader`, so the
    notebook shows the loader that runs.

    Raises:
        ConfigError: an invalid parameter (named, with its valid range).
    """
    given = {k: v for k, v in params.items() if v is not None}
    common = {"device": str(setup.device), "seed": setup.seed, "data_root": setup.data_root,
              "output_dir": str(setup.output_dir)}
    cfg = TrainConfig.preset(**{**setup.profile.overrides, **common, **given})
    return cfg.replace(loader=resolve_loader(cfg.loader, setup.device, cfg.transform_set))


def training_config(setup: NotebookSetup, *, resume: str | os.PathLike | None = None, recipe: str = "onecycle_adam",
                    max_lr: float | None = None, min_lr: float | None = None,
                    lr_path: str | os.PathLike | None = None, **params: Any) -> tuple[TrainConfig, str]:
    """Notebook 04's training config, and where its LRMAX and LRMIN came from.

    LRMAX and LRMIN: ``max_lr`` if given (and ``min_lr``, None meaning max_lr / 10); else, for the
    ``onecycle_adam`` recipe, notebook 03's ``lr_range_test.json`` (its test uses Adam, so its
    suggestion fits that recipe only; read with :func:`cifarhelpers.notebook.handoffs.load_lr_range_test`,
    its rule's suggestion as in ``cifar-train --max-lr find``); other recipes take their default LR.
    A notebook opened on its own, without notebook 03's file in its output folder, falls back to
    the recipe's default with a warning.

    Args:
        setup: the notebook's setup (device, profile, seed, data root, output folder).
        resume: a run folder to continue from its last checkpoint: its saved config is used, with
            this notebook's device and data root; the other training parameters are not used.
        recipe, max_lr, min_lr: as above.
        lr_path: notebook 03's file; None: the one in the output folder.
        **params: the other :class:`TrainConfig` fields (None: the profile's value), as
            :func:`notebook_config`.

    Returns:
        ``(config, lr_source)``.

    Raises:
        ConfigError: an invalid parameter, or notebook 03's file is malformed, or ``lr_path`` names
            a file that does not exist.
        CheckpointError: ``resume`` holds no readable, safe checkpoint.
    """
    if resume:
        cfg = resume_config(resume, device=str(setup.device), data_root=setup.data_root)
        return cfg, (f"the checkpoint in {resume} (resumed with its saved settings; this notebook's other "
                     "training parameters are not used)")
    if max_lr is not None:
        source = "the max_lr parameter"
    elif recipe != "onecycle_adam":
        source = f"the {recipe} recipe's default"
    elif (loaded := load_lr_range_test(setup.output_dir, lr_path, missing_ok=True)) is None:
        source = f"the {recipe} recipe's default, because notebook 03's {LR_JSON} is not in {setup.output_dir.name}/"
        warnings.warn(f"no LR range test found: training at the {recipe} recipe's default LR. Run notebook 03 first "
                      f"with the same output_dir ({written_by(LR_JSON)} writes {LR_JSON}), or set max_lr."
                      f"{colab_hint()}", stacklevel=2)
    else:
        found, file = loaded
        max_lr, min_lr = found.max_lr, min_lr if min_lr is not None else found.min_lr
        source = f"notebook 03's LR range test ({found.rule} rule, {file.name})"
    cfg = notebook_config(setup, recipe=recipe, max_lr=max_lr, min_lr=min_lr, **params)
    return cfg, source


def sweep_config(setup: NotebookSetup, *, max_lrs: str | float | None = None, num_seeds: int | None = None,
                 backend: str = "auto", address: str | None = None, gpus_per_trial: float | None = None,
                 **params: Any) -> SweepConfig:
    """Notebook 07's sweep: LRMAX values times seeds on the profile's config.

    The grid is ``max_lrs`` (e.g. ``"0.001,0.01"``), else the profile's (``Profile.sweep``); the
    seeds are ``setup.seed``, ``setup.seed + 1``... (``num_seeds``, else the profile's count); each
    trial's config is :func:`notebook_config`'s with the profile's sweep overrides, then every
    parameter that is not None. Trials go under the notebook's output folder.

    Raises:
        ConfigError: an invalid parameter (named, with its valid range).
    """
    plan = setup.profile.sweep
    given = {k: v for k, v in params.items() if v is not None}
    base = notebook_config(setup, **{**plan["overrides"], **given})
    resources = None if gpus_per_trial is None else {"cpu": 1, "gpu": gpus_per_trial}
    seeds = tuple(range(setup.seed, setup.seed + (num_seeds or plan["seeds"])))
    return SweepConfig(base=base, grid={"max_lr": list(parse_max_lrs(max_lrs) if max_lrs else plan["max_lrs"])},
                       seeds=seeds, backend=backend, address=address, resources_per_trial=resources,
                       output_dir=str(setup.output_dir))


def analysis_model(setup: NotebookSetup, *, train_path: str | os.PathLike | None = None,
                   train_if_missing: bool = False) -> tuple[torch.nn.Module, dict, Path]:
    """Notebook 05's model: notebook 04's (:func:`~cifarhelpers.notebook.handoffs.load_train_run`), or, when the
    output folder has none (a notebook opened on its own, e.g. on Colab without Google Drive) and
    ``train_if_missing``, one trained here first: notebook 04's job at this profile (the custom ResNet,
    ``onecycle_adam`` at its default LRMAX, no LR range test) with the device loader, into a new run
    folder in the output folder. Notebook 04's ``train_run.json`` is not written.

    Returns:
        ``(model, metrics, run_dir)``: the model in eval mode on ``setup.device``, its ``metrics.json``.

    Raises:
        ConfigError: no model from notebook 04 and not ``train_if_missing`` (the message names notebook
            04's cell that writes it and the ways round), or ``train_path`` is given and missing.
        CheckpointError: notebook 04's run folder holds no finished model.
    """
    if train_path or not train_if_missing or (setup.output_dir / TRAIN_JSON).is_file():
        return load_train_run(setup.output_dir, setup.device, train_path)
    cfg = notebook_config(setup, model="custom_resnet", loader="device")
    print(f"no model from notebook 04 in {display_path(setup.output_dir)}: training one here (train_if_missing): "
          f"{cfg.model}, {cfg.recipe}, {cfg.epochs} epochs of {cfg.train_subset or len(setup.data.y_train):,} "
          f"training images, {cfg.loader} loader")
    return load_train_run(setup.output_dir, setup.device, fit(cfg, data=setup.data, progress=True).run_dir)
