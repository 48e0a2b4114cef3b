"""GPU report: everything the project wants measured on a GPU, in one command and one short visit.

Run::

    python benchmarks/gpu_report.py                              # on the GPU node: writes into $OUT
    python benchmarks/gpu_report.py --budget-minutes 9 --out /tmp/report --commit <sha>
    python benchmarks/gpu_report.py --parts main_job profile     # only some parts
    python benchmarks/gpu_report.py --parts variants --variant default --variant lrmin5e-6 min_lr=5e-6
    python benchmarks/gpu_report.py --smoke --out /tmp/gr-smoke  # every part, tiny, on the CPU (a few minutes)
    python benchmarks/gpu_report.py --smoke --budget-minutes 1   # the same, with most parts skipped by the budget
    python benchmarks/gpu_report.py --plan round2 --show-plan     # a planned visit: its steps and estimates
    python benchmarks/gpu_report.py --plan round2 --step 1        # its first command (--smoke: the CPU rehearsal)

Parts, in order of priority (each part's results are written to ``gpu_report.json`` as soon as each of
its runs ends, atomically, so a run cut short keeps what it measured):

1. ``main_job``: the main job (custom ResNet, OneCycle + Adam, 24 epochs, batch 512, cutout8) on the
   device loader, channels-last, bf16 autocast, all 50,000 training and 10,000 test images, seeds
   0, 1, 2 without ``torch.compile``, then one seed with ``compile=True`` if time allows (and unless
   ``--no-compile-run``).
1b. ``peer`` (``benchmarks/peer_airbench.py``, the ``benchmark`` extra): airbench94 from PyPI ``airbench``
   (94.01% published on the original CIFAR-10 in 3.83 s on an A100) on the same JPEG copy and card, 5 runs:
   test accuracy plain / flip TTA / full TTA (mean, spread), its time beside the main job's, and
   ``drop_points`` = 94.01 minus its full-TTA mean. On a CPU: the import and its files only.
2. ``lr_sweep``: the LR range test (100 iterations, batch 512, whole training set), then the main job
   at each LRMAX of ``--lr-grid`` (24 epochs, seed 0); the recipe's default LRMAX reuses part 1's seed-0
   run. The grid runs in order of information: the default, its neighbours, the range test's suggestion, then
   the rest by distance from the default (log scale).
3. ``variants``: the main job under named changes of its config (``--variant NAME FIELD=VALUE ...``:
   optimizer, weight decay, label smoothing, ...), each on the first seed in the order given; then the
   best ``--variant-top-k`` of them by that seed's test accuracy on the other seeds. A variant that
   changes nothing reuses part 1's runs, on every seed part 1 ran. Each variant is compared with the
   default: the difference in points, Welch's t, and whether it is adopted (at least 3 seeds each, its mean
   beyond the spread of the default's seeds).
4. ``albumentations_path``: the main job with the albumentations DataLoader (one worker per core),
   seed 0; fewer epochs if 24 do not fit (said so in the JSON).
5. ``notebooks``: notebooks 01-06 with the full profile (papermill), packed into ``notebooks.tar.gz``.
6. ``zoo``: ResNet18-GN (plateau_sgd, 20 epochs, device loader) and DilatedNet (step_sgd,
   affine_cutout16, albumentations loader, 100 epochs or as many as fit).
7. ``profile``: ``torch.profiler`` over one epoch of the main job: share of device time in
   convolution/matmul kernels, in other kernels and idle; the top 10 kernels.

Budget: the whole command keeps to ``--budget-minutes`` (default 9). Before each run the script
estimates its cost from figures measured earlier in this report (the main job's seconds per step
and per epoch, its data and warm-up seconds, short probes of a model's step time or of a
DataLoader's images/s) and skips what no longer fits, recording the item, the reason, the estimate
and the time left in ``skipped`` (and printing it). The cheap ``profile`` part's estimate is held
back from the earlier parts so that it still runs. A watchdog interrupts whatever runs when the
budget is spent; that run is recorded as ``interrupted`` with the epochs it finished.

Outputs (in ``--out``, default ``$OUT``, else ``benchmarks/out/gpu-report``), always the same four files:

* ``gpu_report.json``: environment (device, versions, git commit), data (source and SHA-256),
  budget, settings, every part's results, skipped items, errors, a summary table, units;
* ``notebooks.tar.gz``: the executed notebooks and the PNG/JSON files they wrote (no ``*.pt``);
  a note saying why when the part did not run;
* ``profile_top_kernels.txt``: the top-kernel table of part 7 (or why it is missing);
* ``gpu_report.log``: everything printed.

Run folders of the trainings (checkpoints, weights) go to ``--work-dir`` (default: a temporary
folder, removed at the end), never to the output folder.

Figures and units (key suffixes in the JSON; ``units`` in the JSON repeats this):

* ``*_seconds``: wall-clock seconds, with ``torch.cuda.synchronize()`` before every clock read on a GPU.
  A run's ``wall_seconds`` = ``data_seconds`` (subsets, statistics, loaders, data to the device)
  + ``warmup_seconds`` (first epoch's training seconds minus the median of the other epochs': cuDNN
  autotuning, ``torch.compile``) + ``training_seconds`` (the rest of the training passes)
  + ``evaluation_seconds`` (test passes, the last one's flip-TTA pass included: ``flip_tta_seconds``) + ``other_seconds`` (model build, per-epoch checkpoints
  and metrics writes, the final plot).
* ``seconds_per_epoch``: mean of (train + test) seconds over all epochs (fit's figure);
  ``steady_seconds_per_epoch``: median over epochs 2..N (no warm-up).
* ``*_accuracy_fraction``: in [0, 1]; ``*_accuracy_percent``: the same x 100. ``history`` entries are
  ``fit()``'s own: accuracies as fractions, losses as mean cross-entropy per image, ``lr`` the LR of the
  epoch's last step.
* ``*_percent`` (profile): percent of the profiled epoch's device time, 0-100.
* ``*_per_second``: images per wall-clock second; ``*_mib``: mebibytes (2**20 bytes); ``*_bytes``: bytes.

Exit status: 0 all requested parts ran (some items may have been skipped by the budget: see
``skipped``), 1 the report could not start (device, data; the files are still written), 3 interrupted
(budget watchdog, SIGTERM, Ctrl-C; the files hold what was measured). Progress bars are off
(``TQDM_DISABLE=1`` unless set; the notebooks' kernels inherit it): one line per finished run instead.

Dependencies: the standard library, torch, numpy and cifarhelpers (papermill for the notebooks, airbench
for the peer part: the ``benchmark`` extra).
Works with torch 2.11-2.14 and Python 3.10-3.12.
"""

from __future__ import annotations

import os
import time

_T0 = time.perf_counter()  # the budget counts from here, before the heavy imports
# No progress bars (torch-lr-finder draws one even when asked for none): one line per finished run
# instead. Read by tqdm at import, so set before anything imports it; the notebooks' kernels inherit it.
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import cifarhelpers  # noqa: E402
from cifarhelpers.cli import field_parser  # noqa: E402
from cifarhelpers.config import FIND_LR, PROFILES, TrainConfig, resolve_profile  # noqa: E402
from cifarhelpers.data import load_cifar10, resolve_root  # noqa: E402
from cifarhelpers.devices import CODE_COMMIT_ENV, device_name, git_state, resolve_device  # noqa: E402
from cifarhelpers.engine import backward_and_step, train_one_epoch  # noqa: E402
from cifarhelpers.errors import CifarHelpersError, ConfigError, DivergenceError  # noqa: E402
from cifarhelpers.files import atomic_write, read_json, write_json  # noqa: E402
from cifarhelpers.handoffs import LR_JSON, TRAIN_JSON  # noqa: E402
from cifarhelpers.loaders import AlbumentationsLoader, prepare_data, resolved_loader, train_statistics  # noqa: E402
from cifarhelpers.lr_range_test import run_lr_range_test  # noqa: E402
from cifarhelpers.models import MODEL_DEFAULTS, build_model  # noqa: E402
from cifarhelpers.precision import select_precision  # noqa: E402
from cifarhelpers.recipes import RECIPES, build_criterion, build_optimizer  # noqa: E402
from cifarhelpers.reproducibility import seed_epoch, seed_everything  # noqa: E402
from cifarhelpers.runs import METRICS_FILE  # noqa: E402
from cifarhelpers.sweep_trials import latest_run  # noqa: E402
from cifarhelpers.notebook_runner import NOTEBOOKS, run_notebooks  # noqa: E402
from cifarhelpers.train import fit  # noqa: E402
from cifarhelpers.transforms import DEVICE_TRANSFORM_SETS, train_transform  # noqa: E402


def _sibling(name: str):
    """A module beside this file (benchmarks/ here; the bundle copies it beside gpu_report.py)."""
    import importlib.util

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


peer_airbench = _sibling("peer_airbench")
report_plans = _sibling("report_plans")

# =========================================================================================
# Settings: every hyperparameter of the report in one place
# =========================================================================================

PARTS = ("main_job", "peer", "lr_sweep", "variants", "albumentations_path", "notebooks", "zoo", "profile")
REPORT_JSON = "gpu_report.json"
NOTEBOOKS_TAR = "notebooks.tar.gz"
TOP_KERNELS_TXT = "profile_top_kernels.txt"
LOG_FILE = "gpu_report.log"
#: The notebooks the report runs: 01-06. Notebook 07 (an LR sweep, 18 full runs with the full profile) is left
#: out; the report's own ``lr_sweep`` part measures the same grid within the time budget.
REPORT_NOTEBOOKS = tuple(n for n in NOTEBOOKS if not n.startswith("07"))
#: ``--notebooks``: the chains the notebooks part can run (a planned visit runs 01-07 at a grid that fits).
NOTEBOOK_CHAINS = {"01-06": REPORT_NOTEBOOKS, "01-07": tuple(NOTEBOOKS)}
OUTPUT_FILES = (REPORT_JSON, NOTEBOOKS_TAR, TOP_KERNELS_TXT, LOG_FILE)
#: What comes back from the GPU node: at most this many bytes per file (and at most 8 files).
MAX_FILE_BYTES = 16 * 2**20
MAX_LOG_BYTES = 15 * 2**20
SCHEMA = "cifarhelpers-gpu-report/1"
DEFAULT_LR = RECIPES["onecycle_adam"].default_lr  # the main job's LRMAX (0.005 since the H200 sweep)
#: Kernel names counted as convolution / matrix multiplication (case-insensitive), unless they
#: also match NOT_CONV_MATMUL (cuDNN's batch-norm and pooling kernels carry "cudnn" too).
CONV_MATMUL = r"conv|gemm|cutlass|xmma|sm80_|sm90_|sm100_|cudnn|wgrad|dgrad|implicit|winograd|fprop|mm_|addmm|aten::mm|matmul|linear"
NOT_CONV_MATMUL = r"bn_|batch_?norm|batchnorm|_norm|pool|softmax|elementwise|reduce|memcpy|memset|nchwtonhwc|nhwctonchw"
TOP_KERNELS = 10


