"""``cifar-eval RUN_DIR``: evaluate a finished run folder on the test images it used
(:func:`cifarhelpers.analysis.evaluate_run`); writes ``eval.json`` into it.

Run::

    cifar-eval runs/20261125-101500-custom_resnet            # TTA on; device auto: CUDA, else MPS, else CPU
    cifar-eval runs/20261125-101500-custom_resnet --no-tta --device cpu --data-root /data/cifar10

Exit status: 0 done; 2 the input is wrong (a bad flag; a folder that is not a finished run: no
``metrics.json`` or no ``model.pt``; weights that do not load); 1 evaluating or writing failed (the
data cannot be read, the disk is full).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cifarhelpers.analysis import EVAL_FILE, evaluate_run, format_evaluation
from cifarhelpers.errors import CheckpointError, CifarHelpersError, ConfigError

from .common import add_boolean, add_version


def build_parser() -> argparse.ArgumentParser:
    """The ``cifar-eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="cifar-eval",
        description="Evaluate a finished run folder on the test images it used: accuracy, per-class accuracy, "
                    "confusion matrix and horizontal-flip test-time augmentation. Writes eval.json into the folder.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by cifar-train or notebook 04")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--data-root", default=None,
                        help="the CIFAR-10 copy (default: the run's data_root, else $CIFAR10_ROOT, else ./data)")
    parser.add_argument("--batch-size", type=int, default=500, help="images per forward pass (default: 500)")
    add_boolean(parser, "--tta", default=True, help="also evaluate with horizontal-flip test-time augmentation")
    add_boolean(parser, "--quiet", default=False, help="no progress bars")
    add_version(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cifar-eval``; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        result = evaluate_run(args.run_dir, device=args.device, data_root=args.data_root, batch_size=args.batch_size,
                              tta=args.tta, progress=not args.quiet)
    except (ConfigError, CheckpointError) as err:
        print(f"cifar-eval: error: {err}", file=sys.stderr)
        return 2
    except CifarHelpersError as err:
        print(f"cifar-eval: error: {err}", file=sys.stderr)
        return 1
    print(format_evaluation(result))
    print(f"written {Path(args.run_dir) / EVAL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
