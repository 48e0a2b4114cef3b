"""``cifar-notebooks``: run the numbered notebooks headless, in order, with papermill.

Run all seven into a new run folder::

    cifar-notebooks run                                # profile auto: full on a GPU, short on a CPU
    cifar-notebooks run -p epochs 5 -p max_lr 0.02     # parameters go to every notebook that has them
    python -m cifarhelpers.notebook_runner run --profile short --output-dir runs

Needs the ``notebooks`` extra (papermill and a Jupyter kernel): ``pip install 'cifarhelpers[notebooks]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .config import PROFILE_CHOICES
from .devices import resolve_device
from .errors import CifarHelpersError, ConfigError, require
from .files import write_json
from .handoffs import TRAIN_JSON
from .notebook_setup import validate_parameters
from .runs import new_run_dir

NOTEBOOKS = (
    "01_dataset_statistics.ipynb",
    "02_augmentation_preview.ipynb",
    "03_lr_range_test.ipynb",
    "04_train_onecycle.ipynb",
    "05_misclassification_gradcam.ipynb",
    "06_model_zoo.ipynb",
    "07_lr_sweep.ipynb",
)
#: The repository's notebooks folder (an installed package has none: pass ``notebooks_dir``).
NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


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


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell, with their defaults (as source text).

    Raises:
        MissingDependencyError: papermill is not installed (``pip install 'cifarhelpers[notebooks]'``).
    """
    papermill = require("papermill", "notebooks", "reading notebook parameters")

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


def run_notebooks(parameters: dict[str, Any] | None = None, *, output_dir: str | os.PathLike = "runs",
                  notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR, notebooks: tuple[str, ...] = NOTEBOOKS,
                  progress: bool = True) -> Path:
    """Execute the notebooks in order with papermill into a new ``notebooks-*`` run folder.

    Every notebook gets ``output_dir`` = the run folder, plus those of ``parameters`` it declares.
    The executed notebooks are saved in the run folder beside what they wrote.

    Args:
        parameters: parameter values, e.g. ``{"profile": "short", "epochs": 3}``.
        output_dir: parent of the new run folder.
        notebooks_dir: where the notebooks are.
        notebooks: file names, run in this order.
        progress: papermill's progress bar (one tick per cell).

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
                          "run_notebooks(output_dir=...) or --output-dir")
    validate_parameters(parameters)
    if "device" in parameters:
        resolve_device(parameters["device"])  # e.g. "cuda" on a machine without one: refused here, not in a notebook
    run_dir = new_run_dir(output_dir, "notebooks").resolve()
    write_json(run_dir / "parameters.json", {"parameters": parameters, "notebooks": list(notebooks),
                                             "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for name in notebooks:
        given = {k: v for k, v in parameters.items() if k in declared[name]}
        print(f"running {name} {given or ''}", flush=True)
        try:
            papermill.execute_notebook(
                str(notebooks_dir / name), str(run_dir / name),
                parameters={**given, "output_dir": str(run_dir)},
                cwd=str(notebooks_dir), progress_bar=progress, kernel_name="python3",
            )
        except papermill.PapermillExecutionError as err:
            err.notebook = name
            err.traceback = [f"notebook {name} failed at cell In [{err.exec_count}] (executed copy with its "
                             f"outputs: {run_dir / name})", *err.traceback]
            raise
    return run_dir


def main(argv: list[str] | None = None) -> int:
    """``cifar-notebooks run`` / ``python -m cifarhelpers.notebook_runner run``. Returns the exit status:
    0 done, 1 a notebook failed (its name, cell and executed copy are printed), 2 invalid parameters
    or a missing extra."""
    parser = argparse.ArgumentParser(prog="cifar-notebooks", description="Run notebooks 01-07 with papermill.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks in order into a new run folder")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a notebook parameter, papermill style (repeatable), e.g. -p epochs 5")
    run.add_argument("--profile", choices=PROFILE_CHOICES, default=None, help="shorthand for -p profile ...")
    run.add_argument("--output-dir", default="runs", help="parent of the new run folder (default: runs)")
    run.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help="where the .ipynb files are")
    args = parser.parse_args(argv)
    parameters = {name: parse_value(value) for name, value in args.parameter}
    if args.profile:
        parameters["profile"] = args.profile
    try:
        papermill = require("papermill", "notebooks", "running the notebooks headless")
        run_dir = run_notebooks(parameters, output_dir=args.output_dir, notebooks_dir=args.notebooks_dir)
    except CifarHelpersError as err:
        print(f"cifar-notebooks: error: {err}", file=sys.stderr)
        return 2
    except papermill.PapermillExecutionError as err:  # names the notebook, the cell and the executed copy
        print(f"cifar-notebooks: a notebook failed: {err}", file=sys.stderr)
        return 1
    print(f"done: executed notebooks and their outputs are in {run_dir}")
    summary = run_dir / TRAIN_JSON
    if summary.is_file():
        print(json.dumps(json.loads(summary.read_text()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
