"""The GPU report's ``albumentations_path`` part: the main job on the albumentations DataLoader (one worker per
usable core), seed 0, after a loader probe; fewer epochs if all do not fit (said so in the record), and its
seconds beside the device loader's (part 1's seed-0 run)."""

from __future__ import annotations

import os

from .. import runs
from ..budget import fit_epochs
from ..figures import run_template
from ..probes import data_epoch_seconds, probe_loader
from ..settings import usable_cpus


def run(ctx, part: dict) -> None:
    """The main job with the albumentations DataLoader: fewer epochs if 24 do not fit."""
    s = ctx.settings
    workers = s.loader_workers()
    part.update(num_workers=workers, os_cpu_count=os.cpu_count(), usable_cpus=usable_cpus())
    cfg = ctx.main_config(loader="albumentations", num_workers=workers)
    cal = ctx.ensure_calibration()
    if not ctx.decide("albumentations_path", "loader probe", None if cal is None else 10.0):
        return
    part["probe"] = probe_loader(cfg, ctx)
    ctx.save()
    epochs = cfg.epochs
    est = None
    if cal is not None:
        per_epoch = ctx.scaled(cal.epoch_seconds(data_seconds=data_epoch_seconds(part["probe"], ctx.train_images()),
                                                 test_scale=1.5))
        fixed = ctx.scaled(cal.fixed_seconds)
        available = ctx.budget.left() - ctx.reserve_seconds("albumentations_path")
        epochs = fit_epochs(cfg.epochs, per_epoch, fixed, available)
        est = fixed + max(epochs, 1) * per_epoch
        if epochs == 0:
            ctx.skip("albumentations_path", "run", f"not even 1 epoch fits: estimated {fixed + per_epoch:.0f} s for "
                     f"1 epoch > {max(available, 0):.0f} s available", fixed + per_epoch, available)
            return
    if not ctx.decide("albumentations_path", f"run ({epochs} epochs)", est):
        return
    rec = {**run_template(f"seed{cfg.seed}-{epochs}ep"), "estimate_seconds": est, "epochs_target": cfg.epochs}
    if epochs < cfg.epochs:
        rec["notes"].append(f"ran {epochs} of {cfg.epochs} epochs to fit the budget: OneCycle compressed into "
                            f"{epochs} epochs, so the accuracy is not the {cfg.epochs}-epoch figure; compare seconds "
                            "per epoch, not wall time")
    part["run"] = rec
    runs.train(ctx, rec, cfg.replace(epochs=epochs), "albumentations_path")
    device_run = next((r for r in ctx.part("main_job")["runs"] if r["seed"] == cfg.seed and r["status"] == "completed"),
                      None)
    if device_run and rec["status"] == "completed":
        ratios = part["ratios"]
        if rec["epochs_run"] == device_run["epochs_run"]:
            ratios["wall_ratio_vs_device_seed0"] = rec["wall_seconds"] / device_run["wall_seconds"]
        ratios["seconds_per_epoch_ratio_vs_device_seed0"] = rec["seconds_per_epoch"] / device_run["seconds_per_epoch"]
        if rec["steady_seconds_per_epoch"] and device_run["steady_seconds_per_epoch"]:
            ratios["steady_seconds_per_epoch_ratio_vs_device_seed0"] = (
                rec["steady_seconds_per_epoch"] / device_run["steady_seconds_per_epoch"])
    elif not device_run:
        part["notes"].append("no completed device-loader seed-0 run in this report: ratios not computed")
    ctx.save()
