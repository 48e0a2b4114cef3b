"""One validated configuration object per training run, and the run profiles.

Example::

    from cifarhelpers.training import TrainConfig
    cfg = TrainConfig(epochs=24, batch_size=512, max_lr=0.005)    # validated here
    cfg = cfg.replace(train_subset=4096)                           # validated again
    TrainConfig(epochs=0)      # ConfigError: epochs=0 is invalid: ... (must be an integer >= 1)
    TrainConfig.field_help()["max_lr"]                             # what a field means, its unit and range
    TrainConfig.preset(model="resnet18")                           # its own recipe, epochs, warm-up
    TrainConfig.preset(recipe="onecycle_sgd", epochs=10)           # cifar10-fast's recipe; changes win

Every field is checked in ``__post_init__`` (type and range, with the valid range or choices in
the message), so a bad value from the CLI, a notebook parameter or papermill's ``-p`` stops the
run before any data is read or anything is written. Each field's help text sits beside it
(``metadata["help"]``); ``cifar-train --help`` shows it.

``TrainConfig()`` is the main job (the custom ResNet, ``onecycle_adam``, 24 epochs of batch 512).
:meth:`TrainConfig.preset` builds any other run from its parts' own settings, in this order: the model's
(``cifarhelpers.models.MODEL_DEFAULTS``: recipe, epochs, batch size, transform set, warm-up), then the
recipe's (``cifarhelpers.training.recipes.Recipe.defaults``: weight decay, label smoothing, logit scale, LRMIN, end
LR), then the changes given. ``cifar-train``, ``cifar-sweep`` and the notebooks build their configs this way,
with the profile's changes and the flags or parameters given on top.

Profiles (:data:`PROFILES`, resolved by :func:`resolve_profile`) scale a run to the machine:

=========  ===============================================================================
profile    changes to the config
=========  ===============================================================================
``full``   none: the preset as it is (all 50,000 training images; the main job: 24 epochs of
           batch 512; a 100-iteration LR range test)
``short``  4,096 training and 2,000 test images, 2 epochs, batch 128, a 30-iteration LR range
           test: a few minutes on 2 CPU cores
``auto``   ``full`` on a CUDA GPU, ``short`` elsewhere
=========  ===============================================================================

Notebook 07's LR sweep (``Profile.sweep``): ``full`` sweeps the main job itself over LRMAX 5e-4, 1e-3,
2e-3, 5e-3, 1e-2, 2e-2 with 3 seeds; ``short`` sweeps LRMAX 1e-3 and 1e-2 with 2 seeds on the
DilatedNet, 2,048 training and 500 test images, 2 epochs of batch 64 (a couple of minutes on 2 CPU
cores: the mechanics, not the answer).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cifarhelpers.checks import check_boolean, check_choice, check_integer, check_real, check_text
from cifarhelpers.data import SPLIT_SIZES, TRANSFORM_SETS, check_device_transform_set
from cifarhelpers.errors import ConfigError
from cifarhelpers.models import MODEL_DEFAULTS, MODEL_NAMES

from .lr_suggestions import DEFAULT_RULE, RULES, SKIP_END, SKIP_START
from .recipes import LABEL_SMOOTHING, RECIPES

LOADERS = ("auto", "albumentations", "device")  # "auto": cifarhelpers.training.loaders.resolved_loader
#: Images in CIFAR-10's splits: no subset can be larger (a smaller copy is checked once loaded).
CIFAR10_TRAIN_IMAGES = SPLIT_SIZES["train"]
CIFAR10_TEST_IMAGES = SPLIT_SIZES["test"]
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: ``max_lr`` value that runs the LR range test before training and trains at its suggestion.
FIND_LR = "find"
#: Fewest LR range test iterations a suggestion can come from (the curve's ends are skipped).
MIN_LR_TEST_ITERATIONS = SKIP_START + SKIP_END + 2


@dataclass(frozen=True)
class Profile:
    """A run profile: how much work a run does (see the module docstring's table).

    Attributes:
        name: ``"full"`` or ``"short"``.
        description: one line for messages and ``--help``.
        overrides: config fields the profile sets (empty for ``full``: the defaults are the recipe).
        sweep: notebook 07's LR sweep: ``max_lrs`` (the grid), ``seeds`` (how many) and
            ``overrides`` (config fields its trials change on top of ``overrides``).
    """

    name: str
    description: str
    overrides: MappingProxyType
    sweep: MappingProxyType


#: The run profiles by name; ``"auto"`` (:data:`PROFILE_CHOICES`) picks one by device.
PROFILES: dict[str, Profile] = {
    "short": Profile("short", "4,096 training and 2,000 test images, 2 epochs, batch 128, a 30-iteration LR range "
                              "test: a few minutes on 2 CPU cores, the mechanics rather than the recipe's accuracy",
                     MappingProxyType({"epochs": 2, "train_subset": 4096, "test_subset": 2000, "batch_size": 128,
                                       "lr_test_iterations": 30}),
                     MappingProxyType({"max_lrs": (1e-3, 1e-2), "seeds": 2, "overrides": MappingProxyType({
                         "model": "dilated_net", "recipe": "onecycle_adam", "transform_set": "cutout8",  # the main
                         "train_subset": 2048, "test_subset": 500, "batch_size": 64})})),  # job's recipe, not the net's
    "full": Profile("full", "the config as given: all 50,000 training images, the model's own epochs and batch "
                            "(the main job: 24 epochs of batch 512), a 100-iteration LR range test",
                    MappingProxyType({}),
                    MappingProxyType({"max_lrs": (5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2), "seeds": 3,
                                      "overrides": MappingProxyType({})})),
}
PROFILE_CHOICES = ("auto", *PROFILES)


def resolve_profile(profile: str, device_type: str) -> Profile:
    """The :class:`Profile` for ``profile``: ``"full"``, ``"short"``, or ``"auto"`` (full on a CUDA
    GPU, short elsewhere).

    Args:
        profile: one of :data:`PROFILE_CHOICES`.
        device_type: ``torch.device.type`` of the training device (``"cuda"``, ``"cpu"``, ``"mps"``).

    Raises:
        ConfigError: unknown profile.
    """
    check_choice("profile", profile, PROFILE_CHOICES)
    if profile == "auto":
        profile = "full" if device_type == "cuda" else "short"
    return PROFILES[profile]


def _field(default: Any, help: str) -> Any:  # noqa: A002 - argparse's word
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; the defaults are the main job's recipe (:meth:`preset` builds others).

    Each field's meaning, unit and valid range is its help text (:meth:`field_help`).

    Raises:
        ConfigError: a field's value is invalid (named, with its valid range or choices).
    """

    model: str = _field("custom_resnet", f"model registry name, one of {list(MODEL_NAMES)}; cifar-train, cifar-sweep "
                                         "and the notebooks take its own recipe, epochs, batch size, transform set "
                                         "and warm-up (cifarhelpers.models.MODEL_DEFAULTS)")
    recipe: str = _field("onecycle_adam", f"optimizer and LR schedule, one of {list(RECIPES)} "
                                          "(cifarhelpers.training.recipes); cifar-train, cifar-sweep and the notebooks take its "
                                          "own weight decay, label smoothing, logit scale, LRMIN and end LR")
    transform_set: str = _field("cutout8", f"augmentation set, one of {list(TRANSFORM_SETS)}")
    epochs: int = _field(24, "passes over the training set, >= 1")
    batch_size: int = _field(512, "images per optimizer step, >= 1")
    max_lr: float | str | None = _field(None, "OneCycle's peak LR (LRMAX) or the SGD recipes' starting LR (after "
                                              "any warm-up), finite > 0; None takes the recipe's default; 'find' runs "
                                              "the LR range test first and trains at its suggestion (lr_rule)")
    min_lr: float | None = _field(None, "OneCycle's start LR (LRMIN; OneCycleLR's max_lr / div_factor), 0 <= min_lr "
                                        "<= max_lr (0 only for onecycle_sgd); None means max_lr / 10; the other "
                                        "recipes ignore it")
    end_lr: float | None = _field(None, "OneCycle's end LR (OneCycleLR's LRMIN / final_div_factor), 0 <= end_lr <= "
                                        "max_lr; None means LRMIN (final_div_factor 1: no annealing below LRMIN); "
                                        "the other recipes ignore it")
    lr_test_iterations: int = _field(100, f"iterations of the LR range test (max_lr='find', notebook 03), >= "
                                          f"{MIN_LR_TEST_ITERATIONS}")
    lr_rule: str = _field(DEFAULT_RULE, f"how the LR range test suggests LRMAX, one of {list(RULES)} "
                                        "(cifarhelpers.training.lr_suggestions)")
    pct_start: float = _field(5 / 24, "fraction of the steps rising to max_lr (the OneCycle recipes), in (0, 1); "
                                      "5/24 puts the peak at the end of epoch 5 of 24")
    warmup_epochs: int = _field(0, "epochs of linear warm-up before plateau_sgd's or step_sgd's schedule (per batch, "
                                   "from 0 to max_lr), >= 0; 0: none; the OneCycle recipes ignore it")
    weight_decay: float = _field(0.0, "L2 penalty passed to the optimizer, >= 0")
    label_smoothing: float = _field(LABEL_SMOOTHING, "CrossEntropyLoss label smoothing, in [0, 1)")
    logit_scale: float = _field(1.0, "the model's logits are multiplied by it, finite > 0; 1.0: unscaled "
                                     "(cifar10-fast's ResNet-9: 0.125)")
    seed: int = _field(0, "seed of initialization, subset draws and augmentation, >= 0")
    device: str = _field("auto", "'auto' (CUDA if available, else MPS, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'")
    data_root: str | None = _field(None, "CIFAR-10 folder; None means $CIFAR10_ROOT, else ./data")
    download: bool = _field(False, "download torchvision's copy into the root when none is found (needs internet)")
    train_subset: int | None = _field(None, f"training images (a class-balanced, seeded draw), 1 to "
                                            f"{CIFAR10_TRAIN_IMAGES:,}; None for all of them")
    test_subset: int | None = _field(None, f"test images to evaluate on, 1 to {CIFAR10_TEST_IMAGES:,}; None for "
                                           "all of them")
    output_dir: str = _field("runs", "parent folder of run folders (each run gets a new one)")
    loader: str = _field("auto", "'auto' (the device loader on a CUDA GPU when it implements the transform set, "
                                 "else albumentations), 'albumentations' (DataLoader, per-image CPU augmentation; the "
                                 "reference path) or 'device' (the whole data set on the training device, augmented "
                                 "there in batches)")
    num_workers: int | None = _field(None, "DataLoader worker processes, >= 0; None: 0 on a CPU, else the number "
                                           "of cores (at most 8)")
    channels_last: bool = _field(True, "use the channels-last memory format (faster convolutions on GPUs)")
    amp: bool = _field(True, "mixed precision chosen by the device: bf16 autocast on CUDA GPUs of compute "
                             "capability >= 8.0, fp16 with a GradScaler on older ones (T4, V100), fp32 on CPU and "
                             "MPS (cifarhelpers.training.precision); False: fp32 everywhere")
    compile: bool = _field(False, "wrap the model in torch.compile")
    resume: str | None = _field(None, "a run folder to continue from its last checkpoint; None starts fresh")

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODEL_NAMES)
        check_choice("recipe", self.recipe, tuple(RECIPES))
        check_choice("transform_set", self.transform_set, tuple(TRANSFORM_SETS))
        check_choice("loader", self.loader, LOADERS)
        check_integer("epochs", self.epochs, minimum=1)
        check_integer("batch_size", self.batch_size, minimum=1)
        check_integer("seed", self.seed, minimum=0)
        check_integer("train_subset", self.train_subset, minimum=1, optional=True)
        check_integer("test_subset", self.test_subset, minimum=1, optional=True)
        _subset("train_subset", self.train_subset, CIFAR10_TRAIN_IMAGES, "training")
        _subset("test_subset", self.test_subset, CIFAR10_TEST_IMAGES, "test")
        check_integer("num_workers", self.num_workers, minimum=0, optional=True)
        if self.max_lr != FIND_LR:
            check_real("max_lr", self.max_lr, low=0.0, low_open=True, optional=True)
        check_integer("lr_test_iterations", self.lr_test_iterations, minimum=MIN_LR_TEST_ITERATIONS)
        check_choice("lr_rule", self.lr_rule, tuple(RULES))
        check_real("min_lr", self.min_lr, low=0.0, optional=True)
        check_real("end_lr", self.end_lr, low=0.0, optional=True)
        check_integer("warmup_epochs", self.warmup_epochs, minimum=0)
        check_real("logit_scale", self.logit_scale, low=0.0, low_open=True)
        check_real("pct_start", self.pct_start, low=0.0, high=1.0, low_open=True, high_open=True)
        check_real("weight_decay", self.weight_decay, low=0.0)
        check_real("label_smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        for name in ("download", "channels_last", "amp", "compile"):
            check_boolean(name, getattr(self, name))
        for name in ("data_root", "resume", "output_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):  # accept pathlib.Path; store the str
                object.__setattr__(self, name, os.fspath(value))
        for name in ("data_root", "resume"):
            check_text(name, getattr(self, name), optional=True)
        check_text("output_dir", self.output_dir)
        check_text("device", self.device)
        if not _DEVICE_PATTERN.match(self.device):
            raise ConfigError(
                f"device={self.device!r} is not a known device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
            )
        _check_lrs(self)
        check_device_transform_set(self.loader, self.transform_set)

    # -- derived values -------------------------------------------------------------------
    @property
    def resolved_max_lr(self) -> float:
        """``max_lr``, or the recipe's default when it is ``None``.

        Raises:
            ConfigError: ``max_lr`` is ``"find"``: :func:`~cifarhelpers.training.train.fit` resolves it with
                the LR range test first.
        """
        if self.max_lr == FIND_LR:
            raise ConfigError("max_lr='find' has no value until the LR range test ran: fit() runs it first")
        return self.max_lr if self.max_lr is not None else RECIPES[self.recipe].default_lr

    @property
    def resolved_min_lr(self) -> float:
        """``min_lr``, or ``max_lr / 10`` when it is ``None``."""
        return self.min_lr if self.min_lr is not None else self.resolved_max_lr / 10.0

    @property
    def resolved_end_lr(self) -> float:
        """OneCycle's end LR: ``end_lr``, or LRMIN (:attr:`resolved_min_lr`) when it is ``None``."""
        return self.end_lr if self.end_lr is not None else self.resolved_min_lr

    @classmethod
    def preset(cls, model: str = "custom_resnet", recipe: str | None = None, **changes: Any) -> TrainConfig:
        """A validated config with ``model``'s own settings (``MODEL_DEFAULTS``: recipe, epochs, batch size,
        transform set, warm-up), then the recipe's own (``recipe``, else the model's;
        :attr:`~cifarhelpers.training.recipes.Recipe.defaults`: weight decay, label smoothing, logit scale, LRMIN,
        end LR), then ``changes``. ``TrainConfig.preset()`` equals ``TrainConfig()``, the main job.

        Raises:
            ConfigError: an unknown model, recipe or field name (the message lists the valid ones) or an
                invalid value.
        """
        check_choice("model", model, MODEL_NAMES)
        _check_names(changes)
        own = MODEL_DEFAULTS[model]
        recipe = own["recipe"] if recipe is None else recipe
        check_choice("recipe", recipe, tuple(RECIPES))
        return cls(**{**own, **RECIPES[recipe].defaults, **changes, "model": model, "recipe": recipe})

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

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Each field's help text (meaning, unit, valid range), by field name."""
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}


#: The names of :class:`TrainConfig`'s fields, in declaration order.
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))


