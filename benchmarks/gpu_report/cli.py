"""The GPU report's command line: its flags (:func:`parse_args`; ``--plan NAME --step N`` expanded into the plan's
own flags first, :func:`expand_plan`) and :func:`main`, which sets up the output and scratch folders, the log, the
device and the data, runs the parts within the budget under the watchdog and finishes the report whatever
happens. Exit status: 0 completed, 1 could not start, 2 bad flags, 3 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch

from cifarhelpers.data import load_cifar10, resolve_root
from cifarhelpers.errors import ConfigError
from cifarhelpers.provenance import CODE_COMMIT_ENV
from cifarhelpers.training import resolve_device

from . import plans
from .budget import Budget
from .context import Context
from .parts.variants import parse_variants
from .report import finish, new_report
from .runner import run_parts
from .session import Tee, environment, on_sigterm, start_watchdog
from .settings import FULL, LOG_FILE, NOTEBOOK_CHAINS, PARTS, SMOKE, Settings, main_config

#: benchmarks/ in the checkout (the bundle's root in a bundle): the default output folder's parent.
HERE = Path(__file__).resolve().parents[1]


def expand_plan(argv: list[str]) -> tuple[list[str], str | None]:
    """``--plan NAME --step N`` replaced by the step's own arguments (:mod:`gpu_report.plans`), placed before the
    rest so that flags given on the command line win; a ``--variant`` given replaces the plan's list. Also
    returns the plan's text when ``--show-plan`` asks for it (None otherwise).

    Raises:
        ValueError: an unknown plan or step, or ``--step`` without ``--plan``.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plan", default=None)
    pre.add_argument("--step", type=int, default=None)
    pre.add_argument("--show-plan", action="store_true")
    known, rest = pre.parse_known_args(argv)
    if known.plan is None:
        if known.step is not None or known.show_plan:
            raise ValueError("--step and --show-plan need --plan NAME (e.g. --plan round2)")
        return argv, None
    if known.show_plan:
        plans.get_step(known.plan, 1)  # checks the name
        return rest, plans.format_plan(plans.PLANS[known.plan])
    number = known.step if known.step is not None else 1
    planned = plans.step_arguments(plans.get_step(known.plan, number))
    if "--variant" in rest:  # the plan's variants and their top-k give way to the command line's
        cut = planned.index("--variant") if "--variant" in planned else len(planned)
        end = planned.index("--variant-top-k") + 2 if "--variant-top-k" in planned else cut
        planned = planned[:cut] + planned[end:]
    return ["--plan", known.plan, "--step", str(number), *planned, *rest], None


def _pairs(items: list[str] | None, flag: str, parse) -> dict:
    out = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise ValueError(f"{flag} {item!r} is not NAME=VALUE")
        out[name.strip()] = parse(text.strip())
    return out


