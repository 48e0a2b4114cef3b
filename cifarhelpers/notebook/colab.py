"""Google Colab: the notebooks' "Open in Colab" badge and Colab cell, generated from one setting, Google
Drive, and where a notebook running on Colab keeps its outputs.

One setting: the ``Repository`` URL in pyproject.toml's ``[project.urls]`` (a fork sets its own there).
:func:`badge_markdown` and :func:`colab_cell_source` derive the badge line of each notebook's first cell and
the source of its Colab cell from it; ``python -m cifarhelpers.cli.colab`` rewrites them in every notebook
(``--check`` only reports notebooks that differ, exit status 1), and a test checks the committed ones.
Nothing here can check that the URL exists: offline, only that it has GitHub's form.

The Colab cell (it does nothing elsewhere) installs ``cifarhelpers[colab]`` from the repository with
``%pip``, so a failed install shows pip's own message, then mounts Google Drive (:func:`mount_drive`). Colab's
torch stays: the package asks for a range (``torch>=2.6``) that Colab's torch meets, so pip leaves it. The
``colab`` extra is papermill alone, not the ``notebooks`` extra: that one's ``jupyter`` and
``ipykernel>=6.29`` are for a local Jupyter and would upgrade or add Jupyter packages beside the
kernel and server Colab runs and pins, which then need a runtime restart and can break them.

Outputs on Colab (:func:`colab_output_dir`): each Colab notebook runs in its own VM, whose disk is its own
and is wiped when the runtime is recycled. A relative ``output_dir`` is therefore placed in Google Drive
(``MyDrive/cifarhelpers/...``) when Drive is mounted: every notebook's VM sees the same folder, so the
notebooks hand their files to each other as they do locally. Without Drive it goes under
``/content/cifarhelpers/...`` on this VM only, with a note saying so; a notebook that then misses an
earlier one's file names the notebook and cell that write it (:mod:`cifarhelpers.notebook.handoffs`).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = REPO_ROOT / "pyproject.toml"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
COLAB_EXTRA = "colab"
BRANCH = "main"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: Colab's working folder (a test's stand-in Colab points it elsewhere). Google Drive is mounted at
#: ``<content>/drive``; the notebooks' files go to ``<content>/drive/MyDrive/cifarhelpers`` on Drive, else
#: to ``<content>/cifarhelpers`` on the VM (see :func:`colab_folders`).
COLAB_CONTENT = Path("/content")
DRIVE_SUBFOLDER = "cifarhelpers"


def on_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is loaded)."""
    return "google.colab" in sys.modules


def colab_folders() -> tuple[Path, Path, Path]:
    """``(mount point, Drive folder, VM folder)`` on Colab: where :func:`mount_drive` mounts Google Drive
    (``/content/drive``), the folder the notebooks' files go to there (``/content/drive/MyDrive/cifarhelpers``)
    and the one they go to without Drive (``/content/cifarhelpers``, deleted with the VM)."""
    mount = COLAB_CONTENT / "drive"
    return mount, mount / "MyDrive" / DRIVE_SUBFOLDER, COLAB_CONTENT / DRIVE_SUBFOLDER


def drive_mounted() -> bool:
    """Whether Google Drive is mounted where :func:`mount_drive` mounts it (its ``MyDrive`` folder exists)."""
    return (colab_folders()[0] / "MyDrive").is_dir()


def mount_drive() -> Path | None:
    """On Colab, mount Google Drive (``google.colab.drive.mount``; Colab asks for permission) so that the
    notebooks, each in its own VM, share their output folder; a line says where their files go.

    Returns:
        The folder the notebooks' files go to on Drive; None off Colab (nothing is done) or when the mount
        fails or is declined: then a line says that this notebook's files stay on this VM, and how to mount.
    """
    if not on_colab():
        return None
    from google.colab import drive

    mount, folder, local = colab_folders()
    try:
        drive.mount(str(mount))
    except Exception as err:  # declined, timed out, no Drive: Colab raises several kinds; the notebook goes on
        print(f"Google Drive not mounted ({type(err).__name__}: {err}). This notebook's files go to {local} on this "
              "VM only: the other notebooks (each in its own VM) cannot read them. Run this cell again to mount Drive.")
        return None
    print(f"Google Drive mounted: the notebooks hand their files to each other in {folder}")
    return folder


def repository_url(pyproject: str | os.PathLike | None = None) -> str:
    """The ``Repository`` URL of ``[project.urls]`` (no trailing slash): read from pyproject.toml
    in a source checkout, else from the installed package's metadata.

    Raises:
        ValueError: no ``Repository`` URL, or one that is not ``https://github.com/<owner>/<name>``
            (Colab opens notebooks from GitHub only).
    """
    path = Path(pyproject) if pyproject is not None else PYPROJECT
    try:
        import tomllib
    except ImportError:  # Python 3.10: no TOML reader in the standard library; use the metadata
        tomllib = None
    if path.is_file() and tomllib is not None:
        url = tomllib.loads(path.read_text()).get("project", {}).get("urls", {}).get("Repository")
    else:
        from importlib.metadata import metadata

        urls = dict(entry.split(", ", 1) for entry in (metadata("cifarhelpers").get_all("Project-URL") or []))
        url = urls.get("Repository")
    if not url or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+/?", url):
        raise ValueError(f"[project.urls] Repository = {url!r} in {path}: it must be https://github.com/<owner>/<name>")
    return url.rstrip("/")


