"""The GPU report's ``variants`` part: the main job under named config changes (``--variant NAME FIELD=VALUE
...``), to find a better default, each compared with the default by the project's rule (3 seeds each, a mean
beyond the default's spread) with Welch's t beside it.

Each variant is a :class:`cifarhelpers.sweep.SweepConfig` (:func:`variant_sweep`): its changes as a one-point grid
over the main job, times the report's seeds, in its own sweep folder. Its first seed runs with ``run_sweep``; the
finalists' other seeds continue the same sweep with ``resume_sweep``, seed by seed; each trial is admitted only
when it fits the budget (sequential backend, on the report's data). :func:`parse_variants` reads the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

from cifarhelpers.cli.train import field_parser
from cifarhelpers.errors import ConfigError
from cifarhelpers.sweep import SweepConfig, trial_config
from cifarhelpers.training import FIND_LR, TrainConfig

from .. import runs
from ..figures import accuracy_summary, compare_to_default, run_template
from ..settings import FULL, NOT_VARIED, main_config


def variant_sweep(base: TrainConfig, changes: dict, seeds, output_dir: str | Path = "runs") -> SweepConfig:
    """A variant as a sweep: ``changes`` as a one-point grid over ``base`` (a changed recipe or model brings its
    own settings and keeps what ``base`` sets, as in ``cifar-sweep``: ``cifarhelpers.sweep.trial_config``) on
    ``seeds``, sequentially, into ``output_dir``. The default (no changes) is the sweep over ``base``'s own recipe:
    ``base`` itself.

    Raises:
        ConfigError: a change the sweep refuses, or a trial's config TrainConfig rejects.
    """
    grid = {field: [value] for field, value in changes.items()} or {"recipe": [base.recipe]}
    return SweepConfig(base=base, grid=grid, seeds=tuple(dict.fromkeys(seeds)), backend="sequential",
                       output_dir=str(output_dir))


def parse_variants(items: list[list[str]], base: TrainConfig | None = None) -> list[tuple[str, dict]]:
    """``--variant NAME FIELD=VALUE ...`` (repeated) to ``[(name, {field: value})]``, each value parsed as
    ``cifar-train`` parses its flag, and ``base`` (the main job as the report runs it; default: the full
    settings') with the changes validated by :class:`TrainConfig` and as the variant's sweep.

    Raises:
        ConfigError: a name that is not folder-safe or is repeated, a pair that is not FIELD=VALUE, a field
            the report sets itself (``settings.NOT_VARIED``), ``max_lr=find``, or a value that TrainConfig rejects
            (named, with the fix).
    """
    base = base if base is not None else main_config(FULL)
    out: list[tuple[str, dict]] = []
    for name, *pairs in items:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            raise ConfigError(f"--variant name {name!r}: a variant's first word is its name (a folder name: letters, "
                              "digits and ._+-), then its FIELD=VALUE pairs, e.g. --variant wd5e-4 weight_decay=5e-4")
        if name in dict(out):
            raise ConfigError(f"--variant {name!r} is given twice: give each variant a name of its own")
        changes = {}
        for pair in pairs:
            field, sep, text = pair.partition("=")
            field = field.strip().replace("-", "_")
            if not sep or not field or not text:
                raise ConfigError(f"--variant {name}: {pair!r} is not FIELD=VALUE, e.g. weight_decay=5e-4")
            if field in NOT_VARIED:
                raise ConfigError(f"--variant {name}: {field} is set by the report for every run; leave it out")
            if field not in {f.name for f in dataclasses.fields(TrainConfig)}:
                TrainConfig().replace(**{field: text})  # raises ConfigError naming the field and the close ones
            try:
                changes[field] = field_parser(field)(text.strip())
            except argparse.ArgumentTypeError as err:
                raise ConfigError(f"--variant {name}: {field}={text!r}: {err}") from None
            if field == "max_lr" and changes[field] == FIND_LR:
                raise ConfigError(f"--variant {name}: max_lr=find would run the LR range test before training: give "
                                  "LRMAX as a number (the lr_sweep part runs the range test and trains at its "
                                  "suggestion)")
        try:
            base.replace(**changes)  # validated together and against the report's main job (e.g. min_lr <= max_lr)
            variant_sweep(base, changes, (0,))  # and as the sweep builds it (a recipe brings its own settings)
        except ConfigError as err:
            raise ConfigError(f"--variant {name}: {err}") from None
        out.append((name, changes))
    return out


def run(ctx, part: dict) -> None:
    """The main job under each variant (named TrainConfig changes), to find a better default.

    1. Every variant on the first seed, in the order given (most informative first, in case the budget
       runs out).
    2. The best ``variant_top_k`` by that seed's test accuracy (``finalists``) on each other seed, seed by
       seed, so that the finalists keep the same number of seeds when time runs short.

    A variant whose config equals the main job's reuses part 1's run of each seed part 1 completed (on
    every seed, finalist or not: it costs nothing) and is trained only where part 1 has no run. A run that
    fails or diverges is recorded and the part goes on. ``summary`` holds each variant's accuracy over
    its seeds (``figures.accuracy_summary``, percent); ``best`` is the highest mean test accuracy among the
    variants run on the most seeds. ``decisions`` compares each variant with the default (the variant whose
    config is the main job's, else part 1's runs; named in ``reference``) by ``figures.compare_to_default``:
    difference in points, the default's spread, Welch's t; ``adopted`` lists the variants that earn a change
    of default (best first). Give ``--variant-top-k`` the number of variants to run every one on every seed.
    """
    base = ctx.main_config()
    seeds = ctx.seeds or [base.seed]
    changes_by_name = dict(ctx.variants)
    configs = {name: trial_config(base, changes) for name, changes in ctx.variants}
    part["variants"] = [{"name": name, "overrides": changes} for name, changes in ctx.variants]
    part["top_k"] = ctx.variant_top_k
    sweep_dirs: dict[str, Path] = {}

    def main_job_run(seed: int) -> dict | None:
        return next((r for r in ctx.part("main_job")["runs"] if r["seed"] == seed and r["status"] == "completed"
                     and r["epochs_run"] == base.epochs), None)

    def run_variant(name: str, seed: int, *, train: bool = True) -> None:
        label = f"{name}-seed{seed}"
        reused = main_job_run(seed) if configs[name] == base else None
        if reused is not None:
            rec = ctx.reuse("variants", label, reused, "the main job's run of this seed (the same config), not "
                                                       "trained again")
        elif not train:
            return
        else:
            est = ctx.estimate_main(configs[name].epochs)
            if not ctx.decide("variants", label, est):
                return
            rec = {**run_template(label), "estimate_seconds": est, "epochs_target": configs[name].epochs}
        rec.update(variant=name, overrides=changes_by_name[name])
        part["runs"].append(rec)
        if reused is None:  # the variant's sweep, this seed's trial only (started, or continued: resume_sweep)
            spec = None if name in sweep_dirs else variant_sweep(base, changes_by_name[name], seeds,
                                                                  ctx.work_dir / "variants" / name)
            result = runs.run_trials(ctx, "variants", lambda trial: rec if trial.params["seed"] == seed else None,
                                     spec=spec, sweep_dir=sweep_dirs.get(name))
            sweep_dirs[name] = result.sweep_dir
        part["summary"] = {n: accuracy_summary([r for r in part["runs"] if r["variant"] == n]) for n in configs}
        ctx.save()

    for name in configs:
        run_variant(name, seeds[0])
    first = {r["variant"]: r["test_accuracy_percent"] for r in part["runs"]
             if r["seed"] == seeds[0] and r["test_accuracy_percent"] is not None}
    part["finalists"] = sorted(first, key=lambda n: -first[n])[:ctx.variant_top_k]
    ctx.save()
    unchanged = [n for n in configs if configs[n] == base and n not in part["finalists"]]
    for seed in seeds[1:]:
        for name in part["finalists"] + unchanged:  # the best first, in case time runs short
            run_variant(name, seed, train=name in part["finalists"])
    _decide(ctx, part, configs, base, changes_by_name)
    ctx.save()


def _decide(ctx, part: dict, configs: dict, base: TrainConfig, changes_by_name: dict) -> None:
    """Each variant against the default (``decisions``, ``adopted``) and the best on the most seeds (``best``)."""
    reference = next((n for n in configs if configs[n] == base), None)
    accuracies = {n: [r["test_accuracy_percent"] for r in part["runs"]
                      if r["variant"] == n and r["test_accuracy_percent"] is not None] for n in configs}
    if reference is None:  # no variant is the default itself: compare with the main job's own runs
        accuracies[reference] = [r["test_accuracy_percent"] for r in ctx.part("main_job")["runs"]
                                 if r["test_accuracy_percent"] is not None and r["epochs_run"] == base.epochs]
    part["reference"] = reference or "main_job"
    part["decisions"] = {n: compare_to_default(accuracies[reference], accuracies[n]) for n in configs if n != reference}
    part["adopted"] = sorted((n for n, d in part["decisions"].items() if d["adopt"]),
                             key=lambda n: -part["decisions"][n]["difference_points"])
    ranked = [(n, s) for n, s in part["summary"].items() if s["test_accuracy_percent_mean"] is not None]
    if ranked:
        most = max(s["runs_completed"] for _, s in ranked)
        name, best = max(((n, s) for n, s in ranked if s["runs_completed"] == most),
                         key=lambda x: x[1]["test_accuracy_percent_mean"])
        part["best"] = {"variant": name, "overrides": changes_by_name[name], "seeds": best["seeds"],
                        "test_accuracy_percent_mean": best["test_accuracy_percent_mean"],
                        "test_accuracy_percent_min": best["test_accuracy_percent_min"],
                        "test_accuracy_percent_max": best["test_accuracy_percent_max"]}
