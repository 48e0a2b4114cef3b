"""Benchmark: the albumentations DataLoader path against the device-resident loader.

Prints, measured in one run on one machine, first as a table and then as JSON:

1. data path: augmented training images per second of one pass over the training set (random
   crop after padding 4, horizontal flip, one 8x8 cutout, normalization), for the albumentations
   DataLoader (``num_workers`` = the machine's cores) and the
   :class:`~cifarhelpers.data.device_loader.DeviceLoader`, and their ratio;
2. training: images per second of whole steps of the custom ResNet (next batch + forward +
   backward + optimizer step) for both paths, and their ratio;
3. with ``--full-runs`` (meant for a CUDA GPU): the whole 24-epoch main job with each path
   through :func:`cifarhelpers.training.train.fit`: wall, data, training and evaluation seconds,
   seconds per epoch and final test accuracy, one run per seed for the device path.

Run::

    make bench                                                 # = the first line below
    python benchmarks/bench_data_path.py
    python benchmarks/bench_data_path.py --device cuda --full-runs --seeds 0 1 2 --json results/bench.json

Figures are wall-clock, with ``torch.cuda.synchronize()`` before every clock read on a GPU.
The data comes from ``--data-root`` / ``$CIFAR10_ROOT`` (see ``cifarhelpers.data.cifar10``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from cifarhelpers.data import DeviceLoader, dataset_statistics, load_cifar10, train_transform
from cifarhelpers.files import write_json
from cifarhelpers.models import build_model
from cifarhelpers.training import (
    AlbumentationsLoader,
    TrainConfig,
    backward_and_step,
    build_criterion,
    build_optimizer,
    device_name,
    resolve_device,
    select_precision,
)

PATHS = ("albumentations", "device")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_loader(path: str, data, stats, *, batch_size: int, device: torch.device, workers: int):
    """The training loader of ``path`` ("albumentations" or "device") over the whole training set."""
    if path == "device":
        return DeviceLoader(data.x_train, data.y_train, mean=stats.mean, std=stats.std, batch_size=batch_size,
                            device=device, train=True, channels_last=True)
    return AlbumentationsLoader(data.x_train, data.y_train, train_transform(stats.mean, stats.std),
                                batch_size=batch_size, train=True, num_workers=workers,
                                pin_memory=device.type == "cuda")


def data_path_throughput(loader, device: torch.device, repeats: int) -> dict:
    """Augmented images/s of whole passes over ``loader``, batches moved to ``device``; the best
    of ``repeats`` passes (each pass includes starting the DataLoader's workers, as in training)."""
    rates = []
    for r in range(repeats):
        loader.set_epoch(r)
        _sync(device)
        start = time.perf_counter()
        images = 0
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            images += len(y)
        _sync(device)
        rates.append(images / (time.perf_counter() - start))
    return {"images_per_second": max(rates), "passes": rates}


def training_throughput(loader, device: torch.device, *, steps: int, warmup: int) -> dict:
    """Images/s of ``steps`` whole training steps of the custom ResNet (after ``warmup`` steps),
    in the precision a run on ``device`` uses (:func:`cifarhelpers.training.precision.select_precision`)."""
    torch.manual_seed(0)
    precision = select_precision(device)
    scaler = precision.grad_scaler()
    model = build_model("custom_resnet").to(device, memory_format=torch.channels_last)
    cfg = TrainConfig(epochs=1)
    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=len(loader))
    criterion = build_criterion(cfg)
    model.train()
    loader.set_epoch(0)
    batches = iter(loader)
    if steps + warmup > len(loader):
        raise ValueError(f"{steps} + {warmup} steps exceed one epoch of {len(loader)} batches")

    def step() -> int:
        x, y = next(batches)
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with precision.autocast():
            loss = criterion(model(x), y)
        backward_and_step(loss, optimizer, scaler)
        schedule.after_batch()
        return len(y)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    images = sum(step() for _ in range(steps))
    _sync(device)
    return {"images_per_second": images / (time.perf_counter() - start), "steps": steps, "warmup_steps": warmup,
            "precision": precision.name}