def colab_url(notebook: str, url: str | None = None) -> str:
    """The Colab address that opens ``notebooks/<notebook>`` of the repository's main branch."""
    repo = (url or repository_url()).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{notebook}"


def badge_markdown(notebook: str, url: str | None = None) -> str:
    """The "Open in Colab" badge line of a notebook's first cell, e.g. for ``"01_dataset_statistics.ipynb"``."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, url)})"


def install_spec(url: str | None = None) -> str:
    """What the Colab cell gives ``%pip install``: ``cifarhelpers[colab] @ git+<Repository URL>``."""
    return f"cifarhelpers[{COLAB_EXTRA}] @ git+{url or repository_url()}"


def colab_cell_source(url: str | None = None) -> str:
    """The source of every notebook's Colab cell (tagged ``nbval-skip`` and ``colab``): on Colab only, install
    cifarhelpers with ``%pip`` unless it is installed, then :func:`mount_drive`."""
    spec = install_spec(url)
    return "\n".join([
        "# NBVAL_SKIP",
        "# Colab only (does nothing elsewhere; locally: pip install -e \".[notebooks]\").",
        "# 1. Installs cifarhelpers from GitHub; pip's own messages show if it fails. Colab's torch,",
        "#    Jupyter and kernel stay: cifarhelpers asks for a range of torch versions that Colab's meets,",
        "#    and the `colab` extra is papermill alone.",
        "# 2. Mounts Google Drive (Colab asks for permission). Each notebook runs in its own Colab VM: on",
        "#    Drive they share one folder and read each other's files. Declined, its files stay on this VM.",
        "# Generated by `python -m cifarhelpers.cli.colab` from pyproject.toml's [project.urls]: a fork sets",
        "# its own Repository URL there and runs that command.",
        "import importlib.util",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        '    if importlib.util.find_spec("cifarhelpers") is None:',
        f'        %pip install "{spec}"',
        "    from cifarhelpers.notebook import mount_drive",
        "",
        "    mount_drive()",
    ])


def colab_output_dir(output_dir: str | os.PathLike) -> tuple[Path, str | None]:
    """Where a notebook on Colab writes when given ``output_dir``, and a note for the reader (or None).

    An absolute ``output_dir`` is kept. A relative one (the notebooks' default ``../runs/notebooks``)
    is read as if the notebook sat in the repository's ``notebooks/`` folder inside the Drive folder
    of :func:`colab_folders` when Google Drive is mounted (so it lands in ``MyDrive/cifarhelpers/runs/
    notebooks``, shared by every notebook's VM and kept after it), else inside the VM folder, which
    only this VM sees and its end deletes: the note then says so and how to mount Drive.
    """
    path = Path(output_dir).expanduser()
    if path.is_absolute():
        return path, None
    _, drive, local = colab_folders()
    mounted = drive_mounted()
    target = Path(os.path.normpath((drive if mounted else local) / "notebooks" / path))
    if mounted:
        return target, f"Colab: outputs go to Google Drive, {target}, where the other notebooks read them"
    return target, (f"Colab without Google Drive: outputs go to {target}, on this VM only. The other notebooks, "
                    "each in its own VM, cannot read them, and they are deleted with the VM. To share and keep "
                    "them, run the first code cell again (it mounts Drive), then this one; or set output_dir to "
                    "an absolute path.")


def sync_notebooks(notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR, *, check: bool = False) -> list[str]:
    """Make every notebook's badge line and Colab cell (install and Drive) those generated here.

    Only the line holding ``colab-badge.svg`` in the first (markdown) cell and the source of the
    first code cell tagged ``colab`` change; everything else (outputs included) is kept.

    Args:
        notebooks_dir: the folder of ``.ipynb`` files.
        check: only report, write nothing.

    Returns:
        The names of the notebooks that differed (and, unless ``check``, were rewritten).

    Raises:
        ValueError: a notebook without a badge line or without a code cell tagged ``colab``.
    """
    import nbformat

    url = repository_url()
    install = colab_cell_source(url)
    changed = []
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        lines = first.source.split("\n")
        at = [i for i, line in enumerate(lines) if "colab-badge.svg" in line]
        cell = next((c for c in nb.cells if c.cell_type == "code" and "colab" in c.metadata.get("tags", [])), None)
        if first.cell_type != "markdown" or not at or cell is None:
            raise ValueError(f"{path.name}: needs a badge line (colab-badge.svg) in its first markdown cell and a code "
                             "cell tagged 'colab'")
        lines[at[0]] = badge_markdown(path.name, url)
        source = "\n".join(lines)
        if source != first.source or cell.source != install:
            changed.append(path.name)
            if not check:
                first.source, cell.source = source, install
                nbformat.write(nb, path)
    return changed
