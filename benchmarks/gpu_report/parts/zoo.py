"""The GPU report's ``zoo`` part: ResNet18-GN and DilatedNet, each at its own recipe and epochs
(``TrainConfig.preset``; the smoke settings' epochs on a CPU), on the device loader when it implements the
model's transform set, else on the albumentations loader; each within its own share of the budget
(``--zoo-budget MODEL=SECONDS``), as many epochs as fit after a step-time (and loader) probe.
"""

from __future__ import annotations

from typing import Any

from cifarhelpers.data import DEVICE_TRANSFORM_SETS
from cifarhelpers.training import TrainConfig

from .. import runs
from ..budget import fit_epochs
from ..figures import run_template
from ..probes import data_epoch_seconds, probe_loader, probe_step_seconds
from ..settings import NOT_VARIED


def zoo_config(ctx, model: str, epochs: int) -> tuple[TrainConfig, str]:
    """A zoo model's config as its own defaults say (``TrainConfig.preset``: recipe, batch, transform set,
    warm-up and the recipe's settings) at the report's data size and ``epochs``, on the device loader when it
    implements the model's transform set, else on the albumentations loader; and a note saying which."""
    preset, main = TrainConfig.preset(model=model), TrainConfig()
    own = {f: v for f, v in preset.to_dict().items() if f not in NOT_VARIED and v != getattr(main, f)}
    if preset.transform_set in DEVICE_TRANSFORM_SETS:
        return ctx.main_config(**{**own, "epochs": epochs}), f"its own settings, device loader ({preset.transform_set})"
    cfg = ctx.main_config(**{**own, "epochs": epochs, "loader": "albumentations",
                             "num_workers": ctx.settings.loader_workers()})
    return cfg, f"its own settings, albumentations loader ({preset.transform_set} is not on the device loader)"


def run(ctx, part: dict) -> None:
    """ResNet18-GN and DilatedNet, each at its own recipe and epochs (``TrainConfig.preset``; the smoke
    settings' epochs on the CPU), each within its own share of the budget (``--zoo-budget MODEL=SECONDS``;
    none: what is left). A model whose epochs do not all fit runs as many as fit, said so in its notes."""
    s = ctx.settings
    models = {"resnet18": zoo_config(ctx, "resnet18", s.resnet18_epochs),
              "dilated_net": zoo_config(ctx, "dilated_net", s.dilated_epochs)}
    part["budgets_seconds"] = dict(ctx.zoo_budgets)
    for name, (cfg, why) in models.items():
        rec = {**run_template(name), "epochs_target": cfg.epochs}
        rec["notes"].append(why)
        cal = ctx.ensure_calibration()
        probe: dict[str, Any] = {}
        est = None
        epochs = cfg.epochs
        if cal is not None:
            if not ctx.decide("zoo", f"{name} probes", 10.0):
                part["models"][name] = {**rec, "status": "skipped"}
                continue
            try:
                probe["step_seconds"] = probe_step_seconds(name, ctx)
                if cfg.loader == "albumentations":
                    probe["loader"] = probe_loader(cfg, ctx)
            except KeyboardInterrupt:
                raise
            except Exception as err:
                rec["error"] = ctx.note_error(f"zoo {name} probe", err)
            rec["probe"] = probe
            if "step_seconds" in probe:
                ratio = probe["step_seconds"] / cal.step_seconds
                train = {"step_seconds": probe["step_seconds"]}
                if probe.get("loader"):
                    train["data_seconds"] = data_epoch_seconds(probe["loader"], ctx.train_images())
                per_epoch = ctx.scaled(cal.epoch_seconds(test_scale=ratio, **train))
                fixed = ctx.scaled(cal.fixed_seconds)
                available = ctx.budget.left() - ctx.reserve_seconds("zoo")
                if name in ctx.zoo_budgets:
                    available = min(available, ctx.zoo_budgets[name])
                epochs = fit_epochs(cfg.epochs, per_epoch, fixed, available)
                est = fixed + max(epochs, 1) * per_epoch
                rec["notes"].append(f"probe: {probe['step_seconds'] * 1000:.1f} ms per step ({ratio:.2f} x the main "
                                    "model's)")
                if epochs == 0:
                    part["models"][name] = {**rec, "status": "skipped", "estimate_seconds": fixed + per_epoch}
                    ctx.skip("zoo", name, f"not even 1 epoch fits: estimated {fixed + per_epoch:.0f} s > "
                             f"{max(available, 0):.0f} s available", fixed + per_epoch, available)
                    continue
        if not ctx.decide("zoo", f"{name} ({epochs} epochs)", est):
            part["models"][name] = {**rec, "status": "skipped"}
            continue
        if epochs < cfg.epochs:
            rec["notes"].append(f"ran {epochs} of {cfg.epochs} epochs to fit the budget ({cfg.recipe}: the schedule "
                                "is cut short, not compressed)")
        rec["estimate_seconds"] = est
        part["models"][name] = rec
        runs.train(ctx, rec, cfg.replace(epochs=epochs), "zoo")
