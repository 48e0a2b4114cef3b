"""Sweeps: a grid or random search of ``TrainConfig`` fields over seeds, run one after another or on Ray Tune.

* ``spec``: ``SweepConfig``, the validated search, and its trial list; ``trials``: one trial run and
  recorded, and where it stands on disk; ``runner``: ``run_sweep`` / ``resume_sweep``, the sweep folder and
  the sequential backend; ``ray_backend``: the Ray Tune backend (local or a cluster's ``address``).
* ``results``: the results table (CSV, printed) and progress lines; ``plots``: the sweep figure.

Built on :mod:`cifarhelpers.training` (each trial is one ``fit``).
"""

from .plots import AXIS_NAMES, CHANCE, MAX_LABELLED, ZOOM_ABOVE, plot_sweep
from .ray_backend import init_arguments, run_ray, trainable, trial_resources
from .results import COUNTS, FIGURES, UNITS, best_row, epoch_line, format_table, results_table, trial_line
from .runner import (RESULTS_CSV, RESULTS_PNG, SWEEP_FILE, SweepResult, choose_backend, resume_sweep, run_sequential,
                     run_sweep)
from .spec import BACKENDS, DISTRIBUTIONS, NOT_SWEPT, SweepConfig, Trial, sample, trial_config
from .trials import DONE, TRIAL_FILE, config_to_run, latest_run, load_trial_data, run_trial, trial_record, trial_state

__all__ = ["AXIS_NAMES", "BACKENDS", "best_row", "CHANCE", "choose_backend", "config_to_run", "COUNTS",
           "DISTRIBUTIONS", "DONE", "epoch_line", "FIGURES", "format_table", "init_arguments", "latest_run",
           "load_trial_data", "MAX_LABELLED", "NOT_SWEPT", "plot_sweep", "RESULTS_CSV", "RESULTS_PNG", "results_table",
           "resume_sweep", "run_ray", "run_sequential", "run_sweep", "run_trial", "sample", "SWEEP_FILE",
           "SweepConfig", "SweepResult", "trainable", "Trial", "trial_config", "TRIAL_FILE", "trial_line",
           "trial_record", "trial_resources", "trial_state", "UNITS", "ZOOM_ABOVE"]
