"""The GPU report's part runner: the parts in order of priority (:data:`RUNNERS`), each isolated from the others
(:func:`run_parts`: an error is recorded and the next part runs; an interruption ends the loop, keeping what was
measured), and each part's status from what it ran and skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import peer_airbench  # the sibling module beside this package (benchmarks/, or the bundle's root)

from .budget import skip_record
from .context import Context
from .parts import albumentations_path, lr_sweep, main_job, notebooks, profiling, variants, zoo
from .settings import PARTS

RUNNERS: dict[str, Callable[[Context, dict], None]] = {
    "main_job": main_job.run,
    "peer": peer_airbench.run_part,
    "lr_sweep": lr_sweep.run,
    "variants": variants.run,
    "albumentations_path": albumentations_path.run,
    "notebooks": notebooks.run,
    "zoo": zoo.run,
    "profile": profiling.run,
}


def run_parts(ctx: Context, runners: dict[str, Callable[[Context, dict], None]] = RUNNERS) -> bool:
    """Run the requested parts in priority order, each isolated: an error is recorded and the next
    part runs; an interruption (watchdog, SIGTERM, Ctrl-C) is recorded and ends the loop.
    Returns False when interrupted."""
    for name in PARTS:
        part = ctx.part(name)
        if name not in ctx.parts:
            part["status"] = "not_requested"
            ctx.report["skipped"].append(skip_record(name, "whole part", "not in --parts", ctx.budget.elapsed()))
            ctx.save()
            continue
        ctx.current_part = name
        part["status"] = "running"
        part["started_at_elapsed_seconds"] = round(ctx.budget.elapsed(), 3)
        ctx.save()
        start = ctx.budget.clock()
        try:
            runners[name](ctx, part)
        except KeyboardInterrupt:
            part["status"] = "interrupted"
            part["seconds"] = ctx.budget.clock() - start
            ctx.save()
            return False
        except Exception as err:
            part["status"] = "failed"
            part["error"] = ctx.note_error(name, err)
        part["seconds"] = ctx.budget.clock() - start
        if part["status"] == "running":
            if part["items_run"] == 0:
                part["status"] = "skipped"
            elif part["items_skipped"] or _has_failed_runs(part):
                part["status"] = "partial"
            else:
                part["status"] = "completed"
        ctx.save()
    return True


def _has_failed_runs(part: dict) -> bool:
    runs = list(part.get("runs") or []) + [part.get("compile_run"), part.get("run")]
    runs += list((part.get("models") or {}).values())
    return any(r and r.get("status") not in ("completed", "skipped", None) for r in runs)
