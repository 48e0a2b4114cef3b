"""``python -m cifarhelpers.cli.colab [--check]``: write (or check) every notebook's Colab badge and
install cell from pyproject.toml's ``[project.urls]``."""

from __future__ import annotations

import argparse
import sys

from cifarhelpers.notebook import NOTEBOOKS_DIR, sync_notebooks

from .common import add_boolean, add_version


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m cifarhelpers.cli.colab``: ``--check`` / ``--no-check``, ``--notebooks-dir``,
    ``--version``."""
    parser = argparse.ArgumentParser(prog="python -m cifarhelpers.cli.colab",
                                     description="Write the Colab badge and install cell of every notebook from "
                                                 "pyproject.toml's [project.urls].")
    add_boolean(parser, "--check", default=False, help="report notebooks that differ; write nothing")
    parser.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR),
                        help="where the .ipynb files are (default: the repository's notebooks/)")
    add_version(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m cifarhelpers.cli.colab [--check]``: 0 when every notebook is (now) in step, 1 when
    ``--check`` found one that is not."""
    args = build_parser().parse_args(argv)
    changed = sync_notebooks(args.notebooks_dir, check=args.check)
    verb = "differ" if args.check else "rewritten"
    print(f"{len(changed)} notebook(s) {verb}: {changed}" if changed else "every notebook is in step")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
