"""cifarhelpers.data.previews: the columns of an augmentation preview, the draws, and the checks notebook 02
prints: each holds on a real preview and fails on a column that breaks its step's promise."""

from __future__ import annotations

import numpy as np
import pytest

from cifarhelpers.data import augmentation_draws, augmentation_preview, mean_fill, preview_checks
from cifarhelpers.data import previews as P
from cifarhelpers.errors import ConfigError

MEAN, STD = (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)
CROP_CLAIM = "pad 4 + random crop 32 shows each image shifted by at most 4 pixels"
FLIP_CLAIM = "horizontal flip mirrors each image"
CUTOUT_CLAIM = "cutout 8x8 changes each image inside one 8x8 square, to the mean colour"
ROUNDTRIP_CLAIM = "un-normalizing undoes normalizing"


@pytest.fixture
def images():
    # noise: every pixel distinct enough that a wrong shift, a missing flip or a stray change shows
    return np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def columns(images):
    return augmentation_preview(images, MEAN, STD, seed=0)


def test_every_claim_holds_on_a_real_preview_in_step_order(columns):
    assert preview_checks(columns, MEAN, STD) == {CROP_CLAIM: True, FLIP_CLAIM: True, CUTOUT_CLAIM: True,
                                                  ROUNDTRIP_CLAIM: True}
    assert list(preview_checks(columns, MEAN)) == [CROP_CLAIM, FLIP_CLAIM, CUTOUT_CLAIM], "no std: no round trip"


def test_a_crop_shifted_past_the_padding_fails(columns):
    original = columns["original"]
    padded = np.pad(original, ((0, 0), (5, 5), (5, 5), (0, 0)), mode="reflect")
    broken = {**columns, "pad 4 + random crop 32": padded[:, :32, 5:37]}  # 5 pixels up: past the 4 of padding
    assert preview_checks(broken, MEAN)[CROP_CLAIM] is False
    within = {**columns, "pad 4 + random crop 32": padded[:, 1:33, 9:41]}  # 4 up, 4 right: the edge of the range
    assert preview_checks(within, MEAN)[CROP_CLAIM] is True


def test_a_flip_of_the_wrong_axis_fails(columns):
    broken = {**columns, "horizontal flip": columns["original"][:, ::-1]}  # upside down
    assert preview_checks(broken, MEAN)[FLIP_CLAIM] is False


@pytest.mark.parametrize("how", ["no hole", "wrong colour", "two holes", "hole too big"])
def test_a_cutout_that_is_not_one_square_of_the_mean_colour_fails(columns, how):
    cut = columns["original"].copy()
    fill = np.asarray(mean_fill(MEAN), np.uint8)
    if how == "wrong colour":
        cut[:, 2:10, 2:10] = 255 - fill
    elif how == "two holes":
        cut[:, 2:10, 2:10] = fill
        cut[:, 20:28, 20:28] = fill
    elif how == "hole too big":
        cut[:, 2:11, 2:10] = fill  # 9 x 8
    checks = preview_checks({**columns, "cutout 8x8": cut}, MEAN)
    assert checks[CUTOUT_CLAIM] is False
    assert checks[CROP_CLAIM] and checks[FLIP_CLAIM], "the other claims are independent of the cutout column"


def test_the_round_trip_claim_fails_when_un_normalizing_does_not_undo_normalizing(columns, monkeypatch):
    monkeypatch.setattr(P, "denormalize", lambda x, mean, std: P.np.moveaxis(x.numpy(), 1, -1))  # forgets mean, std
    assert preview_checks(columns, MEAN, STD)[ROUNDTRIP_CLAIM] is False


def test_the_affine_cutout16_set_checks_its_flip_and_cutout_only(images):
    columns = augmentation_preview(images, MEAN, STD, seed=0, transform_set="affine_cutout16")
    assert preview_checks(columns, MEAN, transform_set="affine_cutout16") == {
        FLIP_CLAIM: True, "cutout 16x16 changes each image inside one 16x16 square, to the mean colour": True}


def test_columns_of_another_set_or_an_unknown_set_are_refused(columns):
    with pytest.raises(ValueError, match=r"lack \['shift, scale, rotate', 'cutout 16x16'\].*affine_cutout16"):
        preview_checks(columns, MEAN, transform_set="affine_cutout16")
    with pytest.raises(ConfigError, match="unknown transform_set 'rotate90'"):
        preview_checks(columns, MEAN, transform_set="rotate90")


def test_columns_of_unequal_or_no_images_and_stats_on_the_wrong_scale_are_refused(columns, images):
    with pytest.raises(ValueError, match=r"same number of images.*'cutout 8x8': 3"):
        preview_checks({**columns, "cutout 8x8": columns["cutout 8x8"][:3]}, MEAN)
    with pytest.raises(ValueError, match="at least one"):
        preview_checks({name: column[:0] for name, column in columns.items()}, MEAN)
    with pytest.raises(ValueError, match="0-255 scale"):
        preview_checks(columns, tuple(255 * m for m in MEAN))
    with pytest.raises(ValueError, match="at least one image"):
        augmentation_preview(images[:0], MEAN, STD)
    with pytest.raises(ValueError, match="draws=0"):
        augmentation_draws(images[0], MEAN, STD, draws=0)


def test_a_hole_over_pixels_already_of_the_mean_colour_is_not_seen(columns):
    """The documented limit: the hole is found where pixels changed, so on a flat image of the mean colour the
    cutout claim is False (the notebook's images are photographs)."""
    flat = np.broadcast_to(np.asarray(mean_fill(MEAN), np.uint8), (4, 32, 32, 3)).copy()
    flat_columns = augmentation_preview(flat, MEAN, STD, seed=0)
    assert preview_checks(flat_columns, MEAN)[CUTOUT_CLAIM] is False


def test_the_affine_cutout16_preview_shows_each_of_its_steps(images):
    image, images = images[0], np.stack([images[0], images[0][::-1]])
    columns = augmentation_preview(images, MEAN, STD, seed=0, transform_set="affine_cutout16")
    assert list(columns) == ["original", "horizontal flip", "shift, scale, rotate", "cutout 16x16",
                             "whole train pipeline"]
    assert np.array_equal(columns["horizontal flip"], images[:, :, ::-1])
    fill = np.asarray(mean_fill(MEAN))
    for out, original in zip(columns["cutout 16x16"], images):
        hole = np.all(out == fill, axis=-1) & np.any(out != original, axis=-1)
        rows, cols = np.nonzero(hole)
        assert rows.max() - rows.min() + 1 == 16 and cols.max() - cols.min() + 1 == 16, "one 16x16 hole, forced on"
    moved = columns["shift, scale, rotate"]
    assert moved.dtype == np.uint8 and all(not np.array_equal(m, o) for m, o in zip(moved, images)), "forced on"
    whole = columns["whole train pipeline"]
    assert whole.dtype == np.float32 and whole.shape == (2, 32, 32, 3) and 0.0 <= whole.min() <= whole.max() <= 1.0
    draws = augmentation_draws(image, MEAN, STD, draws=6, seed=0, transform_set="affine_cutout16")
    assert draws.shape == (6, 32, 32, 3) and len({d.tobytes() for d in draws}) > 1
    with pytest.raises(ConfigError, match="unknown transform_set 'rotate90'"):
        augmentation_preview(images, MEAN, STD, transform_set="rotate90")
