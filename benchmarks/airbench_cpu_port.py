"""airbench94 on a CPU: PyPI ``airbench`` 0.1.8's ``train94``, patched only at the call boundary.

The package (Keller Jordan, https://github.com/KellerJordan/cifar10-airbench; arXiv:2404.00498) is
CUDA-only: it builds its network with ``.half().cuda()``, loads its data onto ``cuda:0`` in fp16 and times
itself with CUDA events. This port runs the package's own code (network, whitening initialisation, Nesterov
SGD with its decoupled hyperparameters, LR and lookahead schedules, alternating flip + 2-pixel translate
augmentation, label smoothing 0.2, 9.9 epochs at batch 1024, ``evaluate`` with its TTA levels) unchanged,
with these differences, and only these:

1. Device: the training loader is ``CpuCifarLoader`` (airbench's ``CifarLoader`` with ``gpu="cpu"``), passed
   as ``train94(train_loader=...)``; ``train()`` builds its test loader itself (``CifarLoader('cifar10',
   train=False)``), so ``airbench.utils.CifarLoader`` is the CPU class for the duration of the call.
2. Precision: fp32 weights (``.half()`` and ``.cuda()`` are identities while ``make_net94`` builds the
   network; the package: fp16 weights, fp32 BatchNorm) and fp32 images (the package's fp16-rounded pixel
   values, held in fp32). The forward pass runs in bf16 autocast where the CPU has native bf16
   (AVX512-BF16 or AMX), else in fp32; the logits are returned in fp32, so the loss is fp32.
3. Timers: ``torch.cuda.Event`` and ``torch.cuda.synchronize`` are wall-clock stand-ins for the call, so the
   package's own ``total_time_seconds`` is wall-clock seconds on the CPU.

Run (about 50-90 minutes on 2 cores for all 50,000 / 10,000 images; nice it on a shared machine)::

    nice -n 10 python benchmarks/airbench_cpu_port.py --out results/cpu-airbench94/result.json
    python benchmarks/airbench_cpu_port.py --readme-from results/cpu-airbench94/result.json  # its README.md
    python benchmarks/airbench_cpu_port.py --train-subset 2048 --test-subset 500 --epochs 1 --out /tmp/x.json

The result JSON holds the test accuracy in percent (plain, flip TTA, full TTA), seconds, the torch version,
the CPU, the thread count, the precision, the exact command and the package's printed table.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata as md
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import peer_airbench as peer  # the sibling module (benchmarks/)
import torch
from torch import nn

from cifarhelpers.data import load_cifar10
from cifarhelpers.files import read_json, write_json
from cifarhelpers.training import device_name

CPU = torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX), so bf16 autocast pays."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(bool(check()) for check in checks if check is not None)


def cpu_loader_class(airbench):
    """airbench's ``CifarLoader`` on the CPU with fp32 images (its fp16-rounded values); ``gpu`` is ignored."""

    class CpuCifarLoader(airbench.CifarLoader):
        def __init__(self, path, train=True, batch_size=500, aug=None, drop_last=None, shuffle=None, altflip=False,
                     gpu=None):
            super().__init__(path, train=train, batch_size=batch_size, aug=aug, drop_last=drop_last,
                             shuffle=shuffle, altflip=altflip, gpu="cpu")
            self.images = self.images.float()

    return CpuCifarLoader


class AutocastSequential(nn.Sequential):
    """``nn.Sequential`` whose forward runs in CPU autocast at ``autocast_dtype`` (None: none), logits in fp32."""

    autocast_dtype: torch.dtype | None = None

    def forward(self, x):
        """(N, 3, 32, 32) images to (N, 10) logits, under CPU autocast when ``autocast_dtype`` is set."""
        if self.autocast_dtype is None:
            return super().forward(x)
        with torch.autocast("cpu", dtype=self.autocast_dtype):
            out = super().forward(x)
        return out.float()


