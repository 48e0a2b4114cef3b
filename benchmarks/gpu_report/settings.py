"""The GPU report's settings: every hyperparameter, file name, limit and unit of the report in one place.

:data:`FULL` is what runs on the GPU, :data:`SMOKE` the same code paths on tiny subsets on a CPU; :func:`main_config`
is the main job as every part runs it; :data:`UNITS` names the unit of every figure in ``gpu_report.json``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from cifarhelpers.models import MODEL_DEFAULTS
from cifarhelpers.notebook import NOTEBOOKS
from cifarhelpers.training import PROFILES, RECIPES, TrainConfig

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
#: Seeds a variant and the default both need before a change of default can be adopted.
ADOPTION_SEEDS = 3


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
#: Fields a variant may not change: the report sets them for every run, or they would leave the main job.
NOT_VARIED = ("seed", "output_dir", "data_root", "device", "resume", "download")


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
