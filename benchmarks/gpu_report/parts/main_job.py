"""The GPU report's ``main_job`` part: the main job (custom ResNet, OneCycle + Adam, 24 epochs, batch 512, device
loader, channels-last, bf16 autocast) on each seed without ``torch.compile``, then one seed with it (unless
``--no-compile-run``) and the speed-up it brings."""

from __future__ import annotations

from .. import runs
from ..budget import skip_record
from ..figures import accuracy_summary, run_template


def run(ctx, part: dict) -> None:
    """Seeds without torch.compile, then one seed with it."""
    cfg = ctx.main_config()
    for seed in ctx.seeds:
        label = f"seed{seed}"
        est = ctx.estimate_main(cfg.epochs)
        if not ctx.decide("main_job", label, est):
            continue
        rec = {**run_template(label), "estimate_seconds": est, "epochs_target": cfg.epochs}
        part["runs"].append(rec)
        runs.train(ctx, rec, cfg.replace(seed=seed), "main_job")
        part["summary"] = accuracy_summary([r for r in part["runs"] if not r["compile"]])
        ctx.save()
    seed = ctx.seeds[0] if ctx.seeds else 0
    label = f"seed{seed}-compile"
    if not ctx.compile_run:  # not requested: recorded like a part not in --parts, not counted as a skip
        ctx.report["skipped"].append(skip_record("main_job", label, "--no-compile-run", ctx.budget.elapsed()))
        ctx.save()
        return
    est = ctx.estimate_main(cfg.epochs, extra_fixed=ctx.settings.compile_warmup_guess_seconds)
    if not ctx.decide("main_job", label, est):
        return
    rec = {**run_template(label), "estimate_seconds": est, "epochs_target": cfg.epochs}
    part["compile_run"] = rec
    runs.train(ctx, rec, cfg.replace(seed=seed, compile=True), "main_job")
    eager = next((r for r in part["runs"] if r["seed"] == seed and r["status"] == "completed"), None)
    part["compile"]["warmup_seconds"] = rec["warmup_seconds"]
    if eager and rec["status"] == "completed":
        if rec["steady_seconds_per_epoch"]:
            part["compile"]["steady_epoch_speedup"] = eager["steady_seconds_per_epoch"] / rec["steady_seconds_per_epoch"]
        part["compile"]["wall_ratio_compiled_vs_eager"] = rec["wall_seconds"] / eager["wall_seconds"]
    ctx.save()
