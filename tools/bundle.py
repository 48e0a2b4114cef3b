"""Build an offline bundle of cifarhelpers for a GPU node: the command (``make bundle``).

    .venv/bin/python tools/bundle.py --target gpu-node      # -> dist/bundle-gpu-node/
    .venv/bin/python tools/bundle.py --help

The code is the package ``tools/offline_bundle/`` (its docstring tells what a bundle holds and how it is
resolved); run.sh is ``tools/offline_bundle/template/run.sh``. Python puts this script's folder, tools/,
first on ``sys.path``, so the package imports as ``offline_bundle``.
"""

import sys

from offline_bundle.cli import main

if __name__ == "__main__":
    sys.exit(main())
