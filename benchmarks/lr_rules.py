"""Benchmark: which LR range test rule suggests an LRMAX that trains?

Runs the LR range test once (the profile's iterations, seed 0), takes every rule's suggestion
(:mod:`cifarhelpers.lr_suggestions`: valley, steepest, min_loss) and the recipe's default LRMAX,
and trains the main job at each for the profile's epochs with several seeds. Prints a table
(test accuracy in percent: mean, min, max over seeds) and writes everything as JSON.

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

from cifarhelpers.config import TrainConfig, resolve_profile
from cifarhelpers.data import load_cifar10
from cifarhelpers.devices import device_name, resolve_device
from cifarhelpers.files import write_json
from cifarhelpers.lr_range_test import run_lr_range_test
from cifarhelpers.recipes import RECIPES
from cifarhelpers.train import fit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="short", choices=("short", "full"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--output-dir", default="benchmarks/out/lr-rules")
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
    rows = []
    for name, lr in lrs.items():
        accuracies = []
        for seed in args.seeds:
            result = fit(base.replace(max_lr=lr, seed=seed), data=data, progress=False)
            accuracies.append(result.final_test_accuracy)
            print(f"{name:>15} LRMAX {lr:.3g} seed {seed}: {100 * result.final_test_accuracy:.2f}%", file=sys.stderr,
                  flush=True)
        rows.append({"rule": name, "max_lr": lr, "test_accuracy": accuracies,
                     "mean_percent": 100 * statistics.mean(accuracies), "min_percent": 100 * min(accuracies),
                     "max_percent": 100 * max(accuracies)})
    report = {
        "command": " ".join(["python", "benchmarks/lr_rules.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": device_name(device),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "data": data.source.to_dict(), "profile": profile.name, "config": base.to_dict(), "seeds": args.seeds,
        "lr_range_test": test.to_dict(), "rows": rows, "wall_seconds": time.perf_counter() - start,
        "units": {"test_accuracy": "fraction of test images correct", "*_percent": "percent", "max_lr": "LR"},
    }
    print(f"{'rule':<16}{'LRMAX':>10}{'mean %':>9}{'min %':>8}{'max %':>8}")
    for row in rows:
        print(f"{row['rule']:<16}{row['max_lr']:>10.3g}{row['mean_percent']:>9.2f}{row['min_percent']:>8.2f}"
              f"{row['max_percent']:>8.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, report)
    print(json.dumps({k: report[k] for k in ("profile", "device", "wall_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