@contextlib.contextmanager
def patched(obj, **attrs):
    """Set attributes of ``obj`` for the block; the old values are restored after."""
    old = {name: getattr(obj, name) for name in attrs}
    for name, value in attrs.items():
        setattr(obj, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(obj, name, value)


def cpu_make_net94(autocast_dtype: torch.dtype | None = None) -> nn.Sequential:
    """airbench's ``make_net94()`` in fp32 on the CPU (``.half()``/``.cuda()`` identities while it builds),
    its forward in autocast at ``autocast_dtype``. Input (N, 3, 32, 32) float32, output (N, 10) float32 logits."""
    from airbench import lib_airbench94

    with patched(nn.Module, half=lambda self: self, cuda=lambda self, device=None: self):
        net = lib_airbench94.make_net94()
    net.__class__ = AutocastSequential
    net.autocast_dtype = autocast_dtype
    return net


class WallClockEvent:
    """Stand-in for ``torch.cuda.Event(enable_timing=True)``: ``elapsed_time`` in milliseconds of wall-clock."""

    def __init__(self, *args, **kwargs):
        self.t = None

    def record(self, *args, **kwargs):
        """Read the wall clock now (``torch.cuda.Event.record``'s stand-in; arguments ignored)."""
        self.t = time.perf_counter()

    def elapsed_time(self, end: "WallClockEvent") -> float:
        """Milliseconds from this event to ``end``, as ``torch.cuda.Event.elapsed_time`` gives them."""
        return 1e3 * (end.t - self.t)


@contextlib.contextmanager
def cpu_port(airbench):
    """The call-boundary patches (see the module docstring): airbench's own test loader on the CPU, wall-clock
    CUDA events. Restored on exit."""
    loader = cpu_loader_class(airbench)
    with patched(airbench.utils, CifarLoader=loader), \
            patched(torch.cuda, Event=WallClockEvent, synchronize=lambda *a, **k: None):
        yield loader


def run_cpu(folder: Path, *, seed: int = 0, epochs: float | None = None, batch_size: int | None = None,
            autocast: bool | None = None) -> dict:
    """train94 through the port in ``folder`` (which holds :data:`peer_airbench.DATA_DIR`), then its TTA levels.

    Args:
        folder: working directory for the run; ``folder/cifar10/{train,test}.pt`` must exist.
        seed: ``torch.manual_seed`` before the run.
        epochs, batch_size: None: airbench94's own (9.9 and 1024).
        autocast: bf16 autocast on/off; None: on where the CPU has native bf16 (:func:`cpu_has_bf16`).

    Returns:
        peer_airbench.run_once's record (percent, seconds) plus ``precision``.

    Raises:
        DataError: the files are missing or malformed (airbench would download torchvision's copy instead).
    """
    airbench = peer.import_airbench()
    from airbench import lib_airbench94

    peer.check_airbench_files(Path(folder) / peer.DATA_DIR)
    dtype = torch.bfloat16 if (cpu_has_bf16() if autocast is None else autocast) else None
    hyp = lib_airbench94.hyp
    kwargs = {} if epochs is None else {"epochs": epochs}
    with peer.working_directory(Path(folder)), cpu_port(airbench) as loader_class:
        train_loader = loader_class(peer.DATA_DIR, train=True, batch_size=batch_size or hyp["opt"]["batch_size"],
                                    aug=hyp["aug"], altflip=True)
        rec = peer.run_once(airbench, seed, CPU, train_loader=train_loader,
                            make_net=functools.partial(cpu_make_net94, dtype), **kwargs)
    rec["precision"] = {"weights": "float32", "images": "float32 (fp16-rounded values)",
                        "autocast": None if dtype is None else "bfloat16",
                        "cpu_has_native_bf16": cpu_has_bf16()}
    return rec


PORT_DIFFERENCES = [
    "device: CPU; the package's CifarLoader with gpu='cpu' for the training loader (passed in) and the test loader "
    "train() builds (patched for the call)",
    "precision: fp32 weights and images (the package: fp16 weights with fp32 BatchNorm, fp16 images); forward in "
    "bf16 autocast only where the CPU has native bf16, else fp32; fp32 logits and loss",
    "timers: torch.cuda.Event/synchronize replaced by wall-clock stand-ins, so airbench_seconds is wall-clock",
    "a seed: torch.manual_seed(seed) before train94 (the package sets none)",
]


def readme_text(result: dict) -> str:
    """README.md for a result folder: what ran, the three accuracies (percent), seconds, the port's differences."""
    env, prec, data = result["environment"], result["precision"], result["data"]
    nice = f", at nice {env['niceness']}" if env.get("niceness") else ""
    precision = "fp32 weights, " + (f"{prec['autocast']} autocast" if prec["autocast"] else
                                    "fp32 forward (this CPU has no native bf16: no autocast)")
    lines = [
        "# airbench94 on a CPU, on the JPEG copy: one run",
        "",
        f"One run (seed {result['seed']}) of airbench94 (PyPI `airbench` {env['airbench_version']}, `train94` with its "
        f"own hyperparameters: {result['epochs']:g} epochs at batch {result['batch_size']}) through the CPU port "
        "[`benchmarks/airbench_cpu_port.py`](../../benchmarks/airbench_cpu_port.py), trained on the "
        f"{data['train_images']:,} and tested on the {data['test_images']:,} images of the JPEG copy (quality 75, "
        f"`../shared/data/cifar10-jpeg.tar.gz`), not on the original CIFAR-10. {env['cpu']}; torch "
        f"{env['torch_version']}; {precision}. Started {result['started_at']}, finished {result['finished_at']}.",
        "",
        "| test accuracy (%) | plain | flip TTA | full TTA (flip + translate) |",
        "| --- | --- | --- | --- |",
        f"| this run | {result['test_accuracy_percent']:.2f} | {result['test_accuracy_flip_tta_percent']:.2f} | "
        f"{result['test_accuracy_full_tta_percent']:.2f} |",
        "",
        f"Against the published {peer.PUBLISHED['test_accuracy_full_tta_percent']}% (full TTA, mean of "
        f"{peer.PUBLISHED['runs']} runs on the original CIFAR-10): {result['drop_points_vs_published']:.2f} points "
        "lower. One run on a CPU: its run-to-run spread is not measured here (the GPU report's `peer` part runs 5 "
        "on a GPU).",
        "",
        f"Seconds (wall-clock on a shared machine, beside other jobs{nice}): {result['airbench_seconds']:.0f} s by "
        "the package's own timer (whitening init + training + the final full-TTA pass; published: "
        f"{peer.PUBLISHED['seconds']} s on an {peer.PUBLISHED['device']}), {result['wall_seconds']:.0f} s for the "
        "whole `train94` call with its per-epoch evaluations. Not a speed figure for the recipe.",
        "",
        "The port's differences from the GPU package (everything else is the package's code, called unchanged):",
        "",
        *[f"- {d}" for d in result["port_differences"]],
        "",
        f"Command: `{result['command']}` (in the repository root, `CIFAR10_ROOT` set to the unpacked copy). "
        "`result.json` holds every figure with its unit, and the package's printed table.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """The command line (``--help``); returns the exit status (0 done)."""
    p = argparse.ArgumentParser(description="airbench94 through the CPU port on the JPEG copy; writes one JSON.")
    p.add_argument("--readme-from", default=None, metavar="JSON",
                   help="only write README.md beside a finished run's result JSON, then exit")
    p.add_argument("--data-root", default=None, help="the CIFAR-10 copy (default: $CIFAR10_ROOT)")
    p.add_argument("--work-dir", default="/tmp/airbench-cpu", help="where cifar10/train.pt and test.pt are written")
    p.add_argument("--out", default=None, help="the result JSON (required unless --readme-from)")
    p.add_argument("--train-subset", type=int, default=None, help="class-balanced subset (default: all 50,000)")
    p.add_argument("--test-subset", type=int, default=None, help="class-balanced subset (default: all 10,000)")
    p.add_argument("--epochs", type=float, default=None, help="default: airbench94's 9.9")
    p.add_argument("--batch-size", type=int, default=None, help="default: airbench94's 1024")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--autocast", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast: auto = on where the CPU has native bf16")
    args = p.parse_args(argv)
    if args.readme_from:
        result = read_json(args.readme_from, "the port's result JSON")
        (Path(args.readme_from).parent / "README.md").write_text(readme_text(result))
        return 0
    if not args.out:
        p.error("--out is required: the result JSON to write")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = load_cifar10(args.data_root, progress=False)
    folder = Path(args.work_dir).resolve()
    files = peer.write_airbench_files(data, folder / peer.DATA_DIR, args.train_subset, args.test_subset)
    print(f"airbench files: {files['train_images']} train / {files['test_images']} test images in {files['dir']}",
          flush=True)
    rec = run_cpu(folder, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                  autocast={"auto": None, "on": True, "off": False}[args.autocast])
    result = {
        "what": "airbench94 (PyPI airbench 0.1.8, train94 with its own hyperparameters) through the CPU port "
                "(benchmarks/airbench_cpu_port.py), one run, trained and tested on the JPEG copy",
        "started_at": started, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {**data.source.to_dict(), "copy": "JPEG quality 75 (../shared/data/cifar10-jpeg.tar.gz)",
                 "train_images": files["train_images"], "test_images": files["test_images"]},
        **{k: rec[k] for k in ("seed", "test_accuracy_percent", "test_accuracy_flip_tta_percent",
                               "test_accuracy_full_tta_percent", "airbench_seconds", "wall_seconds",
                               "evaluation_seconds", "precision")},
        "epochs": args.epochs if args.epochs is not None else 9.9,
        "batch_size": args.batch_size or 1024,
        "drop_points_vs_published": peer.PUBLISHED["test_accuracy_full_tta_percent"]
        - rec["test_accuracy_full_tta_percent"],
        "published": peer.PUBLISHED,
        "environment": {"cpu": device_name(CPU), "torch_threads": torch.get_num_threads(), "niceness": os.nice(0),
                        "torch_version": torch.__version__, "airbench_version": md.version("airbench"),
                        "python_version": platform.python_version(), "platform": platform.platform()},
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "port_differences": PORT_DIFFERENCES,
        "units": {"*_percent": "percent of test images correct, 0-100",
                  "airbench_seconds": "the package's own timer (whitening init + training + final full-TTA pass), "
                                      "wall-clock",
                  "wall_seconds": "the whole train94 call (with per-epoch evaluations)",
                  "evaluation_seconds": "the three evaluations after training (plain, flip, full TTA)",
                  "drop_points_vs_published": "percentage points: 94.01 minus the full-TTA accuracy here"},
        "printed": rec["printed"],
    }
    write_json(args.out, result)
    print(f"airbench94 (CPU port): {rec['test_accuracy_percent']:.2f}% plain, {rec['test_accuracy_flip_tta_percent']:.2f}% "
          f"flip TTA, {rec['test_accuracy_full_tta_percent']:.2f}% full TTA; {rec['airbench_seconds']} s (airbench "
          f"timer), {rec['wall_seconds']:.0f} s wall -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