@dataclass(frozen=True)
class Settings:
    """The report's hyperparameters. :data:`FULL` is what runs on the GPU; :data:`SMOKE` the same code
    paths on tiny subsets on the CPU.

    Attributes:
        mode: ``"full"`` or ``"smoke"``.
        device: the device when ``--device`` is not given (``"auto"`` or ``"cpu"``).
        train_subset, test_subset: images used (None: all 50,000 / 10,000).
        batch_size, epochs: the main job's batch and epochs (parts 1, 2, 3, 4, 7).
        seeds: part 1's and part 3's seeds (``--seeds``).
        lr_grid: part 2's LRMAX values (``--lr-grid``).
        variants: part 3's ``(name, {TrainConfig field: value})`` pairs, in the order they run (``--variant``).
        variant_top_k: how many variants, the best on the first seed, also run on the other seeds.
        lr_test_iterations: part 2's LR range test iterations (17 is the minimum).
        albumentations_workers: part 4's DataLoader workers; None: one per usable core.
        resnet18_epochs, dilated_epochs: part 6's epochs (targets; fewer if the budget demands; the full
            report's are each model's own, ``cifarhelpers.models.MODEL_DEFAULTS``).
        notebook_parameters: part 5's papermill parameters (data root and device are added).
        profile_warmup_steps: steps run before the profiled epoch (cuDNN autotuning, allocator).
        probe_warmup_steps, probe_steps: step-time probe of a model (synthetic batch).
        loader_probe_batches: batches drawn to measure a DataLoader's images/s.
        min_start_seconds: least time left to start a run whose cost cannot be estimated.
        final_margin_seconds: kept for the final writes (JSON, tar, text) at the end.
        safety_factor: every estimate is multiplied by this.
        compile_warmup_guess_seconds: torch.compile's first-epoch cost before it is measured.
        notebooks_fixed_seconds: notebooks' cost beyond their LR test and training (kernels, plots, GradCAM).
        profiler_overhead_factor: a profiled epoch costs this many unprofiled epochs.
        lr_test_step_factor: an LR range test iteration costs this many training steps (it runs in
            fp32 on a contiguous model, reads the loss back every step, smooths and records it).
        profile_fixed_seconds: building the profiled run's data and model, reading the trace.
        prior_fixed_seconds, prior_epoch_overhead_seconds: a run's fixed and per-epoch overhead
            (data preparation; checkpoint writes) before a main-job run measured them.
    """

    mode: str
    device: str
    train_subset: int | None
    test_subset: int | None
    batch_size: int
    epochs: int
    seeds: tuple[int, ...]
    lr_grid: tuple[float, ...]
    variants: tuple[tuple[str, dict], ...]
    variant_top_k: int
    lr_test_iterations: int
    albumentations_workers: int | None
    resnet18_epochs: int
    dilated_epochs: int
    notebook_parameters: dict
    profile_warmup_steps: int
    probe_warmup_steps: int
    probe_steps: int
    loader_probe_batches: int
    min_start_seconds: float
    final_margin_seconds: float
    safety_factor: float = 1.15
    compile_warmup_guess_seconds: float = 120.0
    notebooks_fixed_seconds: float = 90.0
    profiler_overhead_factor: float = 1.5
    lr_test_step_factor: float = 3.0
    profile_fixed_seconds: float = 15.0
    prior_fixed_seconds: float = 10.0
    prior_epoch_overhead_seconds: float = 0.5

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def loader_workers(self) -> int:
        """The albumentations loader's DataLoader workers: ``albumentations_workers``, or one per
        usable core (:func:`usable_cpus`) when it is None."""
        return self.albumentations_workers if self.albumentations_workers is not None else usable_cpus()


FULL = Settings(
    mode="full", device="auto", train_subset=None, test_subset=None, batch_size=512, epochs=24,
    seeds=(0, 1, 2), lr_grid=tuple(PROFILES["full"].sweep["max_lrs"]), lr_test_iterations=100,  # notebook 07's grid
    # What the H100 visit left to settle (results/gpu-nvidia-h100/README.md), most informative first: OneCycle from
    # and back to almost 0 (LRMIN 5e-6: +0.31 points there, within run-to-run noise), the same at LRMAX 1e-2, and
    # label smoothing 0 as the control of the default 0.2.
    variants=(("default", {}),
              ("lrmin5e-6", {"min_lr": 5e-6}),
              ("ls0", {"label_smoothing": 0.0}),
              ("lrmax1e-2_lrmin1e-5", {"max_lr": 1e-2, "min_lr": 1e-5})),
    variant_top_k=2,
    albumentations_workers=None, resnet18_epochs=MODEL_DEFAULTS["resnet18"]["epochs"],
    dilated_epochs=MODEL_DEFAULTS["dilated_net"]["epochs"],
    notebook_parameters={"profile": "full"},
    notebooks_fixed_seconds=150.0,  # H100 node: 01-05 took over 174 s (H200: 121 s for 01-06); 90 s was too little
    profile_warmup_steps=5, probe_warmup_steps=3, probe_steps=5, loader_probe_batches=40,
    min_start_seconds=20.0, final_margin_seconds=15.0,
)
#: Tiny and on the CPU; main-job runs keep 2 epochs so the warm-up split (epoch 1 vs the rest) is computed.
SMOKE = Settings(
    mode="smoke", device="cpu", train_subset=64, test_subset=50, batch_size=16, epochs=2,
    seeds=(0,), lr_grid=(1e-3, 5e-3), lr_test_iterations=17,  # 5e-3: the default, reused
    variants=(("default", {}), ("onecycle_sgd", {"recipe": "onecycle_sgd", **RECIPES["onecycle_sgd"].defaults})),
    variant_top_k=1,
    albumentations_workers=0, resnet18_epochs=1, dilated_epochs=1,
    notebook_parameters={"profile": "short", "train_subset": 64, "test_subset": 50, "epochs": 1,
                         "batch_size": 16, "lr_test_iterations": 17, "images_per_class": 2, "num_images": 3, "draws": 3,
                         "num_mistakes": 8},
    profile_warmup_steps=1, probe_warmup_steps=1, probe_steps=1, loader_probe_batches=2,
    min_start_seconds=3.0, final_margin_seconds=3.0,
    compile_warmup_guess_seconds=90.0, notebooks_fixed_seconds=60.0, profile_fixed_seconds=5.0, lr_test_step_factor=2.0,
    prior_fixed_seconds=6.0, prior_epoch_overhead_seconds=0.3,
)

def main_config(settings: Settings, **changes) -> TrainConfig:
    """The main job as the report runs it (device loader, channels-last, mixed precision) at ``settings``'
    size, with ``changes`` (TrainConfig fields) applied."""
    return TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, train_subset=settings.train_subset,
                       test_subset=settings.test_subset, loader="device", channels_last=True, amp=True, **changes)


#: TrainConfig fields a variant may change without changing what a run costs: the calibration of the main
#: job's time holds for it (a variant that changes anything else is estimated with that calibration too, but
#: does not calibrate).
SAME_COST_FIELDS = ("recipe", "max_lr", "min_lr", "end_lr", "pct_start", "weight_decay", "label_smoothing",
                    "logit_scale", "warmup_epochs", "seed",
                    "lr_rule", "lr_test_iterations", "output_dir")


def costs_as_main_job(cfg: TrainConfig, base: TrainConfig) -> bool:
    """Whether ``cfg`` differs from ``base`` only in :data:`SAME_COST_FIELDS`."""
    return cfg.replace(**{f: getattr(base, f) for f in SAME_COST_FIELDS}) == base


UNITS = {
    "*_seconds": "wall-clock seconds (torch.cuda.synchronize() before every clock read on a GPU)",
    "wall_seconds": "= data_seconds + warmup_seconds + training_seconds + evaluation_seconds + other_seconds",
    "warmup_seconds": "first epoch's train seconds minus the median of the other epochs' (cuDNN autotuning, "
                      "torch.compile); null with a single epoch",
    "flip_tta_seconds": "the last epoch's extra test pass with horizontal-flip TTA; part of evaluation_seconds",
    "other_seconds": "model build, per-epoch checkpoint and metrics writes, final plot",
    "seconds_per_epoch": "mean (train + test) seconds over all epochs, as fit() reports it",
    "steady_seconds_per_epoch": "median (train + test) seconds over epochs 2..N",
    "*_accuracy_fraction": "fraction of test images correct, in [0, 1]",
    "*_accuracy_percent": "percent of test images correct, 0-100",
    "*_percent": "percent, 0-100 (profile: of the profiled epoch's device time)",
    "*_per_second": "images per wall-clock second",
    "*_mib": "mebibytes (2**20 bytes)",
    "*_bytes": "bytes",
    "lr, max_lr, suggested_lr, lrs": "learning rate",
    "losses": "LR range test: smoothed training cross-entropy per image",
    "history": "fit()'s per-epoch entries: train/test accuracy as fractions in [0, 1], losses as mean "
               "cross-entropy per image, lr of the epoch's last step, train/test seconds wall-clock",
    "epochs_*": "passes over the training set",
    "estimate_seconds": "the cost predicted before the item ran (safety factor included)",
    "*_points": "percentage points of test accuracy (variant mean - default mean; the default's max - min)",
    "welch_t, welch_p": "Welch's unequal-variance t statistic of variant vs default, and its two-sided p value",
}


# =========================================================================================
# Pure helpers: budget, estimates, decisions, grid order, figures (tested without training)
# =========================================================================================