def full_run(path: str, seed: int, device: torch.device, data, output_dir: str, compile_model: bool) -> dict:
    """The 24-epoch main job with one loader; figures from its metrics.json."""
    from cifarhelpers.training import fit

    cfg = TrainConfig(loader=path, seed=seed, device=str(device), output_dir=output_dir, compile=compile_model)
    result = fit(cfg, data=data, progress=False)
    t = result.metrics["timings"]
    history = result.history
    return {
        "loader": path, "seed": seed, "final_test_accuracy": result.final_test_accuracy,
        "wall_seconds": t["wall_seconds"], "data_seconds": t["data_seconds"], "train_seconds": t["train_seconds"],
        "test_seconds": t["test_seconds"], "seconds_per_epoch": t["seconds_per_epoch"],
        "first_epoch_train_seconds": history[0]["train_seconds"],  # includes compilation with --compile
        "run_dir": str(result.run_dir),
    }


def format_table(report: dict) -> str:
    """The report's figures as aligned text."""
    lines = [f"device: {report['device']}  |  torch {report['torch_version']}  |  data: {report['data']['layout']} "
             f"copy, sha256 {report['data']['sha256'][:12]}...",
             f"{'measure':<34}{'albumentations':>16}{'device':>14}{'ratio':>9}"]
    for key, label in (("data_path", "data path, augmented images/s"), ("training", "training step, images/s")):
        a, d = report[key]["albumentations"], report[key]["device"]
        lines.append(f"{label:<34}{a['images_per_second']:>16,.0f}{d['images_per_second']:>14,.0f}"
                     f"{report[key]['ratio']:>8.1f}x")
    for run in report.get("full_runs", []):
        lines.append(f"24 epochs, {run['loader']:<14} seed {run['seed']}: test accuracy "
                     f"{100 * run['final_test_accuracy']:.2f}%, train {run['train_seconds']:.1f} s, "
                     f"{run['seconds_per_epoch']:.2f} s/epoch, wall {run['wall_seconds']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None, help="CIFAR-10 copy (default: $CIFAR10_ROOT, else ./data)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader workers of the albumentations path (default: the number of cores)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the data per path; the best counts")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="timed training steps per path (default: 3 on a CPU, 50 on a GPU)")
    parser.add_argument("--full-runs", action="store_true", help="also run the 24-epoch main job with each path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the device path's full runs")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model in the full runs")
    parser.add_argument("--output-dir", default="benchmarks/out", help="run folders of the full runs")
    parser.add_argument("--json", default=None, help="also write the report to this JSON file")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    data = load_cifar10(args.data_root)
    stats = dataset_statistics(data.x_train)
    steps = args.train_steps or (3 if device.type == "cpu" else 50)
    report: dict = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": device_name(device),
        "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "data": {**data.source.to_dict(), "train_images": len(data.x_train)},
        "batch_size": args.batch_size, "albumentations_workers": args.workers,
        "units": {"images_per_second": "augmented training images per second, wall clock",
                  "seconds": "wall-clock seconds", "final_test_accuracy": "fraction in [0, 1]"},
        "data_path": {}, "training": {},
    }
    for path in PATHS:
        print(f"measuring the {path} path...", file=sys.stderr, flush=True)
        loader = make_loader(path, data, stats, batch_size=args.batch_size, device=device, workers=args.workers)
        report["data_path"][path] = data_path_throughput(loader, device, args.repeats)
        report["training"][path] = training_throughput(loader, device, steps=steps, warmup=1)
        del loader
    for key in ("data_path", "training"):
        report[key]["ratio"] = (report[key]["device"]["images_per_second"]
                                / report[key]["albumentations"]["images_per_second"])
    if args.full_runs:
        report["full_runs"] = [full_run("albumentations", args.seeds[0], device, data, args.output_dir, args.compile)]
        report["full_runs"] += [full_run("device", s, device, data, args.output_dir, args.compile) for s in args.seeds]
    print(format_table(report))
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
