"""One validated configuration object per training run.

Example::

    from cifarhelpers.config import TrainConfig
    cfg = TrainConfig(epochs=24, batch_size=512, max_lr=0.01)     # validated here
    cfg = cfg.replace(train_subset=4096)                           # validated again
    TrainConfig(epochs=0)      # ConfigError: epochs=0 is invalid: ... (must be an integer >= 1)

Every field is checked in ``__post_init__`` (type and range, with the valid range or choices in
the message), so a bad value from the CLI, a notebook parameter or papermill's ``-p`` stops the
run before any data is read or anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

LOADERS = ("albumentations", "device")
#: Images in CIFAR-10's splits: no subset can be larger (a smaller copy is checked once loaded).
CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000
PROFILES = ("auto", "short", "full")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

#: The short profile: what runs when no GPU is present (a few minutes on 2 CPU cores). The
#: OneCycle shape (pct_start, LRMIN = LRMAX/10) is kept; only the amount of work shrinks.
SHORT_PROFILE: dict[str, Any] = {
    "epochs": 2,
    "train_subset": 4096,
    "test_subset": 2000,
    "batch_size": 128,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs. Defaults are the main job's recipe.

    Attributes:
        model: registry name (``cifarhelpers.models.MODEL_NAMES``).
        recipe: optimizer + LR schedule by name (``cifarhelpers.recipes.RECIPES``).
        transform_set: augmentation set (``cifarhelpers.transforms.TRANSFORM_SETS``).
        epochs: passes over the training set, >= 1.
        batch_size: images per optimizer step, >= 1.
        max_lr: OneCycle's peak LR (LRMAX) or the starting LR of the SGD recipes; ``None`` takes
            the recipe's default. Finite, > 0.
        min_lr: OneCycle's start and end LR (LRMIN); ``None`` means ``max_lr / 10``. 0 < min_lr <= max_lr.
        pct_start: fraction of the steps spent rising to max_lr; 5/24 puts the peak at the end of
            epoch 5 of 24. In (0, 1).
        weight_decay: L2 penalty passed to the optimizer, >= 0.
        label_smoothing: CrossEntropyLoss label smoothing, in [0, 1).
        seed: seed of initialization, subset draws and augmentation, >= 0.
        device: ``"auto"`` (CUDA if available, else MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        data_root: CIFAR-10 folder; ``None`` means ``$CIFAR10_ROOT``, else ``./data``.
        download: download torchvision's copy into the root when none is found.
        train_subset: number of training images (class-balanced, seeded draw), 1 to 50,000;
            ``None`` for all of them.
        test_subset: number of test images to evaluate on, 1 to 10,000; ``None`` for all of them.
        output_dir: parent folder of run folders (each run gets a new one).
        loader: ``"albumentations"`` (DataLoader, per-image CPU augmentation; the reference path)
            or ``"device"`` (whole data set on the training device, augmented there in batches).
        num_workers: DataLoader worker processes; ``None`` = 0 on CPU, else the number of cores (max 8).
        channels_last: use the channels-last memory format (faster convolutions on GPUs and most CPUs).
        amp: mixed precision chosen by the device (:func:`cifarhelpers.precision.select_precision`):
            bf16 autocast on CUDA GPUs of compute capability >= 8.0, fp16 autocast with a
            GradScaler on older ones (T4, V100), fp32 on CPU and MPS. False: fp32 everywhere.
        compile: wrap the model in ``torch.compile``.
        resume: a run folder to continue from its last checkpoint; ``None`` starts fresh.
    """

    model: str = "custom_resnet"
    recipe: str = "onecycle_adam"
    transform_set: str = "cutout8"
    epochs: int = 24
    batch_size: int = 512
    max_lr: float | None = None
    min_lr: float | None = None
    pct_start: float = 5 / 24
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    download: bool = False
    train_subset: int | None = None
    test_subset: int | None = None
    output_dir: str = "runs"
    loader: str = "albumentations"
    num_workers: int | None = None
    channels_last: bool = True
    amp: bool = True
    compile: bool = False
    resume: str | None = None

    def __post_init__(self) -> None:
        from .models import MODEL_NAMES
        from .recipes import RECIPES
        from .transforms import TRANSFORM_SETS

        _choice("model", self.model, MODEL_NAMES)
        _choice("recipe", self.recipe, tuple(RECIPES))
        _choice("transform_set", self.transform_set, tuple(TRANSFORM_SETS))
        _choice("loader", self.loader, LOADERS)
        _integer("epochs", self.epochs, minimum=1)
        _integer("batch_size", self.batch_size, minimum=1)
        _integer("seed", self.seed, minimum=0)
        _integer("train_subset", self.train_subset, minimum=1, optional=True)
        _integer("test_subset", self.test_subset, minimum=1, optional=True)
        _subset("train_subset", self.train_subset, CIFAR10_TRAIN_IMAGES, "training")
        _subset("test_subset", self.test_subset, CIFAR10_TEST_IMAGES, "test")
        _integer("num_workers", self.num_workers, minimum=0, optional=True)
        _real("max_lr", self.max_lr, low=0.0, low_open=True, optional=True)
        _real("min_lr", self.min_lr, low=0.0, low_open=True, optional=True)
        _real("pct_start", self.pct_start, low=0.0, high=1.0, low_open=True, high_open=True)
        _real("weight_decay", self.weight_decay, low=0.0)
        _real("label_smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        for name in ("download", "channels_last", "amp", "compile"):
            _boolean(name, getattr(self, name))
        for name in ("data_root", "resume", "output_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):  # accept pathlib.Path; store the str
                object.__setattr__(self, name, os.fspath(value))
        for name in ("data_root", "resume"):
            _text(name, getattr(self, name), optional=True)
        _text("output_dir", self.output_dir)
        _text("device", self.device)
        if not _DEVICE_PATTERN.match(self.device):
            raise ConfigError(
                f"device={self.device!r} is not a known device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
            )
        if self.max_lr is not None and self.min_lr is not None and self.min_lr > self.max_lr:
            raise ConfigError(f"min_lr={self.min_lr} is above max_lr={self.max_lr}: min_lr must be <= max_lr")
        if self.loader == "device" and self.transform_set != "cutout8":
            raise ConfigError(
                f"loader='device' implements transform_set='cutout8' only, got {self.transform_set!r}: "
                "use loader='albumentations' for other augmentation sets"
            )

    # -- derived values -------------------------------------------------------------------
    @property
    def resolved_max_lr(self) -> float:
        """``max_lr``, or the recipe's default when it is ``None``."""
        from .recipes import RECIPES

        return self.max_lr if self.max_lr is not None else RECIPES[self.recipe].default_lr

    @property
    def resolved_min_lr(self) -> float:
        """``min_lr``, or ``max_lr / 10`` when it is ``None``."""
        return self.min_lr if self.min_lr is not None else self.resolved_max_lr / 10.0

    # -- conversion -----------------------------------------------------------------------
    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied, validated again. Unknown names raise ConfigError."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. a ``metrics.json`` or checkpoint), validating every value.

        Raises:
            ConfigError: an unknown key (the message lists the valid ones) or an invalid value.
        """
        _check_names(values)
        return cls(**values)


def profile_overrides(profile: str, device_type: str) -> dict[str, Any]:
    """Config changes for a run profile.

    Args:
        profile: ``"full"`` (the recipe as configured), ``"short"`` (:data:`SHORT_PROFILE`) or
            ``"auto"`` (full on CUDA, short elsewhere).
        device_type: ``torch.device.type`` of the training device (``"cuda"``, ``"cpu"``, ``"mps"``).

    Raises:
        ConfigError: unknown profile.
    """
    _choice("profile", profile, PROFILES)
    if profile == "auto":
        profile = "full" if device_type == "cuda" else "short"
    return dict(SHORT_PROFILE) if profile == "short" else {}


# ------------------------------------------------------------------------------------------
# Validators: each raises ConfigError naming the field, the value and what is allowed.
# ------------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check_names(values: dict[str, Any]) -> None:
    valid = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; valid fields are {sorted(valid)}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={_describe(value)} is invalid: choose one of {list(choices)}")


def _integer(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if optional else ""
        raise ConfigError(f"{name}={_describe(value)} is invalid: it must be an integer >= {minimum}{extra}")


def _real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
    hi = "" if high is None else (f"< {high}" if high_open else f"<= {high}")
    rule = " and ".join(r for r in (lo, hi) if r)
    extra = " or None" if optional else ""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low is None or (value > low if low_open else value >= low)) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ConfigError(f"{name}={_describe(value)} is invalid: it must be a finite number {rule}{extra}")


def _subset(name: str, value: int | None, available: int, split: str) -> None:
    if value is not None and value > available:
        raise ConfigError(f"{name}={value} is out of range: it must be an integer from 1 to {available:,} (CIFAR-10 "
                          f"has {available:,} {split} images); use None for all of them")


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={_describe(value)} is invalid: it must be True or False")


def _text(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or value == "":
        extra = " or None" if optional else ""
        raise ConfigError(f"{name}={_describe(value)} is invalid: it must be a non-empty string{extra}")