class Budget:
    """Wall-clock budget of the whole command.

    Args:
        total_seconds: the budget.
        margin_seconds: kept back for the final writes; :meth:`left` excludes it.
        start: clock reading at the start (default: now).
        clock: the clock (``time.perf_counter``; a fake one in tests).
    """

    def __init__(self, total_seconds: float, margin_seconds: float = 0.0, start: float | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.total_seconds = float(total_seconds)
        self.margin_seconds = float(margin_seconds)
        self.clock = clock
        self.start = clock() if start is None else start

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        """Seconds left for new work (the final margin excluded); may be negative."""
        return self.total_seconds - self.margin_seconds - self.elapsed()

    def to_dict(self) -> dict:
        return {"budget_seconds": self.total_seconds, "final_margin_seconds": self.margin_seconds,
                "elapsed_seconds": round(self.elapsed(), 3), "left_seconds": round(self.left(), 3)}


@dataclass
class Decision:
    """Whether an item runs, and why not."""

    run: bool
    reason: str | None
    estimate_seconds: float | None
    available_seconds: float


def decide(estimate_seconds: float | None, available_seconds: float, min_start_seconds: float) -> Decision:
    """Run an item when its estimate fits in the time available; with no estimate, when at least
    ``min_start_seconds`` are left (the watchdog stops it at the budget's end)."""
    if estimate_seconds is None:
        if available_seconds >= min_start_seconds:
            return Decision(True, None, None, available_seconds)
        return Decision(False, f"no estimate and only {max(available_seconds, 0):.0f} s available (< "
                               f"{min_start_seconds:.0f} s needed to start)", None, available_seconds)
    if estimate_seconds <= available_seconds:
        return Decision(True, None, estimate_seconds, available_seconds)
    return Decision(False, f"estimated {estimate_seconds:.0f} s > {max(available_seconds, 0):.0f} s available",
                    estimate_seconds, available_seconds)


def fit_epochs(target: int, per_epoch_seconds: float, fixed_seconds: float, available_seconds: float,
               min_epochs: int = 1) -> int:
    """The most epochs (up to ``target``) whose estimated cost fits in ``available_seconds``; 0 when
    fewer than ``min_epochs`` fit."""
    if per_epoch_seconds <= 0:
        return target
    n = int(math.floor((available_seconds - fixed_seconds) / per_epoch_seconds))
    n = min(target, n)
    return n if n >= min_epochs else 0


@dataclass
class Calibration:
    """Figures the estimates are built from: measured on a main-job run, or probed before one.

    Attributes:
        step_seconds: one training step of the main model at the main batch size.
        steps_per_epoch: training steps per epoch of the main job.
        test_seconds_per_epoch: one evaluation pass.
        epoch_overhead_seconds: per-epoch cost outside the passes (checkpoint and metrics writes).
        fixed_seconds: per-run cost (data preparation, warm-up).
        source: where the figures come from.
    """

    step_seconds: float
    steps_per_epoch: int
    test_seconds_per_epoch: float
    epoch_overhead_seconds: float
    fixed_seconds: float
    source: str

    @classmethod
    def from_run(cls, record: dict) -> Calibration | None:
        """From a finished main-job run record (:func:`run_figures`); None when it lacks the figures."""
        hist = record.get("history") or []
        steps = record.get("steps_per_epoch")
        if not hist or not steps:
            return None
        train = [h["train_seconds"] for h in hist]
        test = [h["test_seconds"] for h in hist]
        steady_train = statistics.median(train[1:]) if len(train) > 1 else train[0]
        steady_test = statistics.median(test[1:]) if len(test) > 1 else test[0]
        other = max(0.0, record.get("other_seconds") or 0.0)
        fixed = (record.get("data_seconds") or 0.0) + (record.get("warmup_seconds") or 0.0) \
            + (record.get("eval_warmup_seconds") or 0.0)
        return cls(step_seconds=steady_train / steps, steps_per_epoch=steps, test_seconds_per_epoch=steady_test,
                   epoch_overhead_seconds=other / len(hist), fixed_seconds=fixed,
                   source=f"measured: run {record.get('label')}")

    def train_epoch_seconds(self, *, step_seconds: float | None = None, steps: int | None = None,
                            data_seconds: float | None = None) -> float:
        """One training pass: compute-bound (steps x step time), or data-bound when the loader is slower
        (``data_seconds``: the loader's time for one epoch)."""
        compute = (steps or self.steps_per_epoch) * (step_seconds or self.step_seconds)
        return max(compute, data_seconds) if data_seconds else compute

    def epoch_seconds(self, *, test_scale: float = 1.0, **train) -> float:
        return self.train_epoch_seconds(**train) + self.test_seconds_per_epoch * test_scale + self.epoch_overhead_seconds

    def run_seconds(self, epochs: int, *, extra_fixed: float = 0.0, test_scale: float = 1.0, **train) -> float:
        """A whole run: fixed + epochs x (train + test + overhead) + extra (unscaled by the safety factor)."""
        return self.fixed_seconds + extra_fixed + epochs * self.epoch_seconds(test_scale=test_scale, **train)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def warmup_seconds(seconds: list[float]) -> float | None:
    """First epoch's seconds minus the median of the others' (>= 0); None with fewer than 2 epochs."""
    if len(seconds) < 2:
        return None
    return max(0.0, seconds[0] - statistics.median(seconds[1:]))


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


def run_figures(metrics: dict, wall_seconds: float | None, batch_size: int) -> dict:
    """A run's figures from its ``metrics.json`` (complete or partial) and the wall time around ``fit``."""
    hist = list(metrics.get("history") or [])
    timings = metrics.get("timings") or {}
    train = [float(h["train_seconds"]) for h in hist]
    test = [float(h["test_seconds"]) for h in hist]
    data = timings.get("data_seconds")
    wall = wall_seconds if wall_seconds is not None else timings.get("wall_seconds")
    warm = warmup_seconds(train)
    train_total, test_total = sum(train), sum(test)
    flip_tta = sum(float(h.get("flip_tta_seconds") or 0.0) for h in hist)  # the last epoch's extra test pass
    training = train_total - (warm or 0.0)
    other = (wall - (data or 0.0) - train_total - test_total - flip_tta) if wall is not None else None
    train_images = (metrics.get("data") or {}).get("train_images")
    steps = train_images // batch_size if train_images else None
    steady_train = statistics.median(train[1:]) if len(train) > 1 else (train[0] if train else None)
    steady_epoch = statistics.median([a + b for a, b in zip(train[1:], test[1:])]) if len(hist) > 1 else (
        train[0] + test[0] if hist else None)
    completed = metrics.get("status") == "completed"
    acc = metrics.get("final_test_accuracy") if completed else None
    tta = metrics.get("final_test_accuracy_flip_tta") if completed else None
    return {
        "status": metrics.get("status"),
        "epochs_run": len(hist),
        "train_images": train_images,
        "test_images": (metrics.get("data") or {}).get("test_images"),
        "steps_per_epoch": steps,
        "wall_seconds": wall,
        "fit_wall_seconds": timings.get("wall_seconds"),
        "data_seconds": data,
        "warmup_seconds": warm,
        "training_seconds": training if hist else None,
        "evaluation_seconds": test_total + flip_tta if hist else None,
        "flip_tta_seconds": flip_tta if hist else None,
        "other_seconds": other,
        "eval_warmup_seconds": warmup_seconds(test),
        "train_seconds_total": train_total if hist else None,
        "seconds_per_epoch": (train_total + test_total) / len(hist) if hist else None,
        "steady_seconds_per_epoch": steady_epoch,
        "steady_train_images_per_second": (steps * batch_size / steady_train) if steps and steady_train else None,
        "test_accuracy_fraction": acc,
        "test_accuracy_percent": 100.0 * acc if acc is not None else None,
        "test_accuracy_flip_tta_percent": 100.0 * tta if tta is not None else None,
        "last_epoch_test_accuracy_fraction": hist[-1]["test_accuracy"] if hist else None,
        "history": [{k: h.get(k) for k in ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                                           "lr", "train_seconds", "test_seconds")} for h in hist],
    }


def accuracy_summary(records: list[dict]) -> dict:
    """Mean/min/max/std test accuracy (percent; plain, and the mean with flip TTA) and mean seconds over
    completed runs."""
    done = [r for r in records if r.get("test_accuracy_percent") is not None]
    acc = [r["test_accuracy_percent"] for r in done]

    def mean(key):
        vals = [r[key] for r in done if r.get(key) is not None]
        return statistics.mean(vals) if vals else None

    return {
        "runs_completed": len(done),
        "seeds": [r.get("seed") for r in done],
        "test_accuracy_percent_mean": statistics.mean(acc) if acc else None,
        "test_accuracy_percent_min": min(acc) if acc else None,
        "test_accuracy_percent_max": max(acc) if acc else None,
        "test_accuracy_percent_std": statistics.stdev(acc) if len(acc) > 1 else None,
        "test_accuracy_flip_tta_percent_mean": mean("test_accuracy_flip_tta_percent"),
        "wall_seconds_mean": mean("wall_seconds"),
        "seconds_per_epoch_mean": mean("seconds_per_epoch"),
        "steady_seconds_per_epoch_mean": mean("steady_seconds_per_epoch"),
    }


#: Seeds a variant and the default both need before a change of default can be adopted.
ADOPTION_SEEDS = 3


def compare_to_default(default: list[float], variant: list[float], min_seeds: int = ADOPTION_SEEDS) -> dict:
    """Whether a variant earns a change of default: the project's rule (a change is adopted only on at least
    ``min_seeds`` seeds each, when its mean test accuracy beats the default's by more than the spread, max - min,
    of the default's seeds), with Welch's t beside the difference.

    Args:
        default, variant: test accuracies in percent, one per seed (completed runs only).
        min_seeds: seeds each side needs before ``adopt`` can be True.

    Returns:
        ``difference_points`` (variant mean - default mean, percentage points), ``default_spread_points``,
        ``welch_t`` and ``welch_p`` (two-sided; Welch's unequal-variance t-test, ``scipy.stats.ttest_ind`` with
        ``equal_var=False``; None with fewer than 2 runs a side or no variance at all), the seed counts and
        ``adopt`` (bool).
    """
    from scipy import stats  # scikit-learn's own dependency; imported here so the report starts without it

    out = {"default_runs": len(default), "variant_runs": len(variant), "difference_points": None,
           "default_spread_points": None, "welch_t": None, "welch_p": None, "adopt": False}
    if not default or not variant:
        return out
    out["difference_points"] = statistics.mean(variant) - statistics.mean(default)
    out["default_spread_points"] = max(default) - min(default)
    if len(default) > 1 and len(variant) > 1 and (statistics.pvariance(default) + statistics.pvariance(variant)) > 0:
        test = stats.ttest_ind(variant, default, equal_var=False)
        out["welch_t"], out["welch_p"] = float(test.statistic), float(test.pvalue)
    out["adopt"] = (len(default) >= min_seeds and len(variant) >= min_seeds
                    and out["difference_points"] > out["default_spread_points"])
    return out


def classify_kernel(name: str) -> str:
    """``"conv_matmul"`` or ``"other"`` by the kernel's (or op's) name."""
    low = name.lower()
    if re.search(CONV_MATMUL, low) and not re.search(NOT_CONV_MATMUL, low):
        return "conv_matmul"
    return "other"


def summarize_kernels(records: list[tuple[str, float, int]], wall_seconds: float, top: int = TOP_KERNELS) -> dict:
    """Device-time shares of an epoch from ``(name, seconds, calls)`` records (one per kernel name).

    Shares are of ``max(wall, kernel total)``: conv/matmul + other + idle = 100%. Idle = wall minus
    the total kernel time, clipped at 0 (kernels on several streams may overlap).
    """
    conv = sum(s for n, s, _ in records if classify_kernel(n) == "conv_matmul")
    total = sum(s for _, s, _ in records)
    other = total - conv
    idle = max(0.0, wall_seconds - total)
    denom = max(wall_seconds, total) or 1.0
    ranked = sorted(records, key=lambda r: r[1], reverse=True)[:top]
    return {
        "wall_seconds": wall_seconds,
        "kernel_seconds": total,
        "conv_matmul_seconds": conv,
        "other_kernel_seconds": other,
        "idle_seconds": idle,
        "conv_matmul_percent": 100.0 * conv / denom,
        "other_kernel_percent": 100.0 * other / denom,
        "idle_percent": 100.0 * idle / denom,
        "kernel_names": len(records),
        "top_kernels": [{"rank": i + 1, "name": n[:300], "seconds": s, "calls": c,
                         "percent_of_kernel_time": 100.0 * s / total if total else 0.0,
                         "category": classify_kernel(n)} for i, (n, s, c) in enumerate(ranked)],
    }


