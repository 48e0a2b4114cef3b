"""Running the numbered notebooks: the setup each notebook calls first, and the papermill runner.

Run all five headless, in order, into a new run folder::

    cifar-notebooks run                                # profile auto: full on a GPU, short on a CPU
    cifar-notebooks run -p epochs 5 -p max_lr 0.02     # parameters go to every notebook that has them
    python -m cifarhelpers.notebooks run --profile short --output-dir runs

Each notebook starts with ``start_notebook(...)``, which validates its parameters (a bad value
stops the notebook at once with a message naming the parameter and its valid range), picks the
device and profile, creates the output folder and loads the data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import PROFILES, TrainConfig
from .data import CIFAR10Data, ChannelStats, dataset_statistics, load_cifar10
from .devices import device_name, resolve_device
from .errors import CifarHelpersError, ConfigError
from .runs import ensure_writable_dir, new_run_dir, read_json, write_json

NOTEBOOKS = (
    "01_dataset_statistics.ipynb",
    "02_augmentation_preview.ipynb",
    "03_lr_range_test.ipynb",
    "04_train_onecycle.ipynb",
    "05_misclassification_gradcam.ipynb",
)
NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
#: Files the notebooks hand to each other inside the output folder.
STATS_JSON = "dataset_statistics.json"   # 01 -> 02, 04, 05: mean/std the transforms use
LR_JSON = "lr_range_test.json"           # 03 -> 04: LRMAX, LRMIN
TRAIN_JSON = "train_run.json"            # 04 -> 05: the run folder with model.pt and metrics.json

#: The LR range test per profile (iterations, batch size).
LR_TEST_PROFILES = {"full": {"num_iter": 100, "batch_size": 512}, "short": {"num_iter": 40, "batch_size": 128}}


@dataclass
class NotebookSetup:
    """What a notebook needs after its parameters cell.

    Attributes:
        device: the torch device to use.
        profile: ``"full"`` or ``"short"`` (``"auto"`` resolved: full on CUDA, short elsewhere).
        output_dir: the folder the notebook writes into (created).
        data: the CIFAR-10 copy.
    """

    device: torch.device
    profile: str
    output_dir: Path
    data: CIFAR10Data

    def describe(self) -> str:
        src = self.data.source
        return (f"device: {device_name(self.device)} | profile: {self.profile} | data: {src.layout} copy at "
                f"{src.root} (sha256 {src.sha256[:12]}...) | output: {self.output_dir}")


def start_notebook(*, data_root: str | None, device: str, profile: str, output_dir: str,
                   seed: int = 0) -> NotebookSetup:
    """Validate the common parameters, resolve device and profile, create the output folder, load data.

    Raises:
        ConfigError: a parameter is invalid (named, with its valid values).
        DataError / DataNotFoundError: the data cannot be read.
    """
    TrainConfig(data_root=data_root, device=device, output_dir=output_dir, seed=seed)  # type and range checks
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r} is invalid: choose one of {list(PROFILES)}")
    torch_device = resolve_device(device)
    resolved = profile if profile != "auto" else ("full" if torch_device.type == "cuda" else "short")
    out = ensure_writable_dir(output_dir)
    data = load_cifar10(data_root, progress=True)
    setup = NotebookSetup(device=torch_device, profile=resolved, output_dir=out, data=data)
    print(setup.describe())
    return setup


def load_statistics(output_dir: str | os.PathLike, data: CIFAR10Data | None = None) -> ChannelStats:
    """The statistics notebook 01 wrote (``dataset_statistics.json``); measured afresh from
    ``data`` when the file is absent (a notebook run on its own)."""
    path = Path(output_dir) / STATS_JSON
    if not path.is_file() and data is not None:
        return dataset_statistics(data.x_train)
    return ChannelStats(**{k: (tuple(v) if isinstance(v, list) else v)
                           for k, v in read_json(path, "statistics file (written by notebook 01)")["train"].items()})


def save_statistics(output_dir: str | os.PathLike, data: CIFAR10Data, train: ChannelStats, test: ChannelStats) -> Path:
    """Write notebook 01's ``dataset_statistics.json``: statistics of both splits, class counts, data source."""
    from .data import class_counts

    return write_json(Path(output_dir) / STATS_JSON, {
        "train": train.to_dict(), "test": test.to_dict(), "classes": list(data.classes),
        "class_counts": {"train": class_counts(data.y_train), "test": class_counts(data.y_test)},
        "data": data.source.to_dict(), "scale": "[0, 1]",
    })


