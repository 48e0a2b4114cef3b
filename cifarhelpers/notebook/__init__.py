"""What the numbered notebooks call: their set-up, their hand-off files, Colab, and the papermill runner.

* ``setup``: ``start_notebook`` and the config builders each notebook calls first.
* ``handoffs``: the files the notebooks hand to each other (the table is in its docstring).
* ``colab``: the Colab badge and install cell from pyproject's ``[project.urls]``; outputs on Drive.
* ``runner``: ``run_notebooks``, notebooks 01-07 in order with papermill.

The top of the package: it may import every family below it; nothing below imports it.
"""

from .colab import (BADGE_IMAGE, BRANCH, COLAB_CONTENT, COLAB_EXTRA, DRIVE_SUBFOLDER, NOTEBOOKS_DIR, PYPROJECT,
                    REPO_ROOT, badge_markdown, colab_cell_source, colab_folders, colab_output_dir, colab_url,
                    drive_mounted, install_spec, mount_drive, on_colab, repository_url, sync_notebooks)
from .handoffs import (ANALYSIS_JSON, PRODUCERS, STATS_JSON, SWEEP_JSON, TRAIN_JSON, ZOO_JSON, Producer, colab_hint,
                       load_lr_range_test, load_statistics, load_train_run, lr_range_test_note, save_lr_sweep,
                       save_statistics, save_train_run, written_by)
from .runner import NOTEBOOKS, load_parameters_file, notebook_parameters, parse_value, run_notebooks
from .setup import (PARAMETER_CHECKS, NotebookSetup, analysis_model, notebook_config, parse_max_lrs, parse_setup_line,
                    resolve_loader, start_notebook, sweep_config, training_config, validate_parameters)

__all__ = ["ANALYSIS_JSON", "analysis_model", "BADGE_IMAGE", "badge_markdown", "BRANCH", "colab_cell_source",
           "COLAB_CONTENT", "COLAB_EXTRA", "colab_folders", "colab_hint", "colab_output_dir", "colab_url",
           "drive_mounted", "DRIVE_SUBFOLDER", "install_spec", "load_lr_range_test", "load_parameters_file",
           "load_statistics", "load_train_run", "lr_range_test_note", "mount_drive", "notebook_config",
           "notebook_parameters", "NOTEBOOKS", "NOTEBOOKS_DIR", "NotebookSetup", "on_colab", "PARAMETER_CHECKS",
           "parse_max_lrs", "parse_setup_line", "parse_value", "Producer", "PRODUCERS", "PYPROJECT", "REPO_ROOT",
           "repository_url", "resolve_loader", "run_notebooks", "save_lr_sweep", "save_statistics", "save_train_run",
           "start_notebook", "STATS_JSON", "sweep_config", "SWEEP_JSON", "sync_notebooks", "TRAIN_JSON",
           "training_config", "validate_parameters", "written_by", "ZOO_JSON"]