# ------------------------------------------------------------------------------------------
# Checks that need this module's facts; the general validators are in checks.py.
# ------------------------------------------------------------------------------------------

def _check_lrs(cfg: TrainConfig) -> None:
    """LRMIN and the end LR against the recipe and LRMAX (the recipe's default when max_lr is None)."""
    recipe = RECIPES[cfg.recipe]
    if cfg.min_lr == 0 and recipe.uses_min_lr and not recipe.min_lr_may_be_zero:
        raise ConfigError(f"min_lr=0 is invalid with recipe={cfg.recipe!r}: PyTorch's OneCycleLR starts at max_lr / "
                          "div_factor (div_factor = max_lr / min_lr), which cannot be 0; give min_lr > 0, None "
                          "(max_lr / 10), or use recipe='onecycle_sgd', whose piecewise-linear LR starts at 0")
    for name in ("min_lr", "end_lr"):
        value = getattr(cfg, name)
        if cfg.max_lr == FIND_LR and value not in (None, 0):
            raise ConfigError(f"{name}={value} with max_lr='find': LRMIN is the found LRMAX / 10 and the end LR LRMIN; "
                              f"leave {name} None (or 0), or give max_lr as a number")
        if cfg.max_lr != FIND_LR and value is not None and value > cfg.resolved_max_lr:
            source = "" if cfg.max_lr is not None else f" (the default of recipe {cfg.recipe!r})"
            raise ConfigError(f"{name}={value} is above max_lr={cfg.resolved_max_lr}{source}: {name} must be <= "
                              f"max_lr; lower {name} or raise max_lr")


def _check_names(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; valid fields are {sorted(FIELD_NAMES)}")


def _subset(name: str, value: int | None, available: int, split: str) -> None:
    if value is not None and value > available:
        raise ConfigError(f"{name}={value} is out of range: it must be an integer from 1 to {available:,} (CIFAR-10 "
                          f"has {available:,} {split} images); use None for all of them")
