"""Installing beside an existing torch keeps that torch (Colab's, conda's, a cluster module's):
pyproject declares ranges, and pip keeps installed releases that satisfy them.

The check builds a fresh virtualenv holding another torch 2.x with its matching torchvision (the
CPU build of torch 2.13.0 and torchvision 0.28.0 that this project's machines keep on disk; skipped
where they are absent) and asks pip, without installing, what ``pip install -e '.[notebooks]'``
would install: neither torch nor torchvision may be among it. pip decides that from the installed
distributions' metadata alone, so the two are installed as far as pip reads them: their wheels' own
``.dist-info`` METADATA, WHEEL and entry points, and an INSTALLER file (no RECORD, no licenses, none of the
700 MB of files, which no resolution reads). (Where torch is installed without
torchvision, pip takes the newest torchvision, which pins the newest torch: install the torchvision
that pairs with your torch first; docs/install.md says so.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OTHER_TORCH = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
OTHER_VISION = Path("/opt/pypi-more/files/torchvision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (OTHER_TORCH.is_file() and OTHER_VISION.is_file()) or sys.version_info[:2] != (3, 11),
                       reason="needs the torch 2.13.0 / torchvision 0.28.0 wheels on disk (this project's machines)"),
]


def install_metadata_only(wheel: Path, site: Path) -> None:
    """Install a wheel as far as pip's resolver can tell: its ``.dist-info`` folder (METADATA with its
    Requires-Dist, WHEEL, entry points), marked installed by pip, without the package's files."""
    with zipfile.ZipFile(wheel) as archive:
        infos = [n for n in archive.namelist()
                 if n.count("/") == 1 and n.split("/")[0].endswith(".dist-info") and not n.endswith("/RECORD")]
        archive.extractall(site, infos)
    (site / infos[0].split("/")[0] / "INSTALLER").write_text("pip\n")


def test_pip_install_beside_another_torch_keeps_that_torch(tmp_path):
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env)
    python = str(env / "bin" / "python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for wheel in (OTHER_TORCH, OTHER_VISION):
        install_metadata_only(wheel, site)
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    listed = subprocess.run([*pip, "list", "--format", "json"], check=True, capture_output=True, text=True).stdout
    assert {"torch": "2.13.0+cpu", "torchvision": "0.28.0"}.items() <= {
        p["name"]: p["version"] for p in json.loads(listed)}.items(), "pip sees both as installed"
    report = tmp_path / "report.json"
    done = subprocess.run([*pip, "install", "--dry-run", "--quiet", "--report", str(report), "-e",
                           f"{ROOT}[notebooks]"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    wanted = {item["metadata"]["name"].lower(): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
    assert "cifarhelpers" in wanted and "albumentations" in wanted, "the dry run resolved the package"
    assert "torch" not in wanted and "torchvision" not in wanted, f"pip would replace torch: {wanted}"
    assert not any(name.startswith("nvidia-") for name in wanted), "no CUDA libraries either"
