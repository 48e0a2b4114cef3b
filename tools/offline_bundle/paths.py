"""Where the bundle's inputs are found by default: the repository, the shared data, the wheel cache, run.sh."""

from __future__ import annotations

from pathlib import Path

#: The repository root (tools/offline_bundle/paths.py -> two folders up).
ROOT = Path(__file__).resolve().parents[2]
#: The shared CIFAR-10 archive beside the clone (``../shared/data``); ``--data`` replaces it.
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
#: Downloaded and built wheels, a subfolder per target tag (ignored by git); ``--cache`` replaces it.
DEFAULT_CACHE = ROOT / ".cache" / "bundle-wheels"
#: The runner copied verbatim into every bundle (no placeholders); its own file so that shellcheck
#: can read it (tests/test_bundle.py).
RUN_SH_TEMPLATE = Path(__file__).resolve().parent / "template" / "run.sh"
