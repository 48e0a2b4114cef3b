"""Benchmark: which LR range test rule suggests an LRMAX that trains?

Runs the LR range test once (the profile's iterations, seed 0), takes every rule's suggestion
(:mod:`cifarhelpers.training.lr_suggestions`: valley, steepest, min_loss) and the recipe's default LRMAX,
and trains the main job at each for the profile's epochs with several seeds: one sweep over ``max_lr``
(:mod:`cifarhelpers.sweep`, sequential, its folder in ``--output-dir``; rules that suggest the same LRMAX share
its trials). Prints a table (test accuracy in percent: mean, min, max over the seeds that completed) and writes
everything as JSON.

Run::

    python benchmarks/lr_rules.py --profile short --seeds 0 1 2 --json results/lr-rules-cpu.json
    python benchmarks/lr_rules.py --profile full --device cuda --seeds 0 1 2   # on a GPU: the real question

On the CPU the short profile (4,096 training images, 2 epochs, batch 128) measures only how fast
each LR gets going, not where 24 epochs end; the GPU report's LR sweep answers that.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from cifarhelpers.data import load_cifar10
from cifarhelpers.files import write_json
from cifarhelpers.sweep import SweepConfig, run_sweep
from cifarhelpers.training import RECIPES, TrainConfig, device_name, resolve_device, resolve_profile, run_lr_range_test


def _print_trial(trial, record: dict) -> None:
    """One line per finished trial, on stderr (stdout holds the table and the JSON summary)."""
    acc = record["final_test_accuracy"]
    print(f"LRMAX {trial.params['max_lr']:.3g} seed {trial.params['seed']}: "
          + (f"{100 * acc:.2f}%" if acc is not None else f"{record['status']} ({record['reason']})"),
          file=sys.stderr, flush=True)


def _row(rule: str, lr: float, trials: list[dict]) -> dict:
    """The rule's LRMAX and its completed trials' test accuracy (fractions; percent: mean, min, max; None: none)."""
    accuracies = [t["final_test_accuracy"] for t in trials
                  if t["params"]["max_lr"] == lr and t["status"] == "completed"]

    def percent(f):
        return 100 * f(accuracies) if accuracies else None

    return {"rule": rule, "max_lr": lr, "test_accuracy": accuracies, "mean_percent": percent(statistics.mean),
            "min_percent": percent(min), "max_percent": percent(max)}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="short", choices=("short", "full"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--output-dir", default="benchmarks/out/lr-rules", help="where the sweep folder goes")
    parser.add_argument("--json", default=None, help="write the report here too")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    profile = resolve_profile(args.profile, device.type)
    base = TrainConfig(**profile.overrides, device=str(device), data_root=args.data_root, output_dir=args.output_dir)
    data = load_cifar10(args.data_root, progress=False)
    start = time.perf_counter()
    test = run_lr_range_test(base, data=data, progress=False)
    lrs = {**test.suggestions, "recipe default": RECIPES[base.recipe].default_lr}
    print("LR range test suggestions:", {k: f"{v:.3g}" for k, v in lrs.items()}, file=sys.stderr, flush=True)
    spec = SweepConfig(base=base, grid={"max_lr": list(dict.fromkeys(lrs.values()))}, seeds=tuple(args.seeds),
                       backend="sequential", output_dir=args.output_dir)
    sweep = run_sweep(spec, data=data, progress=False, after_trial=_print_trial)
    rows = [_row(name, lr, sweep.trials) for name, lr in lrs.items()]
    report = {
        "command": " ".join(["python", "benchmarks/lr_rules.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": device_name(device),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "data": data.source.to_dict(), "profile": profile.name, "config": base.to_dict(), "seeds": args.seeds,
        "lr_range_test": test.to_dict(), "rows": rows, "sweep_dir": str(sweep.sweep_dir),
        "trials": sweep.trials, "wall_seconds": time.perf_counter() - start,
        "units": {"test_accuracy": "fraction of test images correct", "*_percent": "percent", "max_lr": "LR",
                  "trials": "the sweep's trial records (cifarhelpers.sweep.trials)"},
    }
    print(f"{'rule':<16}{'LRMAX':>10}{'mean %':>9}{'min %':>8}{'max %':>8}")
    for row in rows:
        print(f"{row['rule']:<16}{row['max_lr']:>10.3g}{_cell(row['mean_percent']):>9}{_cell(row['min_percent']):>8}"
              f"{_cell(row['max_percent']):>8}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, report)
    print(json.dumps({k: report[k] for k in ("profile", "device", "wall_seconds")}))
    return 0 if sweep.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