def notebook_config(profile: str, **params: Any) -> TrainConfig:
    """The training config of a notebook: the profile's values, then every parameter that is not None.

    Raises:
        ConfigError: an invalid parameter (named, with its valid range).
    """
    from .config import profile_overrides

    given = {k: v for k, v in params.items() if v is not None}
    return TrainConfig(**{**profile_overrides(profile, "cpu"), **given})


def save_json(output_dir: str | os.PathLike, name: str, content: dict) -> Path:
    """Write ``content`` as ``output_dir/name`` (atomically) and return the path."""
    return write_json(Path(output_dir) / name, content)


def read_handoff(path: str | os.PathLike | None, output_dir: str | os.PathLike, name: str, writer: str) -> dict:
    """Read a file an earlier notebook wrote: ``path`` if given, else ``output_dir/name``.

    Raises:
        ConfigError: the file is missing or malformed; the message names the notebook that writes it.
    """
    return read_json(Path(path) if path else Path(output_dir) / name, f"{name} (written by notebook {writer})")


# ------------------------------------------------------------------------------------------
# Runner
# ------------------------------------------------------------------------------------------


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
    """The parameters a notebook declares in its ``parameters`` cell, with their defaults."""
    import papermill

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

    Returns:
        The run folder.

    Raises:
        ConfigError: a parameter no notebook declares, or a value TrainConfig refuses (checked
            before anything runs).
        papermill.PapermillExecutionError: a cell failed; it names the notebook and the cell,
            and the chain stops there.
    """
    import papermill

    parameters = dict(parameters or {})
    notebooks_dir = Path(notebooks_dir)
    declared = {name: notebook_parameters(notebooks_dir / name) for name in notebooks}
    known = set().union(*declared.values())
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {unknown}; the notebooks take {sorted(known)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    TrainConfig(**{k: v for k, v in parameters.items() if k in fields and k != "output_dir"})  # validate early
    if "profile" in parameters and parameters["profile"] not in PROFILES:
        raise ConfigError(f"profile={parameters['profile']!r} is invalid: choose one of {list(PROFILES)}")
    run_dir = new_run_dir(output_dir, "notebooks").resolve()
    write_json(run_dir / "parameters.json", {"parameters": parameters, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for name in notebooks:
        given = {k: v for k, v in parameters.items() if k in declared[name]}
        print(f"running {name} {given or ''}", flush=True)
        papermill.execute_notebook(
            str(notebooks_dir / name), str(run_dir / name),
            parameters={**given, "output_dir": str(run_dir)},
            cwd=str(notebooks_dir), progress_bar=progress, kernel_name="python3",
        )
    return run_dir


def main(argv: list[str] | None = None) -> int:
    """``cifar-notebooks run`` / ``python -m cifarhelpers.notebooks run``."""
    parser = argparse.ArgumentParser(prog="cifar-notebooks", description="Run notebooks 01-05 with papermill.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebooks in order into a new run folder")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a notebook parameter, papermill style (repeatable), e.g. -p epochs 5")
    run.add_argument("--profile", choices=PROFILES, default=None, help="shorthand for -p profile ...")
    run.add_argument("--output-dir", default="runs", help="parent of the new run folder (default: runs)")
    run.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help="where the .ipynb files are")
    args = parser.parse_args(argv)
    parameters = {name: parse_value(value) for name, value in args.parameter}
    if args.profile:
        parameters["profile"] = args.profile
    try:
        run_dir = run_notebooks(parameters, output_dir=args.output_dir, notebooks_dir=args.notebooks_dir)
    except CifarHelpersError as err:
        print(f"cifar-notebooks: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # papermill's execution error names the notebook and cell
        if type(err).__name__ == "PapermillExecutionError":
            print(f"cifar-notebooks: a notebook failed: {err}", file=sys.stderr)
            return 1
        raise
    print(f"done: executed notebooks and their outputs are in {run_dir}")
    summary = run_dir / TRAIN_JSON
    if summary.is_file():
        print(json.dumps(json.loads(summary.read_text()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
