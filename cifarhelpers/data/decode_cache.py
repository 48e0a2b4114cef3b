"""The decode cache of image-folder copies: the decoded arrays in one ``.npz``, written once.

Decoding 60,000 JPEG files takes a while (about 10 s here), so :mod:`cifarhelpers.data.cifar10` stores the
arrays as ``.cifarhelpers-cache-<key>.npz`` beside the data (or in ``$CIFARHELPERS_CACHE_DIR``, else
``~/.cache/cifarhelpers``, when that folder is read-only). The key hashes the list of image files
that data.py reads (files it skips, such as ``Thumbs.db`` or ``.DS_Store``, are not in it), their
sizes and modification times, so a changed, added or removed image is decoded again while a
skipped file leaves the cache valid; the cache is written atomically and an unreadable one is
ignored with a warning.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

CACHE_ENV = "CIFARHELPERS_CACHE_DIR"  # where caches go when the data folder is read-only
_CACHE_FORMAT = "cifarhelpers-cache-v1"
CACHE_PREFIX = ".cifarhelpers-cache-"


def listing_key(root: Path, listing: dict[str, list[tuple[Path, int]]]) -> str:
    """Hex SHA-256 of the cache format and, per file of ``listing`` (split -> [(path, label)], the
    image files data.py reads), its split, label, path relative to ``root``, size and modification time."""
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    for split, entries in listing.items():
        for path, label in entries:
            st = path.stat()
            digest.update(f"{split}\t{label}\t{path.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_dirs(root: Path) -> list[Path]:
    """Where a cache is looked for and written, in order: ``$CIFARHELPERS_CACHE_DIR`` (if set),
    the data folder ``root``, ``~/.cache/cifarhelpers``."""
    dirs = [root]
    if os.environ.get(CACHE_ENV):
        dirs.insert(0, Path(os.environ[CACHE_ENV]).expanduser())
    dirs.append(Path.home() / ".cache" / "cifarhelpers")
    return dirs


def read_cache(path: Path, key: str) -> tuple[tuple[np.ndarray, ...], str] | None:
    """``((x_train, y_train, x_test, y_test), sha256)`` from the cache at ``path`` if it exists and
    was written for ``key``; None otherwise (an unreadable file only warns)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            arrays = (npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"])
            sha = str(npz["sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        warnings.warn(f"ignoring unreadable cache {path} ({err}); decoding the images again", stacklevel=3)
        return None
    return arrays, sha


def write_cache(folder: Path, name: str, key: str, arrays: tuple[np.ndarray, ...], sha: str) -> bool:
    """Write the cache atomically (temp file in the same folder, fsync, rename). False if not writable."""
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-cifarhelpers-", suffix=".npz", delete=False) as f:
            tmp = Path(f.name)
            x_train, y_train, x_test, y_test = arrays
            np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                     key=np.array(key), sha256=np.array(sha))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # NamedTemporaryFile creates 0600; a cache is readable like any data file
        os.replace(tmp, folder / name)
        return True
    except OSError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return False
