"""cifarhelpers.data.cifar10: layouts, cache, statistics, subsets and the errors on bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _synthetic import write_image_folder
from PIL import Image

from cifarhelpers.data import CLASSES, class_counts, dataset_statistics, load_cifar10, resolve_root, stratified_subset
from cifarhelpers.errors import ConfigError, DataError, DataNotFoundError

# The figures quoted for the original CIFAR-10 train set (e.g. in the seeds' notebooks).
ORIGINAL_TRAIN_MEAN = (0.4914, 0.4822, 0.4465)
ORIGINAL_TRAIN_STD = (0.2470, 0.2435, 0.2616)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# -- the real copy --------------------------------------------------------------------------

@pytest.mark.data
def test_real_copy_has_all_60000_images_balanced(cifar):
    assert cifar.x_train.shape == (50_000, 32, 32, 3) and cifar.x_train.dtype == np.uint8
    assert cifar.x_test.shape == (10_000, 32, 32, 3) and cifar.x_test.dtype == np.uint8
    assert cifar.y_train.dtype == np.int64 and cifar.y_test.dtype == np.int64
    assert class_counts(cifar.y_train) == [5000] * 10
    assert class_counts(cifar.y_test) == [1000] * 10
    assert cifar.classes == CLASSES == (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert cifar.source.layout == "image-folder" and len(cifar.source.sha256) == 64


@pytest.mark.data
def test_real_copy_statistics_close_to_the_published_figures(cifar, cifar_stats):
    # The JPEG copy is lossy (README of the copy: mean abs. difference ~5.8/255), which smooths
    # pixels: means match to 0.002, stds are a little lower (0.002 measured) than the original's.
    assert np.allclose(cifar_stats.mean, ORIGINAL_TRAIN_MEAN, atol=0.002)
    assert np.allclose(cifar_stats.std, ORIGINAL_TRAIN_STD, atol=0.004)
    assert np.allclose(cifar_stats.var, np.square(cifar_stats.std))
    assert cifar_stats.min == (0.0, 0.0, 0.0) and cifar_stats.max == (1.0, 1.0, 1.0)
    test_stats = dataset_statistics(cifar.x_test)
    assert np.allclose(test_stats.mean, cifar_stats.mean, atol=0.005)


@pytest.mark.data
def test_real_copy_loads_again_from_its_cache_identically(cifar, cifar_root):
    caches = list(cifar_root.glob(".cifarhelpers-cache-*.npz"))
    assert caches, "the first load should have written its cache beside the data"
    again = load_cifar10(cifar_root, progress=False)
    assert again.source == cifar.source
    assert np.array_equal(again.x_train, cifar.x_train) and np.array_equal(again.y_test, cifar.y_test)


# -- layouts, cache -------------------------------------------------------------------------

def test_image_folder_layout_is_read_in_class_and_index_order(tiny_folder):
    data = load_cifar10(tiny_folder, progress=False)
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_test.shape == (20, 32, 32, 3)
    assert data.y_train.tolist() == [c for c in range(10) for _ in range(2)]
    first = np.asarray(Image.open(tiny_folder / "train" / "airplane" / "0000.png"))
    assert np.array_equal(data.x_train[0], first)


def test_loading_writes_only_the_cache_into_the_data_folder(tiny_folder):
    before = files_under(tiny_folder)
    first = load_cifar10(tiny_folder, progress=False)
    added = files_under(tiny_folder) - before
    assert len(added) == 1 and next(iter(added)).startswith(".cifarhelpers-cache-")
    second = load_cifar10(tiny_folder, progress=False)
    assert files_under(tiny_folder) - before == added
    assert second.source.sha256 == first.source.sha256
    assert np.array_equal(second.x_train, first.x_train)


def test_a_corrupt_cache_is_ignored_and_rebuilt(tiny_folder):
    reference = load_cifar10(tiny_folder, progress=False)
    (cache,) = tiny_folder.glob(".cifarhelpers-cache-*.npz")
    cache.write_bytes(cache.read_bytes()[:1000])  # as if a writer had died half way
    with pytest.warns(UserWarning, match="ignoring unreadable cache"):
        rebuilt = load_cifar10(tiny_folder, progress=False)
    assert np.array_equal(rebuilt.x_train, reference.x_train)
    assert load_cifar10(tiny_folder, progress=False).source.sha256 == reference.source.sha256


def test_changing_a_file_invalidates_the_cache(tiny_folder):
    old = load_cifar10(tiny_folder, progress=False)
    path = tiny_folder / "test" / "cat" / "0001.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path)
    os.utime(path, ns=(1, 1))
    new = load_cifar10(tiny_folder, progress=False)
    assert new.source.sha256 != old.source.sha256
    assert new.x_test[3 * 2 + 1].max() == 0


def test_cache_can_be_disabled(tiny_folder):
    load_cifar10(tiny_folder, cache=False, progress=False)
    assert not list(tiny_folder.glob(".cifarhelpers-cache-*"))


def test_torchvision_layout_is_read(tmp_path, monkeypatch):
    import pickle

    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import calculate_md5

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        batch = {"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), "labels": [0, 1, 9]}
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CLASSES)}))
    # The real batches are 160 MB: write small ones in torchvision's format and make the MD5
    # check expect their sums.
    def md5s(entries):
        return [[name, calculate_md5(str(base / name))] for name, _ in entries]

    monkeypatch.setattr(CIFAR10, "train_list", md5s(CIFAR10.train_list))
    monkeypatch.setattr(CIFAR10, "test_list", md5s(CIFAR10.test_list))
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": calculate_md5(str(base / "batches.meta"))})
    for root in (tmp_path, base):  # the parent folder or the batches folder itself
        data = load_cifar10(root, progress=False)
        assert data.source.layout == "torchvision"
        assert data.x_train.shape == (15, 32, 32, 3) and data.x_test.shape == (3, 32, 32, 3)
        assert data.y_train.tolist()[:3] == [0, 1, 9] and data.y_train.dtype == np.int64
    assert files_under(tmp_path) == {f"cifar-10-batches-py/{n}" for n in os.listdir(base)}, "nothing written"


def test_root_comes_from_argument_then_environment_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == (tmp_path / "arg", "argument")
    assert resolve_root(None) == (tmp_path / "env", "CIFAR10_ROOT")
    monkeypatch.delenv("CIFAR10_ROOT")
    assert resolve_root(None) == (Path("./data"), "default")


# -- errors ---------------------------------------------------------------------------------

def test_missing_root_names_the_path_and_the_fixes(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"nowhere.*does not exist.*CIFAR10_ROOT.*download=True"):
        load_cifar10(tmp_path / "nowhere")


def test_folder_with_neither_layout_points_at_a_nested_copy(tmp_path):
    write_image_folder(tmp_path / "outer" / "cifar10-jpeg", per_class=1)
    with pytest.raises(DataNotFoundError, match=r"no CIFAR-10 copy found.*Did you mean .*cifar10-jpeg"):
        load_cifar10(tmp_path / "outer")


def test_an_archive_given_as_root_says_to_unpack_it(tmp_path):
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    with pytest.raises(DataNotFoundError, match=r"is a file.*unpack it \(tar -xzf"):
        load_cifar10(archive)


def test_missing_class_folder(tiny_folder):
    for f in (tiny_folder / "test" / "dog").iterdir():
        f.unlink()
    (tiny_folder / "test" / "dog").rmdir()
    with pytest.raises(DataError, match=r"class folder .*test/dog is missing"):
        load_cifar10(tiny_folder)


def test_empty_class_folder(tiny_folder):
    for f in (tiny_folder / "train" / "frog").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"class folder .*train/frog is empty"):
        load_cifar10(tiny_folder)


def test_unexpected_class_folder(tiny_folder):
    (tiny_folder / "train" / "unicorn").mkdir()
    with pytest.raises(DataError, match=r"not CIFAR-10 classes: \['unicorn'\]"):
        load_cifar10(tiny_folder)


def test_missing_split(tiny_folder):
    import shutil

    shutil.rmtree(tiny_folder / "test")
    with pytest.raises(DataError, match=r"has no 'test/' folder"):
        load_cifar10(tiny_folder)


@pytest.mark.parametrize("size,mode,expected", [((28, 28), "RGB", "28x28 RGB"), ((32, 32), "L", "32x32 L"),
                                                ((32, 32), "RGBA", "32x32 RGBA")])
def test_image_that_is_not_32x32_rgb(tiny_folder, size, mode, expected):
    bad = tiny_folder / "train" / "ship" / "0001.png"
    channels = len(mode)
    pixels = np.zeros((size[1], size[0], channels), np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(bad)
    with pytest.raises(DataError, match=rf"ship/0001.png is {expected}, expected 32x32 RGB"):
        load_cifar10(tiny_folder, progress=False)
    assert not list(tiny_folder.glob(".cifarhelpers-cache-*")), "no cache for a copy that failed to load"


def test_undecodable_image(tiny_folder):
    (tiny_folder / "test" / "horse" / "0000.png").write_bytes(b"this is not a PNG")
    with pytest.raises(DataError, match=r"cannot decode image .*horse/0000.png"):
        load_cifar10(tiny_folder, progress=False)


def test_a_corrupt_jpg_names_the_file_and_the_fix(tiny_folder):
    (tiny_folder / "train" / "deer" / "0002.JPG").write_bytes(b"\xff\xd8\xff\xe0 cut off")  # a truncated JPEG
    with pytest.raises(DataError, match=r"cannot decode image .*deer/0002\.JPG.*Replace it with a valid 32x32 RGB "
                                        r"image or restore the copy from its archive"):
        load_cifar10(tiny_folder, progress=False)


def test_files_that_are_not_images_are_skipped_as_imagefolder_does(tiny_folder, tmp_path):
    clean = load_cifar10(tiny_folder, progress=False)
    (cache,) = tiny_folder.glob(".cifarhelpers-cache-*.npz")
    # What a copy unpacked on Windows or macOS holds beside the images.
    for split in ("train", "test"):
        for cls in ("airplane", "truck"):
            folder = tiny_folder / split / cls
            (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
            (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
            (folder / "._0000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
            (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
    again = load_cifar10(tiny_folder, progress=False)  # the same image files: served from the same cache
    assert list(tiny_folder.glob(".cifarhelpers-cache-*.npz")) == [cache]
    fresh = load_cifar10(tiny_folder, cache=False, progress=False)  # decoded again, skipping the extras
    for data in (again, fresh):
        assert data.source.sha256 == clean.source.sha256
        assert np.array_equal(data.x_train, clean.x_train) and np.array_equal(data.y_train, clean.y_train)
        assert np.array_equal(data.x_test, clean.x_test) and np.array_equal(data.y_test, clean.y_test)
    # A new file with an image extension is in the key, so the cache does not hide it.
    (tiny_folder / "test" / "truck" / "0009.jpg").write_bytes(b"not a JPEG")
    with pytest.raises(DataError, match=r"cannot decode image .*truck/0009\.jpg"):
        load_cifar10(tiny_folder, progress=False)


def test_class_folder_with_no_image_files(tiny_folder):
    folder = tiny_folder / "train" / "frog"
    for f in folder.iterdir():
        f.unlink()
    (folder / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(DataError, match=r"train/frog has no image files \(only \['Thumbs.db'\].*'\.jpg'.*restore"):
        load_cifar10(tiny_folder)


def test_torchvision_batch_failing_its_checksum(tmp_path):
    from torchvision.datasets import CIFAR10

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        (base / name).write_bytes(b"truncated download")
    (base / "batches.meta").write_bytes(b"x")
    with pytest.raises(DataError, match=r"data_batch_1 fails torchvision's MD5 check.*download=True"):
        load_cifar10(tmp_path)


def test_torchvision_folder_missing_a_batch(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match=r"is missing data_batch_1"):
        load_cifar10(tmp_path)


def test_download_failure_is_explained(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_network(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_network)
    with pytest.raises(DataError, match=r"downloading CIFAR-10 into .* failed.*Without internet"):
        load_cifar10(tmp_path / "dl", download=True)


# -- statistics and subsets -----------------------------------------------------------------

def test_statistics_of_known_pixels():
    images = np.zeros((2, 2, 2, 3), np.uint8)
    images[0, ..., 0] = 255          # red channel: half the pixels 1.0, half 0.0
    images[:, :, :, 1] = 51          # green: all 0.2
    stats = dataset_statistics(images)
    assert stats.mean == pytest.approx((0.5, 0.2, 0.0))
    assert stats.std == pytest.approx((0.5, 0.0, 0.0), abs=1e-7)
    assert stats.var == pytest.approx((0.25, 0.0, 0.0), abs=1e-7)
    assert stats.min == (0.0, 0.2, 0.0) and stats.max == (1.0, 0.2, 0.0)
    assert stats.num_images == 2
    assert dataset_statistics(images.astype(np.float64) / 255).mean == pytest.approx(stats.mean)


def test_statistics_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        dataset_statistics(np.zeros((32, 32, 3), np.uint8))


def test_stratified_subset_is_balanced_seeded_and_validated():
    labels = np.repeat(np.arange(10), 100)
    idx = stratified_subset(labels, 95, seed=3)
    assert len(idx) == len(set(idx.tolist())) == 95
    assert sorted(np.bincount(labels[idx]).tolist()) == [9] * 5 + [10] * 5
    assert np.array_equal(idx, stratified_subset(labels, 95, seed=3))
    assert not np.array_equal(idx, stratified_subset(labels, 95, seed=4))
    with pytest.raises(ConfigError, match=r"train_subset=2000 is out of range.*1 to 1,000"):
        stratified_subset(labels, 2000, seed=0, name="train_subset")
    with pytest.raises(ConfigError, match="out of range"):
        stratified_subset(labels, 0, seed=0)
