"""A stand-in for Google Colab, to run the notebooks as Colab runs them, each in its own VM.

:func:`write_stand_in` writes, into a folder:

* ``google/colab/`` (a namespace portion beside protobuf's ``google``): a ``drive`` module whose
  ``mount(mountpoint)`` links ``mountpoint`` to ``$STAND_IN_DRIVE`` (the one Google Drive every VM
  shares, holding ``MyDrive/``) and prints "Mounted at ..." as Colab does; without ``$STAND_IN_DRIVE``
  it raises, as Colab does when the user declines;
* an IPython profile whose startup file does what a Colab kernel has done before the first cell: it
  imports ``google.colab`` (so ``"google.colab" in sys.modules``), and points
  ``cifarhelpers.notebook.colab.COLAB_CONTENT`` (Colab's ``/content``) at ``$STAND_IN_COLAB_CONTENT``, this VM's folder.

A kernel started with ``IPYTHONDIR`` set to that folder (see :func:`colab_env`) is then a Colab VM.
"""

from __future__ import annotations

from pathlib import Path

DRIVE_MODULE = '''"""Stand-in for google.colab.drive."""
import os
from pathlib import Path


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    drive = os.environ.get("STAND_IN_DRIVE")
    if not drive:
        raise ValueError("mount failed: the user declined access to Google Drive (stand-in)")
    mountpoint, content = Path(mountpoint), Path(os.environ["STAND_IN_COLAB_CONTENT"])
    if mountpoint.parent != content:
        raise ValueError(f"the stand-in mounts Drive in this VM's folder {content} only, not at {mountpoint}")
    (Path(drive) / "MyDrive").mkdir(parents=True, exist_ok=True)
    if not mountpoint.exists():
        mountpoint.symlink_to(drive, target_is_directory=True)
    print(f"Mounted at {mountpoint}")
'''

STARTUP = '''# A Colab kernel has google.colab loaded before the first cell; /content is this VM's folder.
import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, {packages!r})
import google.colab.drive  # noqa: E402,F401
import cifarhelpers.notebook.colab as _colab  # noqa: E402
import os as _os  # noqa: E402

_colab.COLAB_CONTENT = _Path(_os.environ["STAND_IN_COLAB_CONTENT"])
del _sys, _Path, _colab, _os
'''


def write_stand_in(folder: Path) -> Path:
    """Write the stand-in into ``folder``; returns the IPython folder to set as ``IPYTHONDIR``."""
    packages = folder / "packages"
    (packages / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (packages / "google" / "colab" / "__init__.py").write_text('"""Stand-in for google.colab."""\n')
    (packages / "google" / "colab" / "drive.py").write_text(DRIVE_MODULE)
    startup = folder / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-colab.py").write_text(STARTUP.format(packages=str(packages)))
    return folder / "ipython"


def colab_env(ipython_dir: Path, content: Path, drive: Path | None) -> dict[str, str]:
    """The environment variables that make the next kernel a Colab VM with ``content`` as its
    ``/content``, sharing ``drive`` as Google Drive (None: the user declines to mount it)."""
    content.mkdir(parents=True, exist_ok=True)
    env = {"IPYTHONDIR": str(ipython_dir), "STAND_IN_COLAB_CONTENT": str(content)}
    env["STAND_IN_DRIVE"] = str(drive) if drive is not None else ""
    return env


def apply_env(monkeypatch, env: dict[str, str]) -> None:
    """Set ``env`` with ``monkeypatch`` (an empty value unsets the variable)."""
    for key, value in env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)


__all__ = ["apply_env", "colab_env", "write_stand_in"]