def top_kernels_text(summary: dict, header: str) -> str:
    """The top-kernel table as text (for ``profile_top_kernels.txt``)."""
    lines = [header, "",
             f"epoch wall {summary['wall_seconds']:.3f} s; kernel time {summary['kernel_seconds']:.3f} s; "
             f"conv/matmul {summary['conv_matmul_percent']:.1f}%, other kernels {summary['other_kernel_percent']:.1f}%, "
             f"idle {summary['idle_percent']:.1f}% (of max(wall, kernel time))", "",
             f"{'rank':>4}  {'ms':>10}  {'% kernels':>9}  {'calls':>7}  {'category':<11}  name"]
    for k in summary["top_kernels"]:
        lines.append(f"{k['rank']:>4}  {1000 * k['seconds']:>10.2f}  {k['percent_of_kernel_time']:>9.2f}  "
                     f"{k['calls']:>7}  {k['category']:<11}  {k['name']}")
    return "\n".join(lines) + "\n"


def run_template(label: str) -> dict:
    """Every key a training run's record has (the same whether it ran, failed or was cut short)."""
    return {
        "label": label, "status": "pending", "model": None, "recipe": None, "loader": None, "seed": None,
        "max_lr": None, "weight_decay": None, "label_smoothing": None, "variant": None, "overrides": None,
        "compile": False, "epochs_target": None, "epochs_run": 0, "batch_size": None,
        "num_workers": None, "train_images": None, "test_images": None, "steps_per_epoch": None,
        "wall_seconds": None, "fit_wall_seconds": None, "data_seconds": None, "warmup_seconds": None,
        "training_seconds": None, "evaluation_seconds": None, "flip_tta_seconds": None, "other_seconds": None, "eval_warmup_seconds": None,
        "train_seconds_total": None, "seconds_per_epoch": None, "steady_seconds_per_epoch": None,
        "steady_train_images_per_second": None, "test_accuracy_fraction": None, "test_accuracy_percent": None,
        "test_accuracy_flip_tta_percent": None, "last_epoch_test_accuracy_fraction": None, "peak_gpu_memory_mib": None, "precision": None,
        "precision_source": None, "estimate_seconds": None, "source": None, "reused_from": None,
        "probe": None, "run_dir": None, "history": [], "notes": [], "error": None,
    }


def skip_record(part: str, item: str, reason: str, elapsed_seconds: float, estimate: float | None = None,
                available: float | None = None) -> dict:
    """One entry of the report's ``skipped`` list: what was not run, why, and when (seconds into the budget)."""
    return {"part": part, "item": item, "reason": reason, "estimate_seconds": estimate, "available_seconds": available,
            "at_elapsed_seconds": round(elapsed_seconds, 3)}


def part_template(name: str) -> dict:
    """Every key of a part's results."""
    common = {"status": "pending", "started_at_elapsed_seconds": None, "seconds": None, "items_run": 0,
              "items_skipped": 0, "notes": [], "error": None}
    specific: dict[str, dict] = {
        "main_job": {"runs": [], "compile_run": None, "summary": accuracy_summary([]),
                     "compile": {"steady_epoch_speedup": None, "wall_ratio_compiled_vs_eager": None,
                                 "warmup_seconds": None}},
        "peer": peer_airbench.part_fields(),
        "lr_sweep": {"range_test": None, "range_test_seconds": None, "suggested_lr": None, "suggestions": None,
                     "grid": [], "order": [], "runs": [], "best": None},
        "variants": {"variants": [], "top_k": None, "finalists": [], "runs": [], "summary": {}, "best": None,
                     "reference": None, "decisions": {}, "adopted": []},
        "albumentations_path": {"num_workers": None, "os_cpu_count": None, "usable_cpus": None, "probe": None,
                                "run": None, "ratios": {"wall_ratio_vs_device_seed0": None,
                                                        "seconds_per_epoch_ratio_vs_device_seed0": None,
                                                        "steady_seconds_per_epoch_ratio_vs_device_seed0": None}},
        "notebooks": {"parameters": None, "notebooks_dir": None, "wall_seconds": None, "per_notebook_seconds": {},
                      "test_accuracy_fraction": None, "test_accuracy_percent": None, "train_run": None,
                      "lr_suggestion": None, "tar": {"file": NOTEBOOKS_TAR, "size_bytes": None, "size_mib": None,
                                                     "files": 0, "excluded": [], "dropped_to_fit": []}},
        "zoo": {"models": {"resnet18": None, "dilated_net": None}, "budgets_seconds": {}},
        "profile": {"source": None, "device_type": None, "steps": None, "warmup_steps": None, "wall_seconds": None,
                    "kernel_seconds": None, "conv_matmul_seconds": None, "other_kernel_seconds": None,
                    "idle_seconds": None, "conv_matmul_percent": None, "other_kernel_percent": None,
                    "idle_percent": None, "kernel_names": None, "top_kernels": [], "table_file": TOP_KERNELS_TXT,
                    "patterns": {"conv_matmul": CONV_MATMUL, "not_conv_matmul": NOT_CONV_MATMUL}},
    }
    return {**common, **specific[name]}


def new_report(settings: Settings, parts_requested: list[str], budget: Budget, argv: list[str]) -> dict:
    """The JSON layout, with every key present from the start (a run cut short keeps the same keys)."""
    return {
        "schema": SCHEMA,
        "status": "running",
        "mode": settings.mode,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished_at": None,
        "command": list(argv),
        "environment": {},
        "data": {},
        "budget": {**budget.to_dict(), "watchdog_fired": False, "calibration": None},
        "settings": {**settings.to_dict(), "parts_requested": list(parts_requested)},
        "parts": {name: part_template(name) for name in PARTS},
        "skipped": [],
        "errors": [],
        "summary": [],
        "files": {"report": REPORT_JSON, "notebooks_tar": NOTEBOOKS_TAR, "profile_top_kernels": TOP_KERNELS_TXT,
                  "log": LOG_FILE, "output_dir": None, "work_dir": None},
        "units": UNITS,
    }


def summary_rows(report: dict) -> list[dict]:
    """One row per run or part for the final table: part, item, status, accuracy, seconds, note."""
    rows = []

    def run_row(part, r):
        if not r:
            return
        rows.append({"part": part, "item": r.get("label"), "status": r.get("status"),
                     "test_accuracy_percent": r.get("test_accuracy_percent"),
                     "test_accuracy_flip_tta_percent": r.get("test_accuracy_flip_tta_percent"),
                     "wall_seconds": r.get("wall_seconds"),
                     "seconds_per_epoch": r.get("seconds_per_epoch"),
                     "note": f"{r.get('epochs_run')}/{r.get('epochs_target')} epochs"
                             + (f", reused from {r['reused_from']}" if r.get("reused_from") else "")})

    parts = report["parts"]
    for r in parts["main_job"]["runs"]:
        run_row("main_job", r)
    run_row("main_job", parts["main_job"]["compile_run"])
    rows += peer_airbench.summary_rows(parts["peer"])
    rt = parts["lr_sweep"]["range_test"]
    if rt:
        rows.append({"part": "lr_sweep", "item": "range test", "status": "completed" if rt.get("max_lr") else "failed",
                     "test_accuracy_percent": None, "wall_seconds": parts["lr_sweep"]["range_test_seconds"],
                     "seconds_per_epoch": None,
                     "note": f"suggested LRMAX {rt['max_lr']:.3g}" if rt.get("max_lr") else str(rt.get("error"))[:80]})
    for r in parts["lr_sweep"]["runs"]:
        run_row("lr_sweep", r)
    for r in parts["variants"]["runs"]:
        run_row("variants", r)
    run_row("albumentations_path", parts["albumentations_path"]["run"])
    nb = parts["notebooks"]
    if nb["status"] not in ("pending", "not_requested", "not_reached", "skipped"):
        ran = sorted(nb["per_notebook_seconds"]) or ["01-06"]
        rows.append({"part": "notebooks", "item": f"{ran[0][:2]}-{ran[-1][:2]}", "status": nb["status"],
                     "test_accuracy_percent": nb["test_accuracy_percent"], "wall_seconds": nb["wall_seconds"],
                     "seconds_per_epoch": None, "note": f"{NOTEBOOKS_TAR} {nb['tar']['size_mib']} MiB"})
    for r in parts["zoo"]["models"].values():
        run_row("zoo", r)
    pr = parts["profile"]
    if pr["status"] not in ("pending", "not_requested", "not_reached", "skipped"):
        rows.append({"part": "profile", "item": "1 epoch", "status": pr["status"], "test_accuracy_percent": None,
                     "wall_seconds": pr["wall_seconds"], "seconds_per_epoch": None,
                     "note": (f"conv/matmul {pr['conv_matmul_percent']:.1f}%, other {pr['other_kernel_percent']:.1f}%, "
                              f"idle {pr['idle_percent']:.1f}%") if pr["conv_matmul_percent"] is not None else ""})
    for s in report["skipped"]:
        rows.append({"part": s["part"], "item": s["item"], "status": "skipped", "test_accuracy_percent": None,
                     "wall_seconds": None, "seconds_per_epoch": None, "note": s["reason"]})
    return rows


def format_table(rows: list[dict]) -> str:
    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    head = (f"{'part':<20} {'item':<22} {'status':<12} {'test acc %':>10} {'flip TTA %':>10} {'wall s':>8} "
            f"{'s/epoch':>8}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['part']:<20} {str(r['item'])[:22]:<22} {str(r['status']):<12} "
                     f"{num(r['test_accuracy_percent'], '.2f'):>10} "
                     f"{num(r.get('test_accuracy_flip_tta_percent'), '.2f'):>10} {num(r['wall_seconds'], '.1f'):>8} "
                     f"{num(r['seconds_per_epoch'], '.2f'):>8}  {r['note']}")
    return "\n".join(lines)


def fmt_s(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.0f} s"


