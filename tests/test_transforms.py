"""cifarhelpers.data.transforms: pipeline outputs, and that each augmentation really changes images (through the
single-step preview pipelines of cifarhelpers.data.previews)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from cifarhelpers.data import (
    CUTOUT_SIZE,
    AugmentedDataset,
    augmentation_steps,
    denormalize,
    mean_fill,
    preview_pipelines,
    train_transform,
)
from cifarhelpers.data import transforms as T
from cifarhelpers.errors import ConfigError

MEAN, STD = (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)


@pytest.fixture
def image():
    # a gradient image: every pixel distinct enough to see crops and flips
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_train_and_test_pipelines_give_normalized_float_tensors(image):
    for tf in (train_transform(MEAN, STD, seed=0), T.test_transform(MEAN, STD)):
        out = tf(image=image)["image"]
        assert isinstance(out, torch.Tensor) and out.shape == (3, 32, 32) and out.dtype == torch.float32
    expected = (image / 255.0 - np.asarray(MEAN)) / np.asarray(STD)
    got = T.test_transform(MEAN, STD)(image=image)["image"].permute(1, 2, 0).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def test_pipelines_are_strict():
    assert train_transform(MEAN, STD).strict and T.test_transform(MEAN, STD).strict


def test_cutout_leaves_exactly_one_8x8_hole_of_the_mean_colour(image):
    cut = preview_pipelines(MEAN, STD, seed=1)["cutout 8x8"]
    fill = np.asarray(mean_fill(MEAN))
    for _ in range(20):
        out = cut(image=image)["image"]
        changed = np.any(out != image, axis=-1)
        hole = np.all(out == fill, axis=-1) & changed
        rows, cols = np.nonzero(hole)
        assert rows.max() - rows.min() + 1 == CUTOUT_SIZE and cols.max() - cols.min() + 1 == CUTOUT_SIZE
        assert changed.sum() <= CUTOUT_SIZE**2 and (~changed | hole).all()


def test_pad_crop_shifts_the_image_by_up_to_4_pixels(image):
    crop = preview_pipelines(MEAN, STD, seed=2)["pad 4 + random crop 32"]
    shifts = set()
    for _ in range(200):
        out = crop(image=image)["image"]
        assert out.shape == (32, 32, 3)
        # find the shift: the interior 24x24 of the original appears at offset (dy, dx)
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                if np.array_equal(out[4 + dy : 28 + dy, 4 + dx : 28 + dx], image[4:28, 4:28]):
                    shifts.add((dy, dx))
    assert (0, 0) in shifts and len(shifts) > 40, f"crops should cover most of the 81 offsets, saw {len(shifts)}"
    assert {abs(dy) for dy, _ in shifts} >= {4}, "the full 4-pixel range is used"


def test_flip_mirrors_and_train_pipeline_flips_about_half_the_time(image):
    flip = preview_pipelines(MEAN, STD)["horizontal flip"]
    assert np.array_equal(flip(image=image)["image"], image[:, ::-1])
    steps = augmentation_steps(MEAN)
    flip_step = next(s for s in steps if type(s).__name__ == "HorizontalFlip")
    assert flip_step.p == 0.5
    # the train pipeline's own flip step, drawn 400 times (seeded): mirrored about half the time
    pipeline = A.Compose([flip_step], seed=0, strict=True)
    flipped = sum(np.array_equal(pipeline(image=image)["image"], image[:, ::-1]) for _ in range(400))
    assert 0.42 < flipped / 400 < 0.58, f"{flipped} of 400 draws flipped"


def test_train_pipeline_changes_images_and_differs_between_draws(image):
    tf = train_transform(MEAN, STD, seed=0)
    plain = T.test_transform(MEAN, STD)(image=image)["image"]
    draws = [tf(image=image)["image"] for _ in range(5)]
    assert all(not torch.equal(d, plain) for d in draws)
    assert len({d.numpy().tobytes() for d in draws}) == 5


def test_seeded_pipelines_repeat():
    image = np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a = [train_transform(MEAN, STD, seed=7)(image=image)["image"] for _ in range(1)]
    b = [train_transform(MEAN, STD, seed=7)(image=image)["image"] for _ in range(1)]
    assert torch.equal(a[0], b[0])


def test_dilated_transform_set_builds():
    out = train_transform(MEAN, STD, "affine_cutout16", seed=0)(image=np.zeros((32, 32, 3), np.uint8))["image"]
    assert out.shape == (3, 32, 32)


def test_cutout8_p05_is_cutout8_with_cutout_probability_one_half():
    full, half = T.TRANSFORM_SETS["cutout8"], T.TRANSFORM_SETS["cutout8_p05"]
    assert (half.pad, half.flip_p, half.affine_p, half.cutout_size) == (full.pad, full.flip_p, full.affine_p,
                                                                        full.cutout_size) == (4, 0.5, 0.0, 8)
    assert (full.cutout_p, half.cutout_p) == (1.0, 0.5)
    steps = augmentation_steps(MEAN, "cutout8_p05")
    assert [type(s).__name__ for s in steps] == [type(s).__name__ for s in augmentation_steps(MEAN, "cutout8")]
    assert steps[-1].p == 0.5 and augmentation_steps(MEAN, "cutout8")[-1].p == 1.0
    assert list(preview_pipelines(MEAN, STD, transform_set="cutout8_p05")) == list(preview_pipelines(MEAN, STD))


def test_the_device_loaders_sets_are_derived_from_the_registry():
    assert T.DEVICE_TRANSFORM_SETS == ("cutout8", "cutout8_p05")
    assert all(T.TRANSFORM_SETS[name].affine_p == 0 for name in T.DEVICE_TRANSFORM_SETS)
    assert not T.TRANSFORM_SETS["affine_cutout16"].on_device
    for loader in ("auto", "albumentations"):
        T.check_device_transform_set(loader, "affine_cutout16")  # auto falls back to albumentations: no error
    T.check_device_transform_set("device", "cutout8_p05")
    with pytest.raises(ConfigError, match=r"loader='device' implements transform_set in \['cutout8', 'cutout8_p05'\] "
                                          r"only, got 'affine_cutout16'"):
        T.check_device_transform_set("device", "affine_cutout16")


def test_bad_arguments_are_explained():
    with pytest.raises(ConfigError, match=r"unknown transform_set 'nope'.*cutout8"):
        train_transform(MEAN, STD, "nope")
    with pytest.raises(ValueError, match=r"\[0, 1\] scale"):
        train_transform((125.3, 123.0, 113.9), STD)
    with pytest.raises(ValueError, match="3 values"):
        T.test_transform(MEAN[:2], STD)


def test_dataset_applies_the_pipeline_and_reseeds():
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    ds = AugmentedDataset(images, np.arange(6), train_transform(MEAN, STD))
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 3 and len(ds) == 6
    ds.reseed(11)
    first = ds[0][0]
    ds.reseed(11)
    assert torch.equal(ds[0][0], first)
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        AugmentedDataset(images, np.arange(5), T.test_transform(MEAN, STD))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        AugmentedDataset(images.astype(np.float32), np.arange(6), T.test_transform(MEAN, STD))


def test_workers_draw_different_augmentations():
    """Forked DataLoader workers start from identical albumentations states unless reseeded."""
    from cifarhelpers.training import AlbumentationsLoader

    images = np.repeat(np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8), 8, axis=0)
    loader = AlbumentationsLoader(images, np.zeros(8, np.int64), train_transform(MEAN, STD), batch_size=2,
                                  train=False, num_workers=2)
    loader.set_epoch(0)
    batches = [x for x, _ in loader]
    # worker 0 takes batches 0, 2; worker 1 takes 1, 3: without reseeding batch 0 == batch 1
    assert not torch.equal(batches[0], batches[1])
    loader.set_epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(batches, [x for x, _ in loader])), "seeded epochs repeat"


def test_only_a_loader_asked_to_keeps_its_workers_from_one_pass_to_the_next():
    """Persistent workers skip the start-up of every test pass; a training loader's restart (set_epoch reseeds them)."""
    from cifarhelpers.training import AlbumentationsLoader

    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    kept = AlbumentationsLoader(images, np.arange(6), T.test_transform(MEAN, STD), batch_size=2, train=False,
                                num_workers=1, persistent_workers=True)
    first = [x for x, _ in kept]
    workers = kept.loader._iterator
    second = [x for x, _ in kept]
    assert workers is not None and kept.loader._iterator is workers, "the same worker processes served both passes"
    assert all(torch.equal(a, b) for a, b in zip(first, second)) and len(first) == 3
    fresh = AlbumentationsLoader(images, np.arange(6), T.test_transform(MEAN, STD), batch_size=2, train=False,
                                 num_workers=1)
    assert len([x for x, _ in fresh]) == 3 and fresh.loader._iterator is None, "none kept by default"
    in_process = AlbumentationsLoader(images, np.arange(6), T.test_transform(MEAN, STD), batch_size=2, train=False,
                                      persistent_workers=True)  # no workers: nothing to keep, and no error
    assert not in_process.loader.persistent_workers


@pytest.mark.data
def test_prepare_data_keeps_the_test_loaders_workers_only(small_data):
    from cifarhelpers.training import TrainConfig, prepare_data

    cfg = TrainConfig(model="dilated_net", device="cpu", train_subset=32, test_subset=20, batch_size=16,
                      loader="albumentations", num_workers=1)
    prep = prepare_data(cfg, torch.device("cpu"), small_data, progress=False)
    assert prep.test_loader.loader.persistent_workers and not prep.train_loader.loader.persistent_workers


def test_denormalize_inverts_normalize(image):
    x = T.test_transform(MEAN, STD)(image=image)["image"]
    back = denormalize(x, MEAN, STD)
    assert back.shape == (32, 32, 3) and back.dtype == np.float32
    assert np.allclose(back, image / 255.0, atol=1e-5)
    assert denormalize(x[None], MEAN, STD).shape == (1, 32, 32, 3)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        denormalize(np.zeros((32, 32, 3)), MEAN, STD)
