"""CIFAR-10 on disk -> uint8 arrays in memory, plus the statistics the transforms are built from.

Two layouts are read:

* torchvision's (``<root>/cifar-10-batches-py/``), checked file by file against torchvision's MD5
  sums and downloadable with ``download=True``;
* an image folder (``<root>/train/<class>/*`` and ``<root>/test/<class>/*``), such as the JPEG copy
  ``cifar10-jpeg.tar.gz`` unpacked. As in torchvision's ``ImageFolder``, only files with an image
  extension (``torchvision.datasets.folder.IMG_EXTENSIONS``, any case) are read, and hidden files
  (``.DS_Store``, macOS's ``._*``) are skipped, so a ``Thumbs.db`` or ``desktop.ini`` left by Windows
  does no harm. Decoding 60,000 files takes a while, so
  the arrays are cached once in an ``.npz`` beside the data (keyed by a hash of the file list,
  sizes and modification times) that later runs load in about a second.

Example::

    from cifarhelpers.data import dataset_statistics, load_cifar10
    data = load_cifar10("data/cifar10-jpeg")          # or set CIFAR10_ROOT
    data.x_train.shape, data.x_train.dtype             # (50000, 32, 32, 3), uint8
    dataset_statistics(data.x_train).mean              # per channel, on the [0, 1] scale

Source of the data set: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cifarhelpers.errors import DataError, DataNotFoundError

from .decode_cache import CACHE_PREFIX, cache_dirs, listing_key, read_cache, write_cache

#: Class names in torchvision's order: label ``i`` is ``CLASSES[i]``.
CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
IMAGE_SHAPE = (32, 32, 3)  # height, width, RGB channels
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
ROOT_ENV = "CIFAR10_ROOT"
DEFAULT_ROOT = "./data"
_TORCHVISION_DIR = "cifar-10-batches-py"


@dataclass(frozen=True)
class DataSource:
    """Where a loaded copy came from.

    Attributes:
        layout: ``"torchvision"`` or ``"image-folder"``.
        root: the folder read, absolute.
        sha256: hex SHA-256 of the decoded arrays (x_train, y_train, x_test, y_test as little-endian
            bytes, in that order): equal for two copies exactly when their pixels and labels are.
    """

    layout: str
    root: str
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class CIFAR10Data:
    """CIFAR-10 in memory.

    Attributes:
        x_train: (50000, 32, 32, 3) uint8 RGB images, HWC.
        y_train: (50000,) int64 labels in [0, 9].
        x_test: (10000, 32, 32, 3) uint8.
        y_test: (10000,) int64.
        classes: the 10 class names; label ``i`` is ``classes[i]`` (torchvision's order).
        source: layout, root and content hash of the copy.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: DataSource


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def resolve_root(root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data root and where it came from: the argument, else ``$CIFAR10_ROOT``, else ``./data``.

    Returns:
        ``(path, origin)`` with origin one of ``"argument"``, ``"CIFAR10_ROOT"``, ``"default"``.
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser(), "argument"
    env = os.environ.get(ROOT_ENV, "")
    if env:
        return Path(env).expanduser(), ROOT_ENV
    return Path(DEFAULT_ROOT), "default"


def load_cifar10(
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    cache: bool = True,
    progress: bool = True,
) -> CIFAR10Data:
    """Load CIFAR-10 as uint8 arrays from either supported layout (see the module docstring).

    Args:
        root: folder holding ``cifar-10-batches-py/`` or ``train/`` and ``test/``; ``None`` means
            ``$CIFAR10_ROOT``, else ``./data``. A path to ``cifar-10-batches-py`` itself also works.
        download: when no copy is found, download torchvision's into ``root`` (needs internet).
        cache: for the image-folder layout, read and write the decoded ``.npz`` cache.
        progress: show a tqdm progress bar while decoding image files.

    Returns:
        A :class:`CIFAR10Data` (train 50,000 and test 10,000 images for a complete copy).

    Raises:
        DataNotFoundError: the root does not exist or holds neither layout (and download is off).
        DataError: a class folder is missing, empty or unexpected; an image cannot be decoded or
            is not 32x32 RGB; a torchvision batch file fails its MD5 check; the download failed.
    """
    root, origin = resolve_root(root)
    layout, base = _find_layout(root, origin, download=download)
    if layout == "torchvision":
        return _load_torchvision(base)
    return _load_image_folder(base, cache=cache, progress=progress)


# --------------------------------------------------------------------------------------------
# Layout detection
# --------------------------------------------------------------------------------------------

_LAYOUT_HELP = (
    "A CIFAR-10 root holds either torchvision's 'cifar-10-batches-py/' folder or an image-folder "
    "copy with 'train/<class>/' and 'test/<class>/' for the 10 classes. Pass root=..., set "
    f"{ROOT_ENV}, or use download=True (cifar-train --download) to fetch torchvision's copy."
)


def _find_layout(root: Path, origin: str, *, download: bool) -> tuple[str, Path]:
    where = {"argument": "given as root", ROOT_ENV: f"from ${ROOT_ENV}", "default": "the default"}[origin]
    if root.is_file():
        hint = ""
        if root.name.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
            hint = f" It looks like an archive: unpack it (tar -xzf {root} -C <dir>) and point at the folder inside."
        raise DataNotFoundError(f"CIFAR-10 root {root} ({where}) is a file, not a folder.{hint} {_LAYOUT_HELP}")
    if root.name == _TORCHVISION_DIR and root.is_dir():
        return "torchvision", root
    if (root / _TORCHVISION_DIR).is_dir():
        return "torchvision", root / _TORCHVISION_DIR
    if (root / "train").is_dir() or (root / "test").is_dir():
        for split in SPLIT_SIZES:
            if not (root / split).is_dir():
                raise DataError(f"image-folder copy at {root} has no '{split}/' folder. {_LAYOUT_HELP}")
        return "image-folder", root
    if download:
        return "torchvision", _download(root)
    if not root.exists():
        raise DataNotFoundError(f"CIFAR-10 root {root} ({where}) does not exist. {_LAYOUT_HELP}")
    hint = ""
    candidates = [p for p in sorted(root.iterdir()) if p.is_dir() and (
        (p / "train").is_dir() or (p / _TORCHVISION_DIR).is_dir() or p.name == _TORCHVISION_DIR)]
    if candidates:
        hint = f" Did you mean {candidates[0]}?"
    raise DataNotFoundError(f"no CIFAR-10 copy found in {root} ({where}).{hint} {_LAYOUT_HELP}")


def _download(root: Path) -> Path:
    from torchvision.datasets import CIFAR10

    try:
        root.mkdir(parents=True, exist_ok=True)
        CIFAR10(str(root), train=True, download=True)
    except Exception as err:  # urllib, ssl, socket and torchvision errors all land here
        raise DataError(
            f"downloading CIFAR-10 into {root} failed: {type(err).__name__}: {err}. Without internet, "
            f"point root= or ${ROOT_ENV} at an existing copy (torchvision's or an image folder)."
        ) from err
    return root / _TORCHVISION_DIR


# --------------------------------------------------------------------------------------------
# torchvision layout
# --------------------------------------------------------------------------------------------


def _load_torchvision(base: Path) -> CIFAR10Data:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    for name, md5 in CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]:
        path = base / name
        if not path.is_file():
            raise DataError(
                f"torchvision CIFAR-10 copy at {base} is missing {name}. Re-download it: delete {base} "
                "and run with download=True (cifar-train --download)."
            )
        if not check_integrity(str(path), md5):
            raise DataError(
                f"{path} fails torchvision's MD5 check (expected {md5}): the file is corrupt or was "
                f"modified. Delete {base} and download again with download=True (cifar-train --download)."
            )
    # The batches passed their checksums, so torchvision's unpickling reads known-good files.
    train = CIFAR10(str(base.parent), train=True, download=False)
    test = CIFAR10(str(base.parent), train=False, download=False)
    arrays = (
        np.ascontiguousarray(train.data, dtype=np.uint8), np.asarray(train.targets, dtype=np.int64),
        np.ascontiguousarray(test.data, dtype=np.uint8), np.asarray(test.targets, dtype=np.int64),
    )
    if tuple(train.classes) != CLASSES:
        raise DataError(f"{base}/batches.meta lists classes {train.classes}, expected CIFAR-10's {list(CLASSES)}")
    return _make_data(arrays, DataSource("torchvision", str(base.resolve()), _content_sha256(arrays)))


# --------------------------------------------------------------------------------------------
# Image-folder layout
# --------------------------------------------------------------------------------------------


def _list_image_folder(root: Path) -> dict[str, list[tuple[Path, int]]]:
    """Image files per split as (path, label), class by class, files in numeric order of their stem.

    Kept: files with one of torchvision's image extensions (``IMG_EXTENSIONS``, the rule of its
    ``ImageFolder``) whose name does not start with ``.``; everything else (``Thumbs.db``,
    ``.DS_Store``, ``._0001.jpg``) is skipped. The decode cache's key hashes this list.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    listing: dict[str, list[tuple[Path, int]]] = {}
    for split in SPLIT_SIZES:
        split_dir = root / split
        found = {p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
        unexpected = sorted(found - set(CLASSES))
        if unexpected:
            raise DataError(
                f"{split_dir} has folders that are not CIFAR-10 classes: {unexpected}. Expected exactly "
                f"{list(CLASSES)}; move the extra folders out of {split_dir}."
            )
        entries: list[tuple[Path, int]] = []
        for label, cls in enumerate(CLASSES):
            cls_dir = split_dir / cls
            if not cls_dir.is_dir():
                raise DataError(
                    f"class folder {cls_dir} is missing: an image-folder copy needs {split}/<class>/ for all "
                    f"10 classes {list(CLASSES)}. Restore it from the original archive."
                )
            present = [p for p in cls_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
            files = [p for p in present if has_file_allowed_extension(p.name, IMG_EXTENSIONS)]
            if not files:
                what = "is empty" if not present else (
                    f"has no image files (only {sorted(p.name for p in present)[:3]}; images need one of the "
                    f"extensions {list(IMG_EXTENSIONS)})")
                raise DataError(f"class folder {cls_dir} {what}: restore its images from the original archive.")
            files.sort(key=lambda p: (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name))
            entries.extend((p, label) for p in files)
        listing[split] = entries
    return listing


def _load_image_folder(root: Path, *, cache: bool, progress: bool) -> CIFAR10Data:
    listing = _list_image_folder(root)
    key = listing_key(root, listing)
    cache_name = f"{CACHE_PREFIX}{key[:16]}.npz"
    if cache:
        for folder in cache_dirs(root):
            cached = read_cache(folder / cache_name, key)
            if cached is not None:
                arrays, sha = cached
                return _make_data(arrays, DataSource("image-folder", str(root.resolve()), sha))

    arrays = (
        *_decode_split(listing["train"], "train", progress),
        *_decode_split(listing["test"], "test", progress),
    )
    sha = _content_sha256(arrays)
    if cache:
        for folder in cache_dirs(root):
            if write_cache(folder, cache_name, key, arrays, sha):
                break
    return _make_data(arrays, DataSource("image-folder", str(root.resolve()), sha))


def _decode_split(entries: list[tuple[Path, int]], split: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    images = np.empty((len(entries), *IMAGE_SHAPE), dtype=np.uint8)
    labels = np.empty(len(entries), dtype=np.int64)
    for i, (path, label) in enumerate(
        tqdm(entries, desc=f"decoding {split} images (once; cached afterwards)", unit="img",
             disable=not progress, mininterval=1.0)
    ):
        try:
            with Image.open(path) as im:
                im.load()
                mode, size = im.mode, im.size
                if mode == "RGB" and size == IMAGE_SHAPE[:2]:
                    images[i] = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise DataError(
                f"cannot decode image {path}: {err}. Replace it with a valid 32x32 RGB image or restore "
                "the copy from its archive."
            ) from err
        if mode != "RGB" or size != IMAGE_SHAPE[:2]:
            raise DataError(
                f"image {path} is {size[0]}x{size[1]} {mode}, expected 32x32 RGB: CIFAR-10 images are "
                "32x32 RGB. Replace the file or restore the copy from its archive."
            )
        labels[i] = label
    return images, labels


# --------------------------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------------------------


def _content_sha256(arrays: tuple[np.ndarray, ...]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()


def _make_data(arrays: tuple[np.ndarray, ...], source: DataSource) -> CIFAR10Data:
    x_train, y_train, x_test, y_test = arrays
    return CIFAR10Data(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                       classes=CLASSES, source=source)