# =========================================================================================
# The run context: device, data, budget, report; decisions and training runs
# =========================================================================================


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Context:
    """What every part needs, and the bookkeeping of decisions, runs and writes."""

    def __init__(self, *, settings: Settings, report: dict, budget: Budget, out_dir: Path, work_dir: Path,
                 device: torch.device | None = None, data=None, data_root: Path | None = None,
                 seeds: list[int] | None = None, lr_grid: list[float] | None = None,
                 variants: list[tuple[str, dict]] | None = None, variant_top_k: int | None = None,
                 compile_run: bool = True, notebooks: tuple[str, ...] = REPORT_NOTEBOOKS,
                 notebook_parameters: dict | None = None, zoo_budgets: dict[str, float] | None = None,
                 notebooks_dir: Path | None = None, parts: list[str] | None = None, save: bool = True):
        self.settings, self.report, self.budget = settings, report, budget
        self.out_dir, self.work_dir = out_dir, work_dir
        self.device, self.data, self.data_root = device, data, data_root
        self.seeds = list(seeds if seeds is not None else settings.seeds)
        self.lr_grid = list(lr_grid if lr_grid is not None else settings.lr_grid)
        self.variants = [(name, dict(o)) for name, o in (variants if variants is not None else settings.variants)]
        self.variant_top_k = variant_top_k if variant_top_k is not None else settings.variant_top_k
        self.compile_run = compile_run
        self.notebooks = tuple(notebooks)
        self.notebook_parameters = {**settings.notebook_parameters, **(notebook_parameters or {})}
        self.zoo_budgets = dict(zoo_budgets or {})
        self.notebooks_dir = notebooks_dir
        self.parts = list(parts if parts is not None else PARTS)
        self.calibration: Calibration | None = None
        self.current_part: str | None = None
        self.notebook_run_dir: Path | None = None
        self._save = save

    # -- writes ------------------------------------------------------------------------
    def save(self) -> None:
        self.report["budget"].update(self.budget.to_dict())
        self.report["budget"]["calibration"] = self.calibration.to_dict() if self.calibration else None
        if self._save:
            write_json(self.out_dir / REPORT_JSON, self.report)

    def part(self, name: str) -> dict:
        return self.report["parts"][name]

    # -- decisions ---------------------------------------------------------------------
    def reserve_seconds(self, part: str) -> float:
        """Time held back for the cheap profile part while earlier parts run."""
        if "profile" not in self.parts or part == "profile" or self.part("profile")["status"] != "pending":
            return 0.0
        est = self.estimate_profile(probe=False)
        return est if est is not None else self.settings.profile_fixed_seconds

    def decide(self, part: str, item: str, estimate: float | None, *, reserve: bool = True) -> bool:
        """Run ``item`` if its estimate fits in the time left minus what is held back for the profile
        part; else record and print the skip. Counts the item in the part's ``items_run``/``items_skipped``."""
        left = self.budget.left()
        held = self.reserve_seconds(part) if reserve else 0.0
        d = decide(estimate, left - held, self.settings.min_start_seconds)
        if d.run:
            self.part(part)["items_run"] += 1
            print(f"[{part}] start {item} (estimate {fmt_s(estimate)}, {d.available_seconds:.0f} s available)",
                  flush=True)
        else:
            why = f"{d.reason} ({left:.0f} s left, {held:.0f} s held back for the profile part)" if held else d.reason
            self.skip(part, item, why, estimate, d.available_seconds)
        return d.run

    def skip(self, part: str, item: str, reason: str, estimate: float | None = None,
             available: float | None = None) -> None:
        self.report["skipped"].append(skip_record(part, item, reason, self.budget.elapsed(), estimate, available))
        self.part(part)["items_skipped"] += 1
        print(f"[{part}] SKIP {item}: {reason}", flush=True)
        self.save()

    def reuse(self, part: str, label: str, run: dict, note: str) -> dict:
        """A record for ``label`` that is part 1's ``run`` (the same config and seed), not trained again;
        counted in the part's ``items_run``. Its ``notes`` are ``[note]``."""
        rec = {**run_template(label), **{k: v for k, v in run.items() if k not in ("label", "notes")},
               "label": label, "reused_from": f"main_job {run['label']}", "estimate_seconds": 0.0, "notes": [note]}
        self.part(part)["items_run"] += 1
        print(f"[{part}] {label}: reused main_job {run['label']} ({rec['test_accuracy_percent']:.2f}%)", flush=True)
        return rec

    # -- estimates ---------------------------------------------------------------------
    def scaled(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds * self.settings.safety_factor

    def main_config(self, **changes) -> TrainConfig:
        base = main_config(self.settings, device=str(self.device),
                           data_root=str(self.data_root) if self.data_root else None)
        return base.replace(**changes) if changes else base

    def train_images(self) -> int:
        return self.settings.train_subset or len(self.data.y_train)

    def test_images(self) -> int:
        return self.settings.test_subset or len(self.data.y_test)

    def ensure_calibration(self) -> Calibration | None:
        """The main job's figures; before any main-job run, a prior from a short step-time probe."""
        if self.calibration is None:
            try:
                step = probe_step_seconds("custom_resnet", self)
            except Exception as err:  # an estimate is not worth a crash
                self.note_error("calibration probe", err)
                return None
            s = self.settings
            steps = self.train_images() // s.batch_size
            test_batch = max(s.batch_size, 256)
            test_steps = -(-self.test_images() // test_batch)
            self.calibration = Calibration(
                step_seconds=step, steps_per_epoch=steps,
                test_seconds_per_epoch=0.4 * step * test_steps * test_batch / s.batch_size,
                epoch_overhead_seconds=s.prior_epoch_overhead_seconds, fixed_seconds=s.prior_fixed_seconds,
                source=f"probe: {s.probe_steps} synthetic steps of custom_resnet at batch {s.batch_size}")
        return self.calibration

    def calibrate_from(self, record: dict) -> None:
        if self.calibration is None or self.calibration.source.startswith("probe"):
            cal = Calibration.from_run(record)
            if cal is not None:
                self.calibration = cal

    def estimate_main(self, epochs: int, extra_fixed: float = 0.0) -> float | None:
        cal = self.ensure_calibration()
        return self.scaled(cal.run_seconds(epochs, extra_fixed=extra_fixed)) if cal else None

    def estimate_lr_test(self, iterations: int) -> float | None:
        cal = self.ensure_calibration()
        if cal is None:
            return None
        return self.scaled(cal.fixed_seconds + self.settings.lr_test_step_factor * iterations * cal.step_seconds)

    def estimate_profile(self, probe: bool = True) -> float | None:
        cal = self.ensure_calibration() if probe else self.calibration
        if cal is None:
            return None
        s = self.settings
        steps = cal.steps_per_epoch * s.profiler_overhead_factor + s.profile_warmup_steps
        return self.scaled(s.profile_fixed_seconds + steps * cal.step_seconds)

    # -- errors ------------------------------------------------------------------------
    def note_error(self, where: str, err: BaseException) -> str:
        text = f"{type(err).__name__}: {err}"
        self.report["errors"].append({"where": where, "error": text[:4000],
                                      "traceback": traceback.format_exc()[-4000:]})
        print(f"[{self.current_part}] ERROR in {where}: {text[:500]}", file=sys.stderr, flush=True)
        return text[:4000]

    # -- a training run ----------------------------------------------------------------
    def train(self, rec: dict, cfg: TrainConfig, part: str) -> dict:
        """``fit(cfg)`` with its figures written into ``rec`` (already placed in the report, so a run
        cut short by the watchdog keeps what it finished). Errors are recorded, not raised;
        KeyboardInterrupt is recorded, then raised."""
        out = self.work_dir / part / rec["label"]
        cfg = cfg.replace(output_dir=str(out))
        loader = resolved_loader(cfg.loader, cfg.transform_set, self.device.type)  # "auto" resolved, as fit() does
        rec.update(model=cfg.model, recipe=cfg.recipe, loader=loader, seed=cfg.seed, max_lr=cfg.resolved_max_lr,
                   weight_decay=cfg.weight_decay, label_smoothing=cfg.label_smoothing,
                   compile=cfg.compile, epochs_target=rec["epochs_target"] or cfg.epochs, batch_size=cfg.batch_size,
                   num_workers=cfg.num_workers if loader == "albumentations" else None, status="running")
        self.save()
        device = self.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        start = time.perf_counter()
        metrics = run_dir = None
        try:
            result = fit(cfg, data=self.data, progress=False)
            metrics, run_dir = result.metrics, result.run_dir
            del result
        except KeyboardInterrupt:
            self._fill(rec, *_cut_short_run(out), None, cfg, status="interrupted")
            rec["error"] = "interrupted (budget watchdog or signal)"
            raise
        except Exception as err:  # recorded; the next run goes on
            rec["error"] = self.note_error(f"{part} {rec['label']}", err)
            status = "diverged" if isinstance(err, DivergenceError) else "failed"
            self._fill(rec, *_cut_short_run(out), None, cfg, status=status)
            return rec
        finally:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        sync(device)
        wall = time.perf_counter() - start
        self._fill(rec, metrics, run_dir, wall, cfg)
        if (part in ("main_job", "lr_sweep", "variants") and rec["status"] == "completed"
                and costs_as_main_job(cfg, self.main_config())):
            self.calibrate_from(rec)
        acc = rec["test_accuracy_percent"]
        print(f"[{part}] {rec['label']}: {rec['status']}, test accuracy "
              f"{'-' if acc is None else f'{acc:.2f}%'} ({rec['test_images']} images), wall {wall:.1f} s "
              f"(data {rec['data_seconds'] or 0:.1f}, warm-up {rec['warmup_seconds'] or 0:.1f}, "
              f"train {rec['training_seconds'] or 0:.1f}, eval {rec['evaluation_seconds'] or 0:.1f}, "
              f"other {rec['other_seconds'] or 0:.1f}), {rec['seconds_per_epoch'] or 0:.2f} s/epoch "
              f"x {rec['epochs_run']}; {self.budget.left():.0f} s left", flush=True)
        return rec

    def _fill(self, rec: dict, metrics: dict | None, run_dir: Path | None, wall: float | None, cfg: TrainConfig,
              status: str | None = None) -> None:
        if metrics:
            rec.update(run_figures(metrics, wall, cfg.batch_size))
            rec["run_dir"] = str(run_dir)
        if status is not None:
            rec["status"] = status
        if metrics and metrics.get("precision"):
            rec["precision"], rec["precision_source"] = metrics["precision"], "metrics.json"
        else:
            rec["precision"] = select_precision(self.device, amp=cfg.amp).to_dict()
            rec["precision_source"] = "cifarhelpers.precision.select_precision (metrics.json has none)"
        if self.device.type == "cuda":
            rec["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.save()


def _cut_short_run(run_parent: Path) -> tuple[dict | None, Path | None]:
    """The ``metrics.json`` and folder of the run under ``run_parent`` that fit() left without a
    result (a failure or an interrupt): ``(None, None)`` if it wrote no readable metrics.json."""
    run_dir = latest_run(run_parent)
    try:
        return (read_json(run_dir / METRICS_FILE), run_dir) if run_dir is not None else (None, None)
    except CifarHelpersError:
        return None, None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def probe_step_seconds(model_name: str, ctx: Context) -> float:
    """Seconds per training step of ``model_name`` at the main batch size on a synthetic batch
    (forward, loss, backward, SGD step; channels-last; the device's precision), after warm-up steps;
    the probe's memory is released before returning."""
    seconds = _probe_step_seconds(model_name, ctx)
    gc.collect()  # the probe's model and batch are gone once it returned
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds


def _probe_step_seconds(model_name: str, ctx: Context) -> float:
    s, device = ctx.settings, ctx.device
    torch.manual_seed(0)
    model = build_model(model_name).to(device, memory_format=torch.channels_last)
    model.train()
    x = torch.randn(s.batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (s.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    precision = select_precision(device, amp=True)
    scaler = precision.grad_scaler()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as fit() sets it

    def step():
        with precision.autocast():
            loss = criterion(model(x), y)
        backward_and_step(loss, optimizer, scaler)

    for _ in range(s.probe_warmup_steps):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(s.probe_steps):
        step()
    sync(device)
    seconds = (time.perf_counter() - start) / s.probe_steps
    print(f"[{ctx.current_part}] probe: {model_name} {seconds * 1000:.1f} ms per step at batch {s.batch_size}",
          flush=True)
    return seconds


def probe_loader(cfg: TrainConfig, ctx: Context) -> dict:
    """Images/s of the first batches of ``cfg``'s training DataLoader (the albumentations pipeline of
    ``cfg.transform_set`` with ``cfg.num_workers`` workers; workers' start included), batches moved
    to the device."""
    device = ctx.device
    stats = train_statistics(ctx.data)
    n = min(len(ctx.data.y_train), ctx.settings.loader_probe_batches * cfg.batch_size)
    loader = AlbumentationsLoader(ctx.data.x_train[:n], ctx.data.y_train[:n],
                                  train_transform(stats.mean, stats.std, cfg.transform_set),
                                  batch_size=cfg.batch_size, train=True, num_workers=cfg.num_workers or 0,
                                  pin_memory=device.type == "cuda")
    loader.set_epoch(seed_epoch(cfg.seed, 0))
    batches = len(loader)
    sync(device)
    start = time.perf_counter()
    first = None
    images = 0
    for x, y in loader:
        x.to(device, non_blocking=True)
        sync(device)
        if first is None:
            first = time.perf_counter() - start  # workers' start + the first batch
        else:
            images += len(y)
    seconds = time.perf_counter() - start
    del loader
    gc.collect()
    steady = seconds - first
    rate = images / steady if images and steady > 0 else cfg.batch_size / first
    print(f"[{ctx.current_part}] probe: albumentations loader ({cfg.transform_set}, {cfg.num_workers} workers): "
          f"first batch after {first:.2f} s, then {rate:.0f} images/s ({batches} batches)", flush=True)
    return {"transform_set": cfg.transform_set, "num_workers": cfg.num_workers, "batches": batches,
            "first_batch_seconds": first, "seconds": seconds, "images_per_second": rate}


def data_epoch_seconds(probe: dict, images: int) -> float:
    """A DataLoader epoch's data time from a probe: workers' start (every epoch: the workers are not
    persistent) plus the images at the steady rate."""
    return probe["first_batch_seconds"] + images / probe["images_per_second"]


# =========================================================================================
# Parts
# =========================================================================================


def part_main_job(ctx: Context, part: dict) -> None:
    """Seeds without torch.compile, then one seed with it."""
    cfg = ctx.main_config()
    for seed in ctx.seeds:
        label = f"seed{seed}"
        est = ctx.estimate_main(cfg.epochs)
        if not ctx.decide("main_job", label, est):
            continue
        rec = {**run_template(label), "estimate_seconds": est, "epochs_target": cfg.epochs}
        part["runs"].append(rec)
        ctx.train(rec, cfg.replace(seed=seed), "main_job")
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
    ctx.train(rec, cfg.replace(seed=seed, compile=True), "main_job")
    eager = next((r for r in part["runs"] if r["seed"] == seed and r["status"] == "completed"), None)
    part["compile"]["warmup_seconds"] = rec["warmup_seconds"]
    if eager and rec["status"] == "completed":
        if rec["steady_seconds_per_epoch"]:
            part["compile"]["steady_epoch_speedup"] = eager["steady_seconds_per_epoch"] / rec["steady_seconds_per_epoch"]
        part["compile"]["wall_ratio_compiled_vs_eager"] = rec["wall_seconds"] / eager["wall_seconds"]
    ctx.save()


def part_lr_sweep(ctx: Context, part: dict) -> None:
    """The LR range test, then the main job at each LRMAX of the grid (most informative first)."""
    s = ctx.settings
    cfg = ctx.main_config()
    item = f"LR range test ({s.lr_test_iterations} iterations, batch {cfg.batch_size})"
    if ctx.decide("lr_sweep", item, ctx.estimate_lr_test(s.lr_test_iterations)):
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
    part["grid"] = list(ctx.lr_grid)
    part["order"] = order_lr_grid(ctx.lr_grid, DEFAULT_LR, part["suggested_lr"])
    ctx.save()
    main_runs = ctx.part("main_job")["runs"]
    seed0 = next((r for r in main_runs if r["seed"] == cfg.seed and r["status"] == "completed"
                  and math.isclose(r["max_lr"], DEFAULT_LR) and r["epochs_run"] == cfg.epochs), None)
    for entry in part["order"]:
        lr = entry["max_lr"]
        label = f"lr{lr:.3g}"
        if seed0 is not None and math.isclose(lr, DEFAULT_LR, rel_tol=1e-9):
            rec = ctx.reuse("lr_sweep", label, seed0, "the main job's seed-0 run (LRMAX = the default), not trained again")
            rec["source"] = entry["source"]
            part["runs"].append(rec)
            ctx.save()
            continue
        est = ctx.estimate_main(cfg.epochs)
        if not ctx.decide("lr_sweep", label, est):
            continue
        rec = {**run_template(label), "estimate_seconds": est, "epochs_target": cfg.epochs, "source": entry["source"]}
        part["runs"].append(rec)
        ctx.train(rec, cfg.replace(max_lr=lr), "lr_sweep")
    done = [r for r in part["runs"] if r["test_accuracy_percent"] is not None]
    if done:
        best = max(done, key=lambda r: r["test_accuracy_percent"])
        part["best"] = {"max_lr": best["max_lr"], "test_accuracy_percent": best["test_accuracy_percent"],
                        "of_runs": len(done)}
        if part.get("suggestions"):  # which LR range test rule lands closest to the best LRMAX (log scale)
            distance = {rule: abs(math.log10(lr / best["max_lr"])) for rule, lr in part["suggestions"].items()}
            part["best"]["rule_distance_decades"] = distance
            part["best"]["closest_rule"] = min(distance, key=distance.get)
    ctx.save()


def part_albumentations(ctx: Context, part: dict) -> None:
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
    ctx.train(rec, cfg.replace(epochs=epochs), "albumentations_path")
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


def part_notebooks(ctx: Context, part: dict) -> None:
    """Notebooks 01-06 (or the chain ``--notebooks`` names) with papermill, in one run folder at one commit;
    the run folder is packed by :func:`pack_notebooks` at the end."""
    params = {**ctx.notebook_parameters, "data_root": str(ctx.data_root), "device": str(ctx.device)}
    chain = f"notebooks {ctx.notebooks[0][:2]}-{ctx.notebooks[-1][:2]}"
    part["parameters"], part["notebooks_dir"] = params, str(ctx.notebooks_dir)
    if ctx.notebooks_dir is None or not (ctx.notebooks_dir / "01_dataset_statistics.ipynb").is_file():
        raise FileNotFoundError(f"no notebooks in {ctx.notebooks_dir}: pass --notebooks-dir (the repository's "
                                "notebooks/ folder)")
    est = None
    cal = ctx.ensure_calibration()
    if cal is not None:
        s = ctx.settings
        profile = resolve_profile(params.get("profile") or "auto", ctx.device.type)
        base = TrainConfig(**profile.overrides)
        batch = params.get("batch_size") or base.batch_size
        train_images = params.get("train_subset") or base.train_subset or len(ctx.data.y_train)
        epochs = params.get("epochs") or base.epochs
        iters = params.get("lr_test_iterations") or base.lr_test_iterations
        step = cal.step_seconds * batch / s.batch_size  # step time taken as proportional to the batch
        lr_test = cal.fixed_seconds + s.lr_test_step_factor * iters * step
        run = cal.run_seconds(epochs, step_seconds=step, steps=train_images // batch)
        est = ctx.scaled(s.notebooks_fixed_seconds + lr_test + run * (1 + notebook_07_runs(ctx.notebooks, params,
                                                                                             profile)))
    if not ctx.decide("notebooks", chain, est):
        return
    parent = ctx.work_dir / "notebooks"
    sync(ctx.device)
    start = time.perf_counter()
    try:
        run_dir = run_notebooks(params, output_dir=parent, notebooks_dir=ctx.notebooks_dir,
                                notebooks=ctx.notebooks, progress=False)
    finally:
        sync(ctx.device)
        part["wall_seconds"] = time.perf_counter() - start
        found = sorted(p for p in parent.glob("*notebooks*") if p.is_dir())  # new_run_dir: <time>-notebooks
        if found:
            ctx.notebook_run_dir = found[-1]
            _read_notebook_outputs(found[-1], part)
        ctx.save()
    acc = part["test_accuracy_percent"]
    print(f"[notebooks] done in {part['wall_seconds']:.1f} s: notebook 04 test accuracy "
          f"{'-' if acc is None else f'{acc:.2f}%'}; {run_dir}", flush=True)


def notebook_07_runs(notebooks: tuple[str, ...], params: dict, profile) -> int:
    """Trainings notebook 07's sweep runs with ``params`` (its ``max_lrs`` and ``num_seeds``, else the profile's
    grid); 0 when the chain leaves 07 out."""
    if not any(n.startswith("07") for n in notebooks):
        return 0
    lrs = params.get("max_lrs")
    count = len(str(lrs).split(",")) if lrs else len(profile.sweep["max_lrs"])
    return count * int(params.get("num_seeds") or profile.sweep["seeds"])


def _read_notebook_outputs(run_dir: Path, part: dict) -> None:
    train = run_dir / TRAIN_JSON
    if train.is_file():
        info = json.loads(train.read_text())
        part["train_run"] = info
        acc = info.get("final_test_accuracy")
        part["test_accuracy_fraction"] = acc
        part["test_accuracy_percent"] = 100.0 * acc if acc is not None else None
    lr = run_dir / LR_JSON
    if lr.is_file():
        content = json.loads(lr.read_text())
        part["lr_suggestion"] = {"max_lr": content.get("max_lr"), "min_lr": content.get("min_lr"),
                                 "rule": content.get("rule"), "suggestions": content.get("suggestions")}
    for name in NOTEBOOKS:
        path = run_dir / name
        if path.is_file():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
                part["per_notebook_seconds"][name] = meta.get("duration")


def pack_notebooks(run_dir: Path | None, dest: Path, part: dict, reason: str | None = None) -> None:
    """Pack the notebooks' run folder (no ``*.pt``) into ``dest``; drop standalone PNGs (also embedded
    in the executed notebooks) if the archive is over the size limit. Without a run folder, the
    archive holds a note saying why."""
    tar = part["tar"]
    if run_dir is None or not run_dir.is_dir():
        text = f"The notebooks part did not produce a run folder: {reason or 'not run'}\n".encode()

        def write_note(f):
            with tarfile.open(fileobj=f, mode="w:gz") as t:
                info = tarfile.TarInfo("notebooks/NOT_RUN.txt")
                info.size, info.mtime = len(text), int(time.time())
                t.addfile(info, io.BytesIO(text))

        atomic_write(dest, write_note)
        tar.update(size_bytes=dest.stat().st_size, size_mib=round(dest.stat().st_size / 2**20, 3), files=1)
        return
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    excluded = [p for p in files if p.suffix == ".pt" or p.name.endswith(".tmp")]
    kept = [p for p in files if p not in excluded]
    dropped: list[Path] = []
    for attempt in ("all", "no_png"):
        if attempt == "no_png":
            dropped = [p for p in kept if p.suffix == ".png"]
            kept = [p for p in kept if p.suffix != ".png"]

        def write(f, kept=kept):
            with tarfile.open(fileobj=f, mode="w:gz") as t:
                for p in kept:
                    t.add(p, arcname=str(Path("notebooks") / p.relative_to(run_dir)))

        atomic_write(dest, write)
        if dest.stat().st_size <= MAX_FILE_BYTES:
            break
    size = dest.stat().st_size
    tar.update(size_bytes=size, size_mib=round(size / 2**20, 3), files=len(kept),
               excluded=[str(p.relative_to(run_dir)) for p in excluded],
               dropped_to_fit=[str(p.relative_to(run_dir)) for p in dropped])


def zoo_config(ctx: Context, model: str, epochs: int) -> tuple[TrainConfig, str]:
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


def part_zoo(ctx: Context, part: dict) -> None:
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
        ctx.train(rec, cfg.replace(epochs=epochs), "zoo")


def is_annotation(event) -> bool:
    """Whether a profiler event is a user annotation (a named range over other events), not work."""
    name = str(getattr(event, "name", ""))
    return bool(getattr(event, "is_user_annotation", False)) or name.startswith(("ProfilerStep#", "Optimizer."))


def kernel_records(prof, device: torch.device) -> tuple[list[tuple[str, float, int]], str]:
    """``(name, seconds, calls)`` per kernel name from a finished profiler, and what was measured.

    On CUDA: the device (kernel, memcpy, memset) events' own durations. Elsewhere: CPU ops' self time.
    Annotations on the device's timeline (``record_function`` ranges such as the optimizer's
    ``Optimizer.step#Adam.step``, ``ProfilerStep#N``) span kernels that are counted on their own, so
    they are left out: counted, they would count those kernels' time twice.
    """
    agg: dict[str, list[float]] = {}
    if device.type == "cuda":
        for e in prof.events():
            if is_annotation(e):
                continue
            if str(getattr(e, "device_type", "")).split(".")[-1] in ("CUDA", "HIP"):
                a = agg.setdefault(e.name, [0.0, 0])
                a[0] += e.time_range.elapsed_us() / 1e6
                a[1] += 1
        if agg:
            return [(n, s, int(c)) for n, (s, c) in agg.items()], "CUDA kernels: device time per kernel name"
        for e in prof.key_averages():  # fallback: ops with device time
            t = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
            if t:
                agg[e.key] = [t / 1e6, e.count]
        if agg:
            return ([(n, s, int(c)) for n, (s, c) in agg.items()],
                    "CUDA: no kernel events found; ops' self device time (key_averages)")
    for e in prof.key_averages():
        if e.key.startswith("ProfilerStep") or e.key.startswith("[memory]"):
            continue
        if e.self_cpu_time_total > 0:
            agg[e.key] = [e.self_cpu_time_total / 1e6, e.count]
    return ([(n, s, int(c)) for n, (s, c) in agg.items()],
            f"{device.type.upper()} ops' self CPU time: no CUDA kernels on this device, so 'idle' is time "
            "outside the ops (Python, data)")


def part_profile(ctx: Context, part: dict) -> None:
    """torch.profiler over one epoch of the main job (fresh model and optimizer, the engine's loop)."""
    from torch.profiler import ProfilerActivity, profile

    s, device = ctx.settings, ctx.device
    cfg = ctx.main_config()
    if not ctx.decide("profile", "one profiled epoch", ctx.estimate_profile(), reserve=False):
        return
    prep = prepare_data(cfg, device, ctx.data, progress=False)
    seed_everything(cfg.seed)
    model = build_model(cfg.model).to(device, memory_format=torch.channels_last)
    criterion = build_criterion(cfg)
    optimizer, schedule = build_optimizer(model, cfg, steps_per_epoch=len(prep.train_loader))
    precision = select_precision(device, amp=cfg.amp)
    scaler = precision.grad_scaler()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    loader = prep.train_loader
    loader.set_epoch(seed_epoch(cfg.seed, 0))
    model.train()
    warm = 0
    for x, y in loader:  # warm-up outside the profiler: cuDNN autotuning, allocator
        if warm >= s.profile_warmup_steps:
            break
        with precision.autocast():
            loss = criterion(model(x), y)
        backward_and_step(loss, optimizer, scaler)
        schedule.after_batch()
        warm += 1
    loader.set_epoch(seed_epoch(cfg.seed, 1))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync(device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        train_one_epoch(model, loader, criterion, optimizer, schedule, device=device, epoch=1, epochs=cfg.epochs,
                        precision=precision, scaler=scaler, channels_last=True, progress=False)
        sync(device)
        wall = time.perf_counter() - start
    records, source = kernel_records(prof, device)
    summary = summarize_kernels(records, wall)
    part.update(summary, source=source, device_type=device.type, steps=len(loader), warmup_steps=warm)
    header = (f"Top {TOP_KERNELS} kernels by device time: one epoch of the main job ({cfg.model}, batch "
              f"{cfg.batch_size}, {len(loader)} steps, device loader, channels-last, "
              f"{precision.describe()}) on {device_name(device)}.\nMeasured: {source}.\n"
              f"conv/matmul = names matching /{CONV_MATMUL}/ but not /{NOT_CONV_MATMUL}/ (case-insensitive).")
    atomic_write(ctx.out_dir / TOP_KERNELS_TXT, lambda f: f.write(top_kernels_text(summary, header).encode()))
    print(f"[profile] epoch {wall:.2f} s: conv/matmul {summary['conv_matmul_percent']:.1f}%, other kernels "
          f"{summary['other_kernel_percent']:.1f}%, idle {summary['idle_percent']:.1f}% ({source})", flush=True)
    del prof, model, optimizer, prep
    gc.collect()
    ctx.save()


def part_variants(ctx: Context, part: dict) -> None:
    """The main job under each variant (named TrainConfig changes), to find a better default.

    1. Every variant on the first seed, in the order given (most informative first, in case the budget
       runs out).
    2. The best ``variant_top_k`` by that seed's test accuracy (``finalists``) on each other seed, seed by
       seed, so that the finalists keep the same number of seeds when time runs short.

    A variant whose config equals the main job's reuses part 1's run of each seed part 1 completed (on
    every seed, finalist or not: it costs nothing) and is trained only where part 1 has no run. A run that
    fails or diverges is recorded and the part goes on. ``summary`` holds each variant's accuracy over
    its seeds (:func:`accuracy_summary`, percent); ``best`` is the highest mean test accuracy among the
    variants run on the most seeds. ``decisions`` compares each variant with the default (the variant whose
    config is the main job's, else part 1's runs; named in ``reference``) by :func:`compare_to_default`:
    difference in points, the default's spread, Welch's t; ``adopted`` lists the variants that earn a change
    of default (best first). Give ``--variant-top-k`` the number of variants to run every one on every seed.
    """
    base = ctx.main_config()
    configs = {name: base.replace(**changes) for name, changes in ctx.variants}
    changes_by_name = dict(ctx.variants)
    part["variants"] = [{"name": name, "overrides": changes} for name, changes in ctx.variants]
    part["top_k"] = ctx.variant_top_k
    seeds = ctx.seeds or [base.seed]

    def main_job_run(seed: int) -> dict | None:
        return next((r for r in ctx.part("main_job")["runs"] if r["seed"] == seed and r["status"] == "completed"
                     and r["epochs_run"] == base.epochs), None)

    def run_variant(name: str, seed: int, *, train: bool = True) -> None:
        label = f"{name}-seed{seed}"
        cfg = configs[name].replace(seed=seed)
        reused = main_job_run(seed) if configs[name] == base else None
        if reused is not None:
            rec = ctx.reuse("variants", label, reused, "the main job's run of this seed (the same config), not "
                                                       "trained again")
        elif not train:
            return
        else:
            est = ctx.estimate_main(cfg.epochs)
            if not ctx.decide("variants", label, est):
                return
            rec = {**run_template(label), "estimate_seconds": est, "epochs_target": cfg.epochs}
        rec.update(variant=name, overrides=changes_by_name[name])
        part["runs"].append(rec)
        if reused is None:
            ctx.train(rec, cfg, "variants")
        part["summary"] = {n: accuracy_summary([r for r in part["runs"] if r["variant"] == n]) for n in configs}
        ctx.save()

    for name in configs:
        run_variant(name, seeds[0])
    first = {r["variant"]: r["test_accuracy_percent"] for r in part["runs"]
             if r["seed"] == seeds[0] and r["test_accuracy_percent"] is not None}
    part["finalists"] = sorted(first, key=lambda n: -first[n])[:ctx.variant_top_k]
    ctx.save()
    unchanged = [n for n in configs if configs[n] == base and n not in part["finalists"]]
    for seed in seeds[1:]:
        for name in part["finalists"] + unchanged:  # the best first, in case time runs short
            run_variant(name, seed, train=name in part["finalists"])
    reference = next((n for n in configs if configs[n] == base), None)
    accuracies = {n: [r["test_accuracy_percent"] for r in part["runs"]
                      if r["variant"] == n and r["test_accuracy_percent"] is not None] for n in configs}
    if reference is None:  # no variant is the default itself: compare with the main job's own runs
        accuracies[reference] = [r["test_accuracy_percent"] for r in ctx.part("main_job")["runs"]
                                 if r["test_accuracy_percent"] is not None and r["epochs_run"] == base.epochs]
    part["reference"] = reference or "main_job"
    part["decisions"] = {n: compare_to_default(accuracies[reference], accuracies[n]) for n in configs if n != reference}
    part["adopted"] = sorted((n for n, d in part["decisions"].items() if d["adopt"]),
                             key=lambda n: -part["decisions"][n]["difference_points"])
    ranked = [(n, s) for n, s in part["summary"].items() if s["test_accuracy_percent_mean"] is not None]
    if ranked:
        most = max(s["runs_completed"] for _, s in ranked)
        name, best = max(((n, s) for n, s in ranked if s["runs_completed"] == most),
                         key=lambda x: x[1]["test_accuracy_percent_mean"])
        part["best"] = {"variant": name, "overrides": changes_by_name[name], "seeds": best["seeds"],
                        "test_accuracy_percent_mean": best["test_accuracy_percent_mean"],
                        "test_accuracy_percent_min": best["test_accuracy_percent_min"],
                        "test_accuracy_percent_max": best["test_accuracy_percent_max"]}
    ctx.save()


RUNNERS: dict[str, Callable[[Context, dict], None]] = {
    "main_job": part_main_job,
    "peer": peer_airbench.run_part,
    "lr_sweep": part_lr_sweep,
    "variants": part_variants,
    "albumentations_path": part_albumentations,
    "notebooks": part_notebooks,
    "zoo": part_zoo,
    "profile": part_profile,
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


# =========================================================================================
# Environment, log, watchdog, command line
# =========================================================================================


def git_commit(flag: str | None) -> tuple[str | None, str, bool | None]:
    """(commit, where it came from, working tree dirty) from ``--commit`` or ``git rev-parse HEAD``."""
    if flag:
        return flag, "--commit", None
    repo = Path(__file__).resolve().parent
    if not (repo.parent / ".git").exists():  # a copy in the bundle: git would name whatever checkout holds it
        return None, "unavailable (not run from the project's git checkout; pass --commit)", None
    sha, dirty = git_state(repo, untracked=False)
    if sha is None:
        return None, "unavailable (no git or not a repository; pass --commit)", None
    return sha, "git rev-parse HEAD", dirty


def environment(device: torch.device, commit_flag: str | None) -> dict:
    import torchvision

    commit, source, dirty = git_commit(commit_flag)
    env = {
        "device": device_name(device), "device_type": device.type,
        "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
        "python_version": platform.python_version(), "numpy_version": np.__version__,
        "cifarhelpers_version": getattr(cifarhelpers, "__version__", None),
        "cuda_version": torch.version.cuda, "cudnn_version": torch.backends.cudnn.version()
        if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
        "os_cpu_count": os.cpu_count(), "usable_cpus": usable_cpus(), "torch_threads": torch.get_num_threads(),
        "git_commit": commit, "git_commit_source": source, "git_dirty": dirty, "gpu": None,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env["gpu"] = {"name": p.name, "compute_capability": f"{p.major}.{p.minor}",
                      "memory_mib": p.total_memory / 2**20, "multiprocessors": p.multi_processor_count,
                      "count": torch.cuda.device_count()}
    try:
        import albumentations

        env["albumentations_version"] = albumentations.__version__
    except ImportError:
        env["albumentations_version"] = None
    return env


class Tee:
    """Writes to a stream and a log file (the file stops at ``limit`` bytes); anything else is the
    stream's (encoding, fileno...)."""

    def __init__(self, stream, log, limit: int = MAX_LOG_BYTES):
        self.stream, self.log, self.limit, self.written = stream, log, limit, 0

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        self.stream.write(text)
        if self.written < self.limit:
            data = text if self.written + len(text) <= self.limit else text[: self.limit - self.written] + \
                "\n[log truncated at the size limit]\n"
            self.log.write(data)
            self.written += len(data)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return False


def start_watchdog(budget: Budget, report: dict) -> threading.Timer:
    """A timer that interrupts the main thread (KeyboardInterrupt) when the whole budget is spent,
    so the run in progress is recorded as interrupted and the report is finished in time.

    ``_thread.interrupt_main`` does nothing while SIGINT is ignored, as it is in a process a shell
    starts in the background without job control (``cmd &`` in a script, ``nohup``): then Python's
    default handler is installed first (from the main thread), or the watchdog would never fire.
    """
    import _thread

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def fire():
        report["budget"]["watchdog_fired"] = True
        print(f"\n[watchdog] the {budget.total_seconds:.0f} s budget is spent: interrupting the run in progress",
              file=sys.stderr, flush=True)
        _thread.interrupt_main()

    timer = threading.Timer(max(0.0, budget.total_seconds - budget.elapsed()), fire)
    timer.daemon = True
    timer.start()
    return timer


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so the report is finished."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated("SIGTERM")


def expand_plan(argv: list[str]) -> tuple[list[str], str | None]:
    """``--plan NAME --step N`` replaced by the step's own arguments (:mod:`report_plans`), placed before the
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
        report_plans.get_step(known.plan, 1)  # checks the name
        return rest, report_plans.format_plan(report_plans.PLANS[known.plan])
    number = known.step if known.step is not None else 1
    planned = report_plans.step_arguments(report_plans.get_step(known.plan, number))
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
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description="Measure the project's GPU figures in one budgeted run (see the module "
                                            "docstring for the parts, outputs and units).")
    p.add_argument("--plan", choices=sorted(report_plans.PLANS), default=None,
                   help="a planned visit (benchmarks/report_plans.py): its step's parts, variants and budget; flags "
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
    p.add_argument("--out", default=os.environ.get("OUT") or str(here / "out" / "gpu-report"),
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
    p.add_argument("--notebooks-dir", default=str(here.parent / "notebooks"),
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


#: Fields a variant may not change: the report sets them for every run, or they would leave the main job.
NOT_VARIED = ("seed", "output_dir", "data_root", "device", "resume", "download")


def parse_variants(items: list[list[str]], base: TrainConfig | None = None) -> list[tuple[str, dict]]:
    """``--variant NAME FIELD=VALUE ...`` (repeated) to ``[(name, {field: value})]``, each value parsed as
    ``cifar-train`` parses its flag, and ``base`` (the main job as the report runs it; default: the full
    settings') with the changes validated by :class:`TrainConfig`.

    Raises:
        ConfigError: a name that is not folder-safe or is repeated, a pair that is not FIELD=VALUE, a field
            the report sets itself (:data:`NOT_VARIED`), ``max_lr=find``, or a value that TrainConfig rejects
            (named, with the fix).
    """
    base = base if base is not None else main_config(FULL)
    out: list[tuple[str, dict]] = []
    for name, *pairs in items:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            raise ConfigError(f"--variant name {name!r}: a variant's first word is its name (a folder name: letters, "
                              "digits and ._+-), then its FIELD=VALUE pairs, e.g. --variant wd5e-4 weight_decay=5e-4")
        if name in dict(out):
            raise ConfigError(f"--variant {name!r} is given twice: give each variant a name of its own")
        changes = {}
        for pair in pairs:
            field, sep, text = pair.partition("=")
            field = field.strip().replace("-", "_")
            if not sep or not field or not text:
                raise ConfigError(f"--variant {name}: {pair!r} is not FIELD=VALUE, e.g. weight_decay=5e-4")
            if field in NOT_VARIED:
                raise ConfigError(f"--variant {name}: {field} is set by the report for every run; leave it out")
            if field not in {f.name for f in dataclasses.fields(TrainConfig)}:
                TrainConfig().replace(**{field: text})  # raises ConfigError naming the field and the close ones
            try:
                changes[field] = field_parser(field)(text.strip())
            except argparse.ArgumentTypeError as err:
                raise ConfigError(f"--variant {name}: {field}={text!r}: {err}") from None
            if field == "max_lr" and changes[field] == FIND_LR:
                raise ConfigError(f"--variant {name}: max_lr=find would run the LR range test before training: give "
                                  "LRMAX as a number (the lr_sweep part runs the range test and trains at its "
                                  "suggestion)")
        try:
            base.replace(**changes)  # validated together and against the report's main job (e.g. min_lr <= max_lr)
        except ConfigError as err:
            raise ConfigError(f"--variant {name}: {err}") from None
        out.append((name, changes))
    return out


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
    previous_term = signal.signal(signal.SIGTERM, _on_sigterm) if on_main_thread else None
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
                _finish(report, ctx, out_dir, status, budget)
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


def _finish(report: dict, ctx: Context | None, out_dir: Path, status: str, budget: Budget) -> None:
    """The always-present files, the summary table and the final JSON, whatever happened."""
    requested = report["settings"]["parts_requested"]
    for name, part in report["parts"].items():
        if part["status"] == "running":  # cut short between two of run_parts' writes
            part["status"] = "interrupted"
        elif part["status"] == "pending":  # the loop ended (interrupted, or setup failed) before this part
            part["status"] = "not_reached" if name in requested else "not_requested"
            why_not = f"the report ended ({status}) before this part started" if name in requested else "not in --parts"
            report["skipped"].append(skip_record(name, "whole part", why_not, budget.elapsed()))

    def why(name: str) -> str:
        part = report["parts"][name]
        reasons = [s["reason"] for s in report["skipped"] if s["part"] == name]
        return f"status {part['status']}: " + (part["error"] or (reasons[-1] if reasons else "no run folder"))

    try:
        pack_notebooks(getattr(ctx, "notebook_run_dir", None), out_dir / NOTEBOOKS_TAR, report["parts"]["notebooks"],
                       reason=why("notebooks"))
    except Exception as err:  # the report must still be written
        report["errors"].append({"where": "pack notebooks", "error": f"{type(err).__name__}: {err}", "traceback": None})
    txt = out_dir / TOP_KERNELS_TXT
    if report["parts"]["profile"]["status"] != "completed" or not txt.is_file():
        with contextlib.suppress(OSError):
            atomic_write(txt, lambda f: f.write(f"No kernel table: the profile part did not run ({why('profile')}).\n"
                                                .encode()))
    report["status"] = status
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report["summary"] = summary_rows(report)
    report["budget"].update(budget.to_dict())
    if ctx is not None and ctx.calibration is not None:
        report["budget"]["calibration"] = ctx.calibration.to_dict()
    print(f"\n=== GPU report ({report['mode']}): {status} in {budget.elapsed():.0f} s of {budget.total_seconds:.0f} s "
          f"on {report['environment'].get('device', '?')} ===\n{format_table(report['summary'])}", flush=True)
    ms = report["parts"]["main_job"]["summary"]
    if ms["test_accuracy_percent_mean"] is not None:
        print(f"main job: test accuracy {ms['test_accuracy_percent_mean']:.2f}% mean over {ms['runs_completed']} "
              f"seed(s) (min {ms['test_accuracy_percent_min']:.2f}%, max {ms['test_accuracy_percent_max']:.2f}%)")
    print(f"skipped: {len(report['skipped'])} item(s); errors: {len(report['errors'])}")
    with contextlib.suppress(Exception):
        write_json(out_dir / REPORT_JSON, report)
    sizes = {name: (out_dir / name).stat().st_size if (out_dir / name).is_file() else None for name in OUTPUT_FILES}
    print("files:\n" + "\n".join(f"  {out_dir / n}  ({'missing' if s is None else f'{s:,} bytes'})"
                                  for n, s in sizes.items()), flush=True)

if __name__ == "__main__":
    sys.exit(main(start=_T0))
