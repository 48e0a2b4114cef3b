"""What a sweep is: :class:`SweepConfig`, the one validated config object of a sweep, and its trial list.

Example::

    from cifarhelpers.training import TrainConfig
    from cifarhelpers.sweep import SweepConfig
    spec = SweepConfig(base=TrainConfig(model="dilated_net", epochs=2),
                       grid={"max_lr": [1e-3, 1e-2], "weight_decay": [0.0, 5e-4]}, seeds=(0, 1))
    len(spec.trials())     # 8: 2 x 2 configs x 2 seeds, each a validated TrainConfig
    SweepConfig(grid={"max_lrr": [0.01]})   # ConfigError: unknown field 'max_lrr' ... did you mean 'max_lr'?

A sweep is a grid (``grid``: ``{field: [values]}``, every combination) and/or a random search
(``random``: ``{field: distribution}``, ``num_samples`` draws per grid point, seeded by
``search_seed``), times ``seeds``. Distributions are tuples: ``("loguniform", low, high)``,
``("uniform", low, high)``, ``("randint", low, high)`` (both ends included) and
``("choice", [values])``. Every field must be a :class:`~cifarhelpers.training.config.TrainConfig` field and
every trial's TrainConfig is built, so validated by TrainConfig itself, when the SweepConfig is made:
a bad grid stops before any trial starts. Where trials run (``backend``, ``address``,
``resources_per_trial``, ``max_concurrent_trials``) is part of the config too; running it is
:func:`cifarhelpers.sweep.runner.run_sweep`.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cifarhelpers.checks import check_choice, check_integer, check_real, check_text
from cifarhelpers.errors import ConfigError
from cifarhelpers.models import MODEL_DEFAULTS
from cifarhelpers.training import FIELD_NAMES, TrainConfig

BACKENDS = ("auto", "ray", "sequential")
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
#: Fields a sweep sets itself (or that must be the same in every trial), with what to do instead.
NOT_SWEPT = {
    "seed": "list the seeds in seeds=... (--seeds 0 1 2): every config runs once per seed",
    "output_dir": "the sweep puts each trial's run folder in its own sweep folder: set SweepConfig.output_dir",
    "resume": "resume a sweep with resume_sweep(folder) (cifar-sweep --resume FOLDER)",
    "data_root": "every trial reads the same copy: set it in the base config (--data-root DIR)",
    "download": "set it in the base config (--download)",
}


@dataclass(frozen=True)
class Trial:
    """One run of a sweep.

    Attributes:
        index: position in the trial list (0-based).
        name: folder-safe name, e.g. ``"t03_max_lr=0.01_seed=1"``.
        params: the swept values of this trial, seed included, e.g. ``{"max_lr": 0.01, "seed": 1}``.
        config: its validated :class:`TrainConfig` (``output_dir`` set by the sweep when it runs).
    """

    index: int
    name: str
    params: dict[str, Any]
    config: TrainConfig

    @property
    def config_key(self) -> tuple:
        """The swept values without the seed: trials with the same key differ only by seed."""
        return tuple((k, v) for k, v in self.params.items() if k != "seed")


def _check_field(name: Any, where: str) -> None:
    if name not in FIELD_NAMES:
        close = difflib.get_close_matches(str(name), FIELD_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown field {name!r} in the sweep's {where}{hint}: sweep TrainConfig fields, one of "
                          f"{sorted(set(FIELD_NAMES) - set(NOT_SWEPT))}")
    if name in NOT_SWEPT:
        raise ConfigError(f"the sweep's {where} cannot vary {name!r}: {NOT_SWEPT[name]}")


def _check_distribution(name: str, spec: Any) -> tuple:
    if isinstance(spec, list):
        spec = tuple(spec)
    if not (isinstance(spec, tuple) and spec and spec[0] in DISTRIBUTIONS):
        raise ConfigError(f"random[{name!r}]={spec!r} is not a distribution: use ('loguniform', low, high), "
                          "('uniform', low, high), ('randint', low, high) or ('choice', [values])")
    kind = spec[0]
    if kind == "choice":
        if len(spec) != 2 or not isinstance(spec[1], (list, tuple)) or not spec[1]:
            raise ConfigError(f"random[{name!r}]={spec!r}: 'choice' takes one non-empty list, e.g. ('choice', [0, 5e-4])")
        return ("choice", tuple(spec[1]))
    if len(spec) != 3:
        raise ConfigError(f"random[{name!r}]={spec!r}: {kind!r} takes two bounds, e.g. ({kind!r}, 1e-4, 1e-1)")
    low, high = spec[1], spec[2]
    if kind == "randint":
        check_integer(f"random[{name!r}] low", low, minimum=-(2**62))
        check_integer(f"random[{name!r}] high", high, minimum=low)
    else:
        check_real(f"random[{name!r}] low", low, low=0.0 if kind == "loguniform" else None,
                   low_open=kind == "loguniform")
        check_real(f"random[{name!r}] high", high, low=low, low_open=True)
    return (kind, low, high)


def sample(spec: tuple, rng: random.Random) -> Any:
    """One draw from a validated distribution ``spec`` (see the module docstring)."""
    kind = spec[0]
    if kind == "choice":
        return rng.choice(spec[1])
    if kind == "randint":
        return rng.randint(spec[1], spec[2])
    if kind == "uniform":
        return rng.uniform(spec[1], spec[2])
    return math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2])))


def _label(value: Any) -> str:
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+=-]", "-", text)  # safe in a folder name on any OS


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs; validated on creation, trial list included.

    Attributes:
        base: the TrainConfig every trial starts from (its ``seed`` and ``output_dir`` are replaced).
        grid: ``{field: [values]}``: every combination is a config.
        random: ``{field: distribution}`` (module docstring): ``num_samples`` draws per grid point.
        num_samples: random draws per grid point, >= 1 (1 without ``random``).
        seeds: each config runs once per seed (non-empty, distinct integers >= 0).
        search_seed: seed of the random search's draws, >= 0.
        backend: ``"auto"`` (Ray Tune when importable, else sequential), ``"ray"`` or ``"sequential"``.
        address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None
            starts Ray in-process on this machine. Needs the Ray backend.
        resources_per_trial: ``{"cpu": n, "gpu": g}`` for Ray (fractional GPUs share one GPU, e.g.
            0.25 runs four trials per GPU); None: 1 CPU, and 0.25 GPU on a machine with CUDA, else 0.
        max_concurrent_trials: at most this many trials at once (Ray), >= 1; None: as resources allow.
        output_dir: parent of the sweep folder (``<output_dir>/sweep-<timestamp>``, never reused).

    Raises:
        ConfigError: an unknown or unsweepable field, an empty grid or value list, a bad
            distribution, seeds or resources, or any trial's TrainConfig is invalid (named).
    """

    base: TrainConfig = field(default_factory=TrainConfig)
    grid: Mapping[str, Any] = field(default_factory=dict)
    random: Mapping[str, Any] = field(default_factory=dict)
    num_samples: int = 1
    seeds: tuple[int, ...] = (0,)
    search_seed: int = 0
    backend: str = "auto"
    address: str | None = None
    resources_per_trial: Mapping[str, float] | None = None
    max_concurrent_trials: int | None = None
    output_dir: str = "runs"

    def __post_init__(self) -> None:
        if not isinstance(self.base, TrainConfig):
            raise ConfigError(f"base={self.base!r} must be a TrainConfig")
        if self.base.resume is not None:
            raise ConfigError(f"base.resume={self.base.resume!r}: {NOT_SWEPT['resume']}")
        for name in ("grid", "random"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a dict {{field: ...}}")
        object.__setattr__(self, "grid", {k: self._values(k, v) for k, v in self.grid.items()})
        object.__setattr__(self, "random", {k: self._distribution(k, v) for k, v in self.random.items()})
        if not self.grid and not self.random:
            raise ConfigError("the sweep is empty: give grid={field: [values]} (--grid max_lr=0.001,0.01) and/or "
                              "random={field: distribution} (--random max_lr=loguniform:1e-4:1e-1)")
        both = sorted(set(self.grid) & set(self.random))
        if both:
            raise ConfigError(f"{both} appear in both grid and random: put each field in one of them")
        check_integer("num_samples", self.num_samples, minimum=1)
        if self.num_samples > 1 and not self.random:
            raise ConfigError(f"num_samples={self.num_samples} repeats random draws, but random is empty: repeat "
                              "a grid with more seeds instead")
        self._check_seeds()
        check_integer("search_seed", self.search_seed, minimum=0)
        check_choice("backend", self.backend, BACKENDS)
        check_text("address", self.address, optional=True)
        if self.address is not None and self.backend == "sequential":
            raise ConfigError(f"address={self.address!r} names a Ray cluster, but backend='sequential' runs here: "
                              "use backend='ray' or 'auto'")
        if self.resources_per_trial is not None:
            object.__setattr__(self, "resources_per_trial", _check_resources(self.resources_per_trial))
        check_integer("max_concurrent_trials", self.max_concurrent_trials, minimum=1, optional=True)
        check_text("output_dir", self.output_dir)
        self.trials()  # every trial's TrainConfig, validated now

    def _values(self, name: str, values: Any) -> tuple:
        _check_field(name, "grid")
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
            raise ConfigError(f"grid[{name!r}]={values!r} must be a list of values, e.g. {{{name!r}: [a, b]}}")
        if not values:
            raise ConfigError(f"grid[{name!r}] is an empty list: give at least one value, or leave {name!r} out")
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"grid[{name!r}]={list(values)!r} repeats a value: list each once (use seeds to repeat)")
        return tuple(values)

    def _distribution(self, name: str, spec: Any) -> tuple:
        _check_field(name, "random search")
        return _check_distribution(name, spec)

    def _check_seeds(self) -> None:
        seeds = self.seeds
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = (seeds,)
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ConfigError(f"seeds={self.seeds!r} must be a non-empty list of integers >= 0, e.g. (0, 1)")
        for seed in seeds:
            check_integer("seeds[...]", seed, minimum=0)
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds={list(seeds)} repeats a seed: list each once")
        object.__setattr__(self, "seeds", tuple(seeds))

    @property
    def swept(self) -> list[str]:
        """The swept fields, grid first, in the order given (the seed is not one)."""
        return [*self.grid, *self.random]

    def configs(self) -> list[dict[str, Any]]:
        """The swept values of each config (seed excluded), in run order: grid points in
        ``itertools.product`` order, each with ``num_samples`` random draws."""
        rng = random.Random(self.search_seed)
        points = [dict(zip(self.grid, combo)) for combo in itertools.product(*self.grid.values())]
        out = []
        for point in points:
            for _ in range(self.num_samples if self.random else 1):
                out.append({**point, **{name: sample(spec, rng) for name, spec in self.random.items()}})
        return out

    def trials(self, output_dir: str | None = None) -> list[Trial]:
        """Every trial (configs x seeds, seeds innermost) with its validated TrainConfig.

        Args:
            output_dir: the sweep folder's ``trials`` folder; each trial's runs go into
                ``<output_dir>/<trial name>``. None keeps ``base.output_dir`` (to validate only).

        Raises:
            ConfigError: a trial's config is invalid (the message names the trial and the field).
        """
        out = []
        for point in self.configs():
            for seed in self.seeds:
                index = len(out)
                params = {**point, "seed": seed}
                name = f"t{index:02d}_" + "_".join(f"{k}={_label(v)}" for k, v in params.items())
                where = self.base.output_dir if output_dir is None else os.path.join(output_dir, name)
                try:
                    cfg = trial_config(self.base, {**params, "output_dir": where})
                except ConfigError as err:
                    raise ConfigError(f"sweep trial {name} is invalid: {err}. Fix that value in the grid / random "
                                      "search or the base config.") from None
                out.append(Trial(index, name, params, cfg))
        return out

    def replace(self, **changes: Any) -> SweepConfig:
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``base`` as TrainConfig's dict, tuples as lists)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["base"] = self.base.to_dict()
        out["grid"] = {k: list(v) for k, v in self.grid.items()}
        out["random"] = {k: [v[0], list(v[1])] if v[0] == "choice" else list(v) for k, v in self.random.items()}
        out["seeds"] = list(self.seeds)
        out["resources_per_trial"] = None if self.resources_per_trial is None else dict(self.resources_per_trial)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SweepConfig:
        """Build from :meth:`to_dict`'s output (a ``sweep.json``), validating everything.

        Raises:
            ConfigError: an unknown key or an invalid value.
        """
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ConfigError(f"unknown sweep field(s) {unknown}; valid fields are {sorted(valid)}")
        values = dict(values)
        if isinstance(values.get("base"), Mapping):
            values["base"] = TrainConfig.from_dict(values["base"])
        return cls(**values)


