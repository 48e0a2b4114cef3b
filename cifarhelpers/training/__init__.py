"""Training: one validated config (``TrainConfig``), the recipes, the loops, the run folder and the LR range test.

``fit(config)`` is the whole job: it builds the data (``loaders``), the model (:mod:`cifarhelpers.models`),
the optimizer and schedule (``recipes``, ``schedules``), the precision (``precision``), trains and tests
each epoch (``engine``), and writes everything into a run folder (``run_folder``: ``metrics.json``,
checkpoints through ``checkpoint``, CSV/TensorBoard logs through ``run_logs``, figures).

Modules:

* ``config``: ``TrainConfig`` and the run profiles; ``recipes``: optimizers + LR schedules by name (OneCycle
  by default); ``schedules``: the piecewise-linear LR and the cadence/warm-up wrapper.
* ``precision``: bf16, fp16 + GradScaler or fp32 by device; ``devices``: the device and its name;
  ``reproducibility``: the seeds.
* ``engine``: train, test, predict and flip-TTA loops; ``loaders``: a run's data from its config.
* ``train``: ``fit``; ``run_folder``: ``RunFolder`` and resuming; ``checkpoint``: atomic checkpoints and safe
  loading; ``run_logs``: per-epoch CSV and TensorBoard logs.
* ``lr_range_test``: the LR range test (torch-lr-finder); ``lr_range_result``: its result and file;
  ``lr_suggestions``: the rules that turn its curve into LRMAX.
* ``plots``: loss, accuracy and LR-schedule figures; ``lr_plots``: the LR range test's figure.

Imports :mod:`cifarhelpers.data` and :mod:`cifarhelpers.models`, never the families above it.
"""

from .checkpoint import (CHECKPOINT_FILE, FORMAT, METRICS_FILE, RECIPES_CHANGED_SINCE, REQUIRED_KEYS, RESUMABLE_CHANGES,
                         WEIGHTS_FILE, WRAPPER_PREFIXES, check_resumable, load_checkpoint, load_run_model, load_weights,
                         restore_training_state, safe_load, save_checkpoint, training_state)
from .config import (CIFAR10_TEST_IMAGES, CIFAR10_TRAIN_IMAGES, FIELD_NAMES, FIND_LR, LOADERS, MIN_LR_TEST_ITERATIONS,
                     PROFILE_CHOICES, PROFILES, Profile, TrainConfig, resolve_profile)
from .devices import device_name, resolve_device
from .engine import (FLIP_TTA_METHOD, EpochResult, backward_and_step, check_epoch_finite, evaluate, evaluate_flip_tta,
                     flip_tta_probabilities, predict, predict_flip_tta, train_one_epoch)
from .loaders import (AlbumentationsLoader, Prepared, check_batches, default_num_workers, prepare_data, resolved_loader,
                      train_statistics)
from .lr_plots import RULE_STYLE, lowest_loss_lr, past_lowest_loss, plot_lr_range_test
from .lr_range_result import LR_JSON, LRRangeTestResult, save_lr_range_test
from .lr_range_test import (FAR_FROM_DEFAULT, check_settings, describe_lr, lr_range_test, range_test_for_run,
                            run_lr_range_test)
from .lr_suggestions import DEFAULT_RULE, RULES, min_loss_lr, steepest_lr, suggest_lrs, valley_lr
from .plots import NUM_CLASSES, loss_floor, loss_label, plot_curves, plot_lr_schedule, plot_steps
from .precision import BF16_MIN_CAPABILITY, PRECISIONS, Precision, select_precision
from .recipes import LABEL_SMOOTHING, RECIPE_SETTINGS, RECIPES, Recipe, build_criterion, build_optimizer, lr_schedule
from .reproducibility import derive_seed, restore_rng_states, rng_states, seed_epoch, seed_everything
from .run_folder import CURVES_FILE, LR_TEST_PLOT, UNITS, RunFolder, new_run_dir, resumable_checkpoint, resume_config
from .run_logs import HISTORY_COLUMNS, HISTORY_CSV, STEP_COLUMNS, STEPS_CSV, RunLogs, epoch_steps, write_csv
from .schedules import CADENCES, PiecewiseLinearLR, Schedule
from .train import RunResult, fit, run_header

__all__ = ["AlbumentationsLoader", "backward_and_step", "BF16_MIN_CAPABILITY", "build_criterion", "build_optimizer",
           "CADENCES", "check_batches", "check_epoch_finite", "check_resumable", "check_settings", "CHECKPOINT_FILE",
           "CIFAR10_TEST_IMAGES", "CIFAR10_TRAIN_IMAGES", "CURVES_FILE", "default_num_workers", "DEFAULT_RULE",
           "derive_seed", "describe_lr", "device_name", "epoch_steps", "EpochResult", "evaluate", "evaluate_flip_tta",
           "FAR_FROM_DEFAULT", "FIELD_NAMES", "FIND_LR", "fit", "FLIP_TTA_METHOD", "flip_tta_probabilities", "FORMAT",
           "HISTORY_COLUMNS", "HISTORY_CSV", "LABEL_SMOOTHING", "load_checkpoint", "load_run_model", "load_weights",
           "LOADERS", "loss_floor", "loss_label", "lowest_loss_lr", "LR_JSON", "lr_range_test", "lr_schedule",
           "LR_TEST_PLOT", "LRRangeTestResult", "METRICS_FILE", "min_loss_lr", "MIN_LR_TEST_ITERATIONS", "new_run_dir",
           "NUM_CLASSES", "past_lowest_loss", "PiecewiseLinearLR", "plot_curves", "plot_lr_range_test",
           "plot_lr_schedule", "plot_steps", "Precision", "PRECISIONS", "predict", "predict_flip_tta", "prepare_data",
           "Prepared", "Profile", "PROFILE_CHOICES", "PROFILES", "range_test_for_run", "Recipe", "RECIPE_SETTINGS",
           "RECIPES", "RECIPES_CHANGED_SINCE", "REQUIRED_KEYS", "resolve_device", "resolve_profile", "resolved_loader",
           "restore_rng_states", "restore_training_state", "RESUMABLE_CHANGES", "resumable_checkpoint",
           "resume_config", "rng_states", "RULE_STYLE", "RULES", "run_header", "run_lr_range_test", "RunFolder",
           "RunLogs", "RunResult", "safe_load", "save_checkpoint", "save_lr_range_test", "Schedule", "seed_epoch",
           "seed_everything", "select_precision", "steepest_lr", "STEP_COLUMNS", "STEPS_CSV", "suggest_lrs",
           "train_one_epoch", "train_statistics", "TrainConfig", "training_state", "UNITS", "valley_lr",
           "WEIGHTS_FILE", "WRAPPER_PREFIXES", "write_csv"]