def _literal(text: str):
    """A papermill parameter's value from text: a number, true/false/none, else the text itself."""
    low = text.lower()
    if low in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[low]
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` when ``argv`` is None), a plan expanded first, every flag checked: a bad
    one exits with status 2 and a message naming it (argparse)."""
    p = argparse.ArgumentParser(description="Measure the project's GPU figures in one budgeted run (see the package "
                                            "docstring, docs/gpu-report.md: the parts, outputs and units).")
    p.add_argument("--plan", choices=sorted(plans.PLANS), default=None,
                   help="a planned visit (benchmarks/gpu_report/plans.py): its step's parts, variants and budget; flags "
                        "given after it win")
    p.add_argument("--step", type=int, default=None, help="the plan's step, from 1 (default 1)")
    p.add_argument("--show-plan", action="store_true", help="print the plan's steps, commands and estimates, and exit")
    p.add_argument("--notebooks", choices=sorted(NOTEBOOK_CHAINS), default="01-06",
                   help="the notebooks part's chain (default 01-06; 01-07 adds the LR sweep notebook)")
    p.add_argument("--notebook-parameter", action="append", default=None, metavar="NAME=VALUE",
                   help="a papermill parameter for the notebooks part, e.g. num_seeds=1; repeat for more")
    p.add_argument("--zoo-budget", action="append", default=None, metavar="MODEL=SECONDS",
                   help="a zoo model's own share of the budget, in seconds, e.g. dilated_net=330; repeat for more")
    p.add_argument("--smoke", action="store_true", help="every part on tiny subsets, on the CPU (a few minutes)")
    p.add_argument("--budget-minutes", type=float, default=9.0, help="wall-clock budget of the whole command (9)")
    p.add_argument("--out", default=os.environ.get("OUT") or str(HERE / "out" / "gpu-report"),
                   help="output folder (default: $OUT, else benchmarks/out/gpu-report)")
    p.add_argument("--work-dir", default=None, help="scratch folder for run folders (default: a temp folder, removed)")
    p.add_argument("--data-root", default=os.environ.get("CIFAR10_ROOT"), help="CIFAR-10 copy (default: $CIFAR10_ROOT)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: auto; cpu with --smoke)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default: all)")

    def values(settings: Settings, name: str) -> str:
        return " ".join(f"{v:g}" for v in getattr(settings, name))

    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help=f"main-job seeds (default {values(FULL, 'seeds')}; smoke {values(SMOKE, 'seeds')})")
    p.add_argument("--lr-grid", nargs="+", type=float, default=None,
                   help=f"LRMAX values of the sweep (default {values(FULL, 'lr_grid')}; "
                        f"smoke {values(SMOKE, 'lr_grid')})")
    p.add_argument("--variant", nargs="+", action="append", dest="variants", metavar=("NAME", "FIELD=VALUE"),
                   help="a variant of the main job for the variants part: a name, then TrainConfig fields to change "
                        "(e.g. --variant sgd recipe=onecycle_sgd weight_decay=5e-4); repeat for more; replaces the "
                        f"default list ({', '.join(n for n, _ in FULL.variants)})")
    p.add_argument("--no-compile-run", action="store_true",
                   help="leave out the main job's torch.compile run (part 1), to save its time")
    p.add_argument("--variant-top-k", type=int, default=None,
                   help=f"variants, the best on the first seed, that run on the other seeds too "
                        f"(default {FULL.variant_top_k}; smoke {SMOKE.variant_top_k})")
    p.add_argument("--notebooks-dir", default=str(HERE.parent / "notebooks"),
                   help="folder with notebooks 01-06 (default: the repository's notebooks/)")
    p.add_argument("--commit", default=None, help="git commit to record when the code is not a git checkout")
    try:
        argv, args_plan_text = expand_plan(list(sys.argv[1:] if argv is None else argv))
    except ValueError as err:
        p.error(str(err))
    args = p.parse_args(argv)
    args.plan_text = args_plan_text
    try:
        args.notebook_parameters = _pairs(args.notebook_parameter, "--notebook-parameter", _literal)
        args.zoo_budgets = _pairs(args.zoo_budget, "--zoo-budget", float)
    except ValueError as err:
        p.error(f"{err}, e.g. num_seeds=1 or dilated_net=330")
    unknown = sorted(set(args.zoo_budgets) - {"resnet18", "dilated_net"})
    if unknown or any(not (v > 0 and math.isfinite(v)) for v in args.zoo_budgets.values()):
        p.error(f"--zoo-budget takes resnet18=SECONDS or dilated_net=SECONDS with SECONDS > 0, got "
                f"{args.zoo_budget}")
    if args.budget_minutes <= 0:
        p.error("--budget-minutes must be > 0")
    if any(not (v > 0 and math.isfinite(v)) for v in (args.lr_grid or [])):
        p.error("--lr-grid values must be finite and > 0")
    if args.variant_top_k is not None and args.variant_top_k < 0:
        p.error("--variant-top-k must be >= 0")
    if args.variants is not None:
        if "variants" not in args.parts:
            p.error("--variant is given but the variants part is not in --parts: add it (--parts ... variants)")
        try:
            args.variants = parse_variants(args.variants, main_config(SMOKE if args.smoke else FULL))
        except ConfigError as err:
            p.error(str(err))
    return args


def main(argv: list[str] | None = None, start: float | None = None) -> int:
    """Run the report; ``start`` is the clock reading the budget counts from (None: now; the script
    passes its own start time, before the imports). Returns 0 (completed), 1 (failed to start:
    device, data) or 3 (interrupted: budget watchdog, SIGTERM, Ctrl-C)."""
    args = parse_args(argv)
    if args.plan_text is not None:
        print(args.plan_text)
        return 0
    settings = SMOKE if args.smoke else FULL
    out_dir = Path(args.out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    own_work = args.work_dir is None
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu-report-work-")).expanduser().resolve()
    if work_dir == out_dir or out_dir in work_dir.parents:
        print(f"gpu_report: error: --work-dir {work_dir} lies inside --out {out_dir}: run folders must not land in "
              "the output folder", file=sys.stderr)
        return 2
    work_dir.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget_minutes * 60.0, settings.final_margin_seconds, start=start)
    parts = [p for p in PARTS if p in args.parts]
    report = new_report(settings, parts, budget, [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    report["files"].update(output_dir=str(out_dir), work_dir=str(work_dir))

    log = open(out_dir / LOG_FILE, "w", encoding="utf-8", buffering=1)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(old_out, log), Tee(old_err, log)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, on_sigterm) if on_main_thread else None
    watchdog = None
    ctx = None
    status = "failed"
    try:
        device = resolve_device(args.device or settings.device)
        report["environment"] = environment(device, args.commit)
        if args.commit:  # the notebooks' kernels inherit it: their first line names the commit (code_version);
            os.environ[CODE_COMMIT_ENV] = args.commit  # the report and its notebooks name the same one
        print(f"gpu_report ({settings.mode}): {report['environment']['device']}; torch {torch.__version__}; budget "
              f"{budget.total_seconds:.0f} s; parts {', '.join(parts)}; output {out_dir}; scratch {work_dir}", flush=True)
        start = time.perf_counter()
        data_root = resolve_root(args.data_root)[0].resolve()
        data = load_cifar10(data_root, progress=False)
        report["data"] = {**data.source.to_dict(), "load_seconds": time.perf_counter() - start,
                          "train_images_available": int(len(data.y_train)), "test_images_available": int(len(data.y_test))}
        print(f"data: {data.source.layout} copy at {data.source.root} (sha256 {data.source.sha256[:12]}...), "
              f"{report['data']['load_seconds']:.1f} s", flush=True)
        ctx = Context(settings=settings, report=report, budget=budget, out_dir=out_dir, work_dir=work_dir,
                      device=device, data=data, data_root=data_root, seeds=args.seeds, lr_grid=args.lr_grid,
                      variants=args.variants, variant_top_k=args.variant_top_k, compile_run=not args.no_compile_run,
                      notebooks=NOTEBOOK_CHAINS[args.notebooks], notebook_parameters=args.notebook_parameters,
                      zoo_budgets=args.zoo_budgets,
                      notebooks_dir=Path(args.notebooks_dir).expanduser().resolve(), parts=parts)
        report["settings"].update(plan=args.plan, plan_step=args.step, notebooks=list(ctx.notebooks),
                                  notebook_parameters=ctx.notebook_parameters, zoo_budgets=ctx.zoo_budgets,
                                  seeds=ctx.seeds, lr_grid=ctx.lr_grid, variants=ctx.variants,
                                  variant_top_k=ctx.variant_top_k, compile_run=ctx.compile_run, device=str(device),
                                  data_root=str(data_root), notebooks_dir=str(ctx.notebooks_dir))
        ctx.save()

        watchdog = start_watchdog(budget, report)
        status = "completed" if run_parts(ctx) else "interrupted"
    except KeyboardInterrupt:
        status = "interrupted"
    except Exception as err:
        report["errors"].append({"where": "setup", "error": f"{type(err).__name__}: {err}",
                                 "traceback": traceback.format_exc()[-4000:]})
        print(f"gpu_report: error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        status = "failed"
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if on_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the final writes are short: finish them
        for _ in range(2):  # a watchdog that fired just before cancel() may interrupt the first attempt
            try:
                finish(report, ctx, out_dir, status, budget)
                break
            except KeyboardInterrupt:
                status = "interrupted"
        sys.stdout, sys.stderr = old_out, old_err
        log.close()
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_term if previous_term is not None else signal.SIG_DFL)
        if own_work:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if status == "completed" else (1 if status == "failed" else 3)