def _check_resources(resources: Any) -> dict[str, float]:
    if not isinstance(resources, Mapping) or not resources or set(resources) - {"cpu", "gpu"}:
        raise ConfigError(f"resources_per_trial={resources!r} must be a dict with keys 'cpu' and/or 'gpu', "
                          "e.g. {'cpu': 1, 'gpu': 0.25}")
    out = {"cpu": resources.get("cpu", 1), "gpu": resources.get("gpu", 0)}
    check_real("resources_per_trial['cpu']", out["cpu"], low=0.0, low_open=True)
    check_real("resources_per_trial['gpu']", out["gpu"], low=0.0)
    if out["gpu"] > 1 and out["gpu"] != int(out["gpu"]):
        raise ConfigError(f"resources_per_trial['gpu']={out['gpu']!r}: above 1 GPU a trial takes whole GPUs "
                          "(Ray's rule); use e.g. 0.5 (two trials per GPU) or 2")
    return out


def trial_config(base: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """``base`` with a trial's ``changes``. A change of ``model`` or ``recipe`` brings that model's and recipe's
    own settings (:meth:`TrainConfig.preset`), as ``cifar-train --model`` does, and keeps every field ``base``
    sets apart from its own preset (the profile's sizes, flags given); other changes are plain replacements.

    Raises:
        ConfigError: an invalid value or field name.
    """
    if "model" not in changes and "recipe" not in changes:
        return base.replace(**changes)
    own = TrainConfig.preset(model=base.model, recipe=base.recipe)
    kept = {f: v for f, v in base.to_dict().items() if f not in ("model", "recipe") and v != getattr(own, f)}
    model = changes.get("model", base.model)
    recipe = changes.get("recipe", base.recipe if base.recipe != MODEL_DEFAULTS[base.model]["recipe"] else None)
    rest = {k: v for k, v in changes.items() if k not in ("model", "recipe")}
    return TrainConfig.preset(model=model, recipe=recipe, **{**kept, **rest})
