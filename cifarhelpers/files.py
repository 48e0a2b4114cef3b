"""Files written so that nothing earlier is lost, and read with errors that say what to do.

Every file is written atomically (:func:`atomic_write`): to a temp file in the same folder, flushed
and fsynced, then renamed over the target. A crash or a full disk leaves the previous version
intact, never a half-written file. :func:`write_json` and :func:`save_figure` write through it;
:func:`read_json` names the missing or malformed file; :func:`ensure_writable_dir` checks an
output folder before any work.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from cifarhelpers.errors import ConfigError, RunWriteError

#: Suffix of atomic_write's temp files (``.<name>.<random>.tmp``).
TEMP_SUFFIX = ".tmp"


def ensure_writable_dir(path: str | os.PathLike, what: str = "output_dir") -> Path:
    """Create ``path`` if needed and check a file can be written in it (then remove the probe).

    Raises:
        ConfigError: ``path`` is a file, cannot be created, or is not writable.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what}={str(path)!r} is a file, not a folder: choose a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise ConfigError(f"{what}={str(path)!r} is not writable ({err.strerror or err}): choose a folder you can write to") from err
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` through ``write(file)`` atomically (temp file, fsync, rename, fsync folder).

    The bytes go to a temp file ``.<name>.<random>.tmp`` in the same folder, which is flushed,
    fsynced and then renamed over ``path`` (``os.replace``, atomic on POSIX and Windows), and the
    folder is fsynced so the rename survives a power cut. A reader therefore sees either the old
    file or the new one, never a mix. A process killed mid-write leaves at most the temp file
    (see :func:`remove_temp_files`).

    Args:
        path: the file to (re)write; its folder must exist.
        write: called once with the open binary temp file; writes the whole content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        RunWriteError: the write failed (disk full, read-only folder, quota...: an OSError, or
            an error raised while handling one); any earlier version of ``path`` is untouched and
            the temp file is removed.
        Any other exception ``write`` raises (e.g. an object torch cannot save) propagates
        unchanged, after the temp file is removed and with ``path`` untouched.
    """
    path = Path(path)
    tmp: Path | None = None
    handling = sys.exc_info()[1]  # an error the caller is handling now: not one this write caused
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                         delete=False) as f:
            tmp = Path(f.name)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except Exception as err:
        cause = _os_error_in(err, handling)
        if cause is None:
            raise
        earlier = " The earlier version of the file is intact." if path.exists() else ""
        raise RunWriteError(f"could not write {path}: {cause.strerror or cause}.{earlier} Free some disk space or "
                            "choose another output_dir (a folder you can write to), then run again.") from err
    finally:
        if tmp is not None:  # failed or interrupted (KeyboardInterrupt included): drop the partial file
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return path


def _os_error_in(err: BaseException, handling: BaseException | None = None) -> OSError | None:
    """``err`` if it is an OSError, else the first OSError it was raised from or while handling, up to (not
    including) ``handling``, the error the caller was already handling when the write began.

    Writers may hide the OSError of a full disk: ``torch.save`` raises a RuntimeError from its
    zip writer's clean-up, with the OSError as its context.
    """
    seen = set()
    while err is not None and err is not handling and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def remove_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files an interrupted :func:`atomic_write` left in ``folder`` (``.*.tmp``).

    Only a process killed between creating and renaming its temp file (SIGKILL, power cut) leaves
    one; the file it was replacing is intact. Call this before writing into a folder again, e.g.
    when resuming a run. Returns the paths removed.
    """
    removed = []
    for candidate in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        if candidate.is_file():
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every OS or file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_ready(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON (NaN/inf become null), atomically."""
    text = json.dumps(_json_ready(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, with a clear error when it is missing or malformed.

    Raises:
        ConfigError: the file is missing or not valid JSON (the message names the path).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist: run the step that writes it first, or fix the path")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what} {str(path)!r} is not valid JSON ({err}): write it again") from err


def display_path(path: str | os.PathLike, start: str | os.PathLike | None = None) -> str:
    """``path`` as messages and notebook outputs show it, without the machine's folder layout where
    possible: relative to ``start`` (default: the current folder) when it lies inside ``start`` or
    its parent (e.g. ``../runs/notebooks`` seen from ``notebooks/``), else with the home folder
    written ``~``, else absolute. Symbolic links are not resolved."""
    target = Path(os.path.abspath(os.fspath(path)))
    base = Path(os.path.abspath(os.fspath(start) if start is not None else os.getcwd()))
    for root, prefix in ((base, ""), (base.parent, "..")):
        if target == root or root in target.parents:
            relative = target.relative_to(root).as_posix()
            return "/".join(p for p in (prefix, relative) if p and p != ".") or "."
    home = Path(os.path.expanduser("~"))
    if home != Path("/") and home in target.parents:
        return "~/" + target.relative_to(home).as_posix()
    return target.as_posix()


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib Figure as PNG, atomically."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))


def show_figure(fig: Figure, path: str | Path, dpi: int = 120) -> None:
    """Save ``fig`` as PNG at ``path`` (atomically, via :func:`cifarhelpers.files.save_figure`) and
    show that PNG inline in a notebook (``IPython.display``; nothing is shown outside IPython).

    Returns None, so a notebook cell ending with it shows the figure and nothing else.

    Raises:
        RunWriteError: the file could not be written.
    """
    path = save_figure(fig, Path(path), dpi=dpi)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python without IPython: saving is all there is to do
        return
    if get_ipython() is not None:
        display(Image(data=path.read_bytes(), format="png"))
