"""``cifar-notebooks [run] [options]``: notebooks 01-07 in order with papermill into a new run folder
(:func:`cifarhelpers.notebook.run_notebooks`).

Run all seven into a new run folder::

    cifar-notebooks                                    # profile auto: full on a GPU, short on a CPU
    cifar-notebooks -p epochs 5 -p max_lr 0.02         # parameters go to every notebook that has them
    cifar-notebooks -f params.yaml -p seed 3           # a parameters file (YAML or JSON), as papermill's -f
    python -m cifarhelpers.cli.notebooks --profile short --output-dir runs
    cifar-notebooks run --profile short                # the same: the word ``run`` is optional

``cifar-notebooks --help`` lists every option.

Each cell's output is streamed to the terminal while it runs (papermill's ``log_output``), so a
24-epoch training shows its epochs as they end; ``--no-log-output`` shows papermill's progress bar
instead.

Needs the ``notebooks`` extra (papermill and a Jupyter kernel): ``pip install 'cifarhelpers[notebooks]'``.
"""

from __future__ import annotations

import argparse
import json
import sys

from cifarhelpers.errors import CifarHelpersError, require
from cifarhelpers.notebook import NOTEBOOKS_DIR, TRAIN_JSON, load_parameters_file, parse_value, run_notebooks
from cifarhelpers.training import PROFILE_CHOICES

from .common import add_boolean, add_version


def build_parser() -> argparse.ArgumentParser:
    """The ``cifar-notebooks`` parser: every option at the top level; the word ``run`` before them is
    optional (``cifar-notebooks run ...``, the older spelling, means the same)."""
    parser = argparse.ArgumentParser(
        prog="cifar-notebooks", description="Run notebooks 01-07 in order with papermill into a new run folder.")
    parser.add_argument("command", nargs="?", choices=("run",), default="run",
                        help="optional: the notebooks run with or without it")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter, papermill style (repeatable), e.g. -p epochs 5; none, true and "
                             "false are read as papermill reads them")
    parser.add_argument("-f", "--parameters-file", default=None, metavar="FILE",
                        help="notebook parameters from a YAML or JSON file (NAME: VALUE per line); -p overrides it")
    add_boolean(parser, "--log-output", default=True,
                help="stream each cell's output while it runs; --no-log-output shows a progress bar instead")
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                        help="shorthand for -p profile ... (default: the notebooks' own, auto: full on a CUDA GPU, "
                             "short elsewhere)")
    parser.add_argument("--output-dir", default="runs", help="parent of the new run folder (default: runs)")
    parser.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR),
                        help="where the .ipynb files are (default: the repository's notebooks/)")
    add_version(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``cifar-notebooks [run] [options]`` / ``python -m cifarhelpers.cli.notebooks``. Returns the exit
    status: 0 done, 1 a notebook failed (its name, cell and executed copy are printed), 2 invalid
    parameters or a missing extra."""
    args = build_parser().parse_args(argv)
    try:
        papermill = require("papermill", "notebooks", "running the notebooks headless")
        parameters = load_parameters_file(args.parameters_file) if args.parameters_file else {}
        parameters.update({name: parse_value(value) for name, value in args.parameter})
        if args.profile:
            parameters["profile"] = args.profile
        run_dir = run_notebooks(parameters, output_dir=args.output_dir, notebooks_dir=args.notebooks_dir,
                                progress=not args.log_output, log_output=args.log_output)
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
