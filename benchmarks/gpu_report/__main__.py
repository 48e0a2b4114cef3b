"""``python benchmarks/gpu_report ...`` (this folder run as a script), or ``python -m gpu_report ...`` with the
folder's parent on the path: the GPU report's command (:func:`gpu_report.cli.main`). The budget counts from the
first line here, before the heavy imports (torch, cifarhelpers)."""

import time

_T0 = time.perf_counter()

import sys
from pathlib import Path

if not __package__:  # run as a folder: Python put the folder itself first on the path; its parent is what holds
    _HERE = Path(__file__).resolve().parent  # the package and its sibling modules (peer_airbench.py)
    if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
        sys.path.pop(0)
    sys.path.insert(0, str(_HERE.parent))

from gpu_report.cli import main

if __name__ == "__main__":
    sys.exit(main(start=_T0))
