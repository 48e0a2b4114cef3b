"""The GPU report's ``lr_sweep`` part: the LR range test (100 iterations, batch 512), then the main job at each
LRMAX of the grid (seed 0), most informative first (:func:`order_lr_grid`).

The grid is a :class:`cifarhelpers.sweep.SweepConfig` over ``max_lr`` run by ``run_sweep`` (sequential, on the
report's data), each trial admitted only when its estimate fits the budget; the recipe's default LRMAX reuses
part 1's seed-0 run instead of training again. ``best`` names the best LRMAX and which range-test rule lands
closest to it.
"""

from __future__ import annotations

import math
import time

from cifarhelpers.sweep import SweepConfig
from cifarhelpers.training import run_lr_range_test

from .. import runs
from ..budget import sync
from ..figures import run_template
from ..settings import DEFAULT_LR


def order_lr_grid(grid: list[float], default: float, suggestion: float | None = None) -> list[dict]:
    """The LRMAX values in the order they should run when time is short.

    1. the default (its run is reused from part 1, so it costs nothing);
    2. the grid's nearest neighbours of the default on the log scale, below then above;
    3. the LR range test's suggestion (3 significant digits), added when it is not within 5% of a
       grid value (else that grid value moves up here);
    4. the rest, by log distance from the default (lower first on ties).

    Returns:
        ``[{"max_lr": float, "source": "grid" | "default" | "suggestion" | "grid+suggestion"}, ...]``
    """
    values = sorted({float(v) for v in grid})
    entries = [{"max_lr": v, "source": "default" if math.isclose(v, default, rel_tol=1e-9) else "grid"}
               for v in values]
    first = [e for e in entries if e["source"] == "default"]
    rest = [e for e in entries if e["source"] != "default"]
    below = [e for e in rest if e["max_lr"] < default]
    above = [e for e in rest if e["max_lr"] > default]
    neighbours = ([below[-1]] if below else []) + ([above[0]] if above else [])
    rest = [e for e in rest if e not in neighbours]
    suggested: list[dict] = []
    if suggestion is not None and math.isfinite(suggestion) and suggestion > 0:
        close = [e for e in entries if abs(e["max_lr"] - suggestion) <= 0.05 * e["max_lr"]]
        if close:
            close[0]["source"] = "grid+suggestion" if close[0]["source"] == "grid" else close[0]["source"]
            if close[0] in rest:
                rest.remove(close[0])
                suggested = [close[0]]
        else:
            suggested = [{"max_lr": float(f"{suggestion:.3g}"), "source": "suggestion"}]
    rest.sort(key=lambda e: (abs(math.log(e["max_lr"] / default)), e["max_lr"]))
    return first + neighbours + suggested + rest


def run(ctx, part: dict) -> None:
    """The LR range test, then the main job at each LRMAX of the grid (most informative first)."""
    cfg = ctx.main_config()
    _range_test(ctx, part, cfg)
    part["grid"] = list(ctx.lr_grid)
    part["order"] = order_lr_grid(ctx.lr_grid, DEFAULT_LR, part["suggested_lr"])
    ctx.save()
    main_runs = ctx.part("main_job")["runs"]
    seed0 = next((r for r in main_runs if r["seed"] == cfg.seed and r["status"] == "completed"
                  and math.isclose(r["max_lr"], DEFAULT_LR) and r["epochs_run"] == cfg.epochs), None)
    to_train = []
    for entry in part["order"]:
        if seed0 is not None and math.isclose(entry["max_lr"], DEFAULT_LR, rel_tol=1e-9):
            rec = ctx.reuse("lr_sweep", f"lr{entry['max_lr']:.3g}", seed0,
                            "the main job's seed-0 run (LRMAX = the default), not trained again")
            rec["source"] = entry["source"]
            part["runs"].append(rec)
            ctx.save()
        else:
            to_train.append(entry)
    if to_train:
        sources = {e["max_lr"]: e["source"] for e in to_train}

        def admit(trial):
            lr = trial.params["max_lr"]
            est = ctx.estimate_main(cfg.epochs)
            if not ctx.decide("lr_sweep", f"lr{lr:.3g}", est):
                return None
            rec = {**run_template(f"lr{lr:.3g}"), "estimate_seconds": est, "epochs_target": cfg.epochs,
                   "source": sources[lr]}
            part["runs"].append(rec)
            return rec

        spec = SweepConfig(base=cfg, grid={"max_lr": list(sources)}, seeds=(cfg.seed,), backend="sequential",
                           output_dir=str(ctx.work_dir / "lr_sweep"))
        runs.run_trials(ctx, "lr_sweep", admit, spec=spec)
    _best(part)
    ctx.save()


def _range_test(ctx, part: dict, cfg) -> None:
    s = ctx.settings
    item = f"LR range test ({s.lr_test_iterations} iterations, batch {cfg.batch_size})"
    if not ctx.decide("lr_sweep", item, ctx.estimate_lr_test(s.lr_test_iterations)):
        return
    sync(ctx.device)
    start = time.perf_counter()
    try:
        result = run_lr_range_test(cfg, num_iter=s.lr_test_iterations, data=ctx.data, progress=False)
        sync(ctx.device)
        part["range_test_seconds"] = time.perf_counter() - start
        part["range_test"] = result.to_dict()  # every rule's suggestion, the rule used, the curve
        part["suggested_lr"] = result.max_lr
        part["suggestions"] = dict(result.suggestions)
        print(f"[lr_sweep] range test: suggested LRMAX {result.max_lr:.3e} ({result.rule}; "
              + result.describe_suggestions()
              + f") ({part['range_test_seconds']:.1f} s)", flush=True)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        part["range_test_seconds"] = time.perf_counter() - start
        part["range_test"] = {"error": ctx.note_error("lr_sweep range test", err)}
    ctx.save()


def _best(part: dict) -> None:
    """The best LRMAX of the completed runs, and which LR range test rule lands closest to it (log scale)."""
    done = [r for r in part["runs"] if r["test_accuracy_percent"] is not None]
    if not done:
        return
    best = max(done, key=lambda r: r["test_accuracy_percent"])
    part["best"] = {"max_lr": best["max_lr"], "test_accuracy_percent": best["test_accuracy_percent"],
                    "of_runs": len(done)}
    if part.get("suggestions"):
        distance = {rule: abs(math.log10(lr / best["max_lr"])) for rule, lr in part["suggestions"].items()}
        part["best"]["rule_distance_decades"] = distance
        part["best"]["closest_rule"] = min(distance, key=distance.get)
