"""Run the numbered notebooks headless, in order, with papermill (:func:`run_notebooks`), into a new run
folder; :mod:`cifarhelpers.cli.notebooks` is its command, ``cifar-notebooks``.

Needs the ``notebooks`` extra (papermill and a Jupyter kernel): ``pip install 'cifarhelpers[notebooks]'``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from cifarhelpers.data import ROOT_ENV
from cifarhelpers.errors import ConfigError, require
from cifarhelpers.files import write_json
from cifarhelpers.training import new_run_dir, resolve_device

from .colab import NOTEBOOKS_DIR
from .setup import validate_parameters

NOTEBOOKS = (
    "01_dataset_statistics.ipynb",
    "02_augmentation_preview.ipynb",
    "03_lr_range_test.ipynb",
    "04_train_onecycle.ipynb",
    "05_misclassification_gradcam.ipynb",
    "06_model_zoo.ipynb",
    "07_lr_sweep.ipynb",
)


def parse_value(text: str) -> Any:
    """A ``-p`` value as papermill's command line reads it: int, float, bool, None or str."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_parameters_file(path: str | os.PathLike) -> dict[str, Any]:
    """Notebook parameters from a YAML (or JSON) file: a mapping of names to plain values (numbers,
    booleans, strings, null), as papermill's ``-f``. Names and values are checked later, with the
    ``-p`` ones, by :func:`run_notebooks`.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML, or is not a mapping of
            names to plain values (the message names the file and the offending entry).
    """
    yaml = require("yaml", "notebooks", "reading a parameters file")
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"parameters file {str(path)!r} cannot be read ({err.strerror or err}): check the path") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"parameters file {str(path)!r} is not valid YAML ({err}): write NAME: VALUE per line") from err
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"parameters file {str(path)!r} holds a {type(content).__name__}, not a mapping: write "
                          "NAME: VALUE per line, e.g. 'epochs: 5'")
    for name, value in content.items():
        if not isinstance(name, str) or not (value is None or isinstance(value, (bool, int, float, str))):
            raise ConfigError(f"parameters file {str(path)!r}: {name!r}: {value!r} is not a parameter name with a plain "
                              "value (a number, true/false, a string or null)")
    return content


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell, with their defaults (as source text).

    Raises:
        MissingDependencyError: papermill is not installed (``pip install 'cifarhelpers[notebooks]'``).
    """
    papermill = require("papermill", "notebooks", "reading notebook parameters")

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


def run_notebooks(parameters: dict[str, Any] | None = None, *, output_dir: str | os.PathLike = "runs",
                  notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR, notebooks: tuple[str, ...] = NOTEBOOKS,
                  progress: bool = True, log_output: bool = False) -> Path:
    """Execute the notebooks in order with papermill into a new ``<YYYYmmdd-HHMMSS>-notebooks`` run folder.

    Every notebook gets ``output_dir`` = the run folder, plus those of ``parameters`` it declares.
    The executed notebooks are saved in the run folder beside what they wrote. They run in
    ``notebooks_dir``, so a relative data root (the ``data_root`` parameter or ``$CIFAR10_ROOT``)
    is made absolute first: it means the same folder as where this is called.

    Args:
        parameters: parameter values, e.g. ``{"profile": "short", "epochs": 3}``.
        output_dir: parent of the new run folder.
        notebooks_dir: where the notebooks are.
        notebooks: file names, run in this order.
        progress: papermill's progress bar (one tick per cell).
        log_output: stream every cell's output to this process's stdout and stderr while it runs.

    Returns:
        The run folder.

    Raises:
        ConfigError: a parameter no notebook declares, an invalid value (checked by
            :func:`validate_parameters`) or a device this machine lacks, all before anything
            runs or any folder is made.
        papermill.PapermillExecutionError: a cell failed; the chain stops there. Its message
            starts with the notebook's name and the path of its executed copy, then papermill's
            "Exception encountered at In [n]" and the traceback (``err.notebook`` holds the name).
        MissingDependencyError: papermill or ipykernel is not installed (the message gives the pip
            command: ``pip install 'cifarhelpers[notebooks]'``).
    """
    papermill = require("papermill", "notebooks", "running the notebooks headless")
    require("ipykernel", "notebooks", "running the notebooks headless (the Jupyter kernel)")

    parameters = dict(parameters or {})
    notebooks_dir = Path(notebooks_dir)
    declared = {name: notebook_parameters(notebooks_dir / name) for name in notebooks}
    known = set().union(*declared.values())
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {unknown}; the notebooks take {sorted(known)}")
    if "output_dir" in parameters:
        raise ConfigError("output_dir is set by the runner (the new run folder): pass the parent folder as "
                          "run_notebooks(output_dir=...) or cifar-notebooks --output-dir DIR")
    validate_parameters(parameters)
    if "device" in parameters:
        resolve_device(parameters["device"])  # e.g. "cuda" on a machine without one: refused here, not in a notebook
    if parameters.get("data_root"):
        parameters["data_root"] = _from_here(parameters["data_root"])
    run_dir = new_run_dir(output_dir, "notebooks").resolve()
    write_json(run_dir / "parameters.json", {"parameters": parameters, "notebooks": list(notebooks),
                                             "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    env_root = os.environ.get(ROOT_ENV)
    if env_root:  # the kernels inherit this process's environment
        os.environ[ROOT_ENV] = _from_here(env_root)
    try:
        for name in notebooks:
            given = {k: v for k, v in parameters.items() if k in declared[name]}
            print(f"running {name} {given or ''}", flush=True)
            try:
                papermill.execute_notebook(
                    str(notebooks_dir / name), str(run_dir / name),
                    parameters={**given, "output_dir": str(run_dir)},
                    cwd=str(notebooks_dir), progress_bar=progress, kernel_name="python3",
                    log_output=log_output, stdout_file=sys.stdout if log_output else None,
                    stderr_file=sys.stderr if log_output else None,
                )
            except papermill.PapermillExecutionError as err:
                err.notebook = name
                err.traceback = [f"notebook {name} failed at cell In [{err.exec_count}] (executed copy with its "
                                 f"outputs: {run_dir / name})", *err.traceback]
                raise
    finally:
        if env_root is not None:
            os.environ[ROOT_ENV] = env_root
    return run_dir


def _from_here(path: str) -> str:
    """``path`` made absolute from the current folder, unless it already is (``~`` counts as absolute)."""
    return path if os.path.isabs(os.path.expanduser(path)) else os.path.abspath(path)
