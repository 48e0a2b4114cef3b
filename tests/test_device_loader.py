"""DeviceLoader: the same augmentations as the albumentations path, vectorized, seeded, complete."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cifarhelpers.data import Augmentation, DeviceLoader, apply_augmentation, draw_augmentation
from cifarhelpers.data import transforms as T
from cifarhelpers.training import AlbumentationsLoader

MEAN, STD = (0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)


def coordinate_images(n: int) -> np.ndarray:
    """Images whose red channel encodes the row (8 * row) and green the column (8 * col)."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    image = np.stack([rows * 8, cols * 8, np.full_like(rows, 100)], axis=-1).astype(np.uint8)
    return np.repeat(image[None], n, axis=0)


def test_draws_cover_every_offset_uniformly_and_flip_half_the_time():
    g = torch.Generator().manual_seed(0)
    aug = draw_augmentation(81 * 400, g)
    offsets = torch.stack([aug.dy, aug.dx], 1) - 4
    counts = torch.zeros(9, 9)
    for dy, dx in offsets.tolist():
        counts[dy + 4, dx + 4] += 1
    assert (counts > 0).all(), "every offset in [-4, 4] x [-4, 4] occurs"
    assert counts.min() > 0.8 * 400 and counts.max() < 1.2 * 400, "roughly uniform (expected 400 each)"
    assert abs(aug.flip.float().mean().item() - 0.5) < 0.01
    assert aug.hole_y.min() == 0 and aug.hole_y.max() == 24 and aug.hole_x.max() == 24


def test_apply_crops_flips_and_cuts_exactly():
    padded = torch.arange(2 * 3 * 40 * 40, dtype=torch.float32).view(2, 3, 40, 40) + 1  # no zeros
    aug = Augmentation(dy=torch.tensor([0, 8]), dx=torch.tensor([3, 5]), flip=torch.tensor([0, 1]),
                       hole_y=torch.tensor([0, 24]), hole_x=torch.tensor([10, 24]))
    out = apply_augmentation(padded, aug)
    expected0 = padded[0, :, 0:32, 3:35].clone()
    expected0[:, 0:8, 10:18] = 0
    expected1 = padded[1, :, 8:40, 5:37].flip(-1).clone()
    expected1[:, 24:32, 24:32] = 0
    assert torch.equal(out[0], expected0) and torch.equal(out[1], expected1)


def test_padding_is_reflect_101_like_the_albumentations_path():
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    loader = DeviceLoader(image, np.zeros(1), mean=(0, 0, 0), std=(1, 1, 1), batch_size=1, device="cpu", train=True)
    padded_here = (loader.images[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    padded_albu = T.pad_crop()[0](image=image[0])["image"]  # PadIfNeeded alone
    assert np.array_equal(padded_here, padded_albu)


def test_every_image_appears_once_per_epoch_and_epochs_are_seeded():
    n, batch = 1000, 64
    loader = DeviceLoader(coordinate_images(n), np.arange(n), mean=MEAN, std=STD, batch_size=batch,
                          device="cpu", train=True)
    loader.set_epoch(3)
    labels = torch.cat([y for _, y in loader])
    assert len(loader) == n // batch and len(labels) == (n // batch) * batch
    assert len(set(labels.tolist())) == len(labels), "no image twice"
    loader.set_epoch(3)
    again = torch.cat([y for _, y in loader])
    loader.set_epoch(4)
    other = torch.cat([y for _, y in loader])
    assert torch.equal(labels, again) and not torch.equal(labels, other)


def test_each_training_image_has_exactly_one_8x8_hole_of_the_normalized_mean():
    images = np.random.default_rng(1).integers(1, 255, (256, 32, 32, 3), dtype=np.uint8)
    loader = DeviceLoader(images, np.zeros(256), mean=MEAN, std=STD, batch_size=256, device="cpu", train=True)
    loader.set_epoch(0)
    (x, _), = list(loader)
    mean_pixels = (x == 0).all(dim=1)  # the normalized mean is exactly 0 in every channel
    for mask in mean_pixels:
        rows, cols = mask.nonzero(as_tuple=True)
        assert len(rows) == 64
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 7


def test_test_loader_yields_every_image_in_order_unaugmented():
    images = np.random.default_rng(2).integers(0, 256, (70, 32, 32, 3), dtype=np.uint8)
    loader = DeviceLoader(images, np.arange(70), mean=MEAN, std=STD, batch_size=32, device="cpu", train=False)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [32, 32, 6]
    x = torch.cat([b for b, _ in batches])
    reference = torch.stack([T.test_transform(MEAN, STD)(image=im)["image"] for im in images])
    assert torch.allclose(x, reference, atol=1e-5)


def test_batches_are_channels_last_when_asked():
    loader = DeviceLoader(coordinate_images(8), np.arange(8), mean=MEAN, std=STD, batch_size=4, device="cpu",
                          train=True, channels_last=True)
    x, _ = next(iter(loader))
    assert x.is_contiguous(memory_format=torch.channels_last) and x.shape == (4, 3, 32, 32)


@pytest.mark.data
def test_batch_statistics_match_the_albumentations_path(cifar, cifar_stats):
    """Both paths augment the same 4,096 real images; per-channel mean and std of the augmented
    pixels agree within 0.01 (normalized units; the albumentations hole is the mean rounded to
    uint8, the device hole the exact mean)."""
    from cifarhelpers.data import stratified_subset

    idx = stratified_subset(cifar.y_train, 4096, seed=0)
    x, y = cifar.x_train[idx], cifar.y_train[idx]
    device = DeviceLoader(x, y, mean=cifar_stats.mean, std=cifar_stats.std, batch_size=512, device="cpu", train=True)
    albu = AlbumentationsLoader(x, y, T.train_transform(cifar_stats.mean, cifar_stats.std), batch_size=512, train=True)
    device.set_epoch(0)
    albu.set_epoch(0)
    a = torch.cat([b for b, _ in device])
    b = torch.cat([b for b, _ in albu])
    assert a.shape == b.shape == (4096, 3, 32, 32)
    assert torch.allclose(a.mean(dim=(0, 2, 3)), b.mean(dim=(0, 2, 3)), atol=0.01)
    assert torch.allclose(a.std(dim=(0, 2, 3)), b.std(dim=(0, 2, 3)), atol=0.01)
    # the share of exact-mean pixels is the hole's 64/1024 = 6.25% in the device path
    assert (a == 0).all(dim=1).float().mean().item() == pytest.approx(64 / 1024, abs=1e-3)


def test_the_hole_probability_is_a_bernoulli_draw_per_image_after_the_other_draws():
    always = draw_augmentation(20_000, torch.Generator().manual_seed(5))
    half = draw_augmentation(20_000, torch.Generator().manual_seed(5), hole_p=0.5)
    assert always.cut is None, "p = 1 draws nothing more: cutout8's stream is the one pinned"
    for name in ("dy", "dx", "flip", "hole_y", "hole_x"):
        assert torch.equal(getattr(always, name), getattr(half, name)), f"{name}: drawn first, unchanged by hole_p"
    assert half.cut.dtype == torch.bool and abs(half.cut.float().mean().item() - 0.5) < 0.015
    none = draw_augmentation(1000, torch.Generator().manual_seed(5), hole_p=0.0)
    assert not none.cut.any()


def test_an_image_not_drawn_for_cutout_keeps_every_pixel():
    padded = torch.arange(2 * 3 * 40 * 40, dtype=torch.float32).view(2, 3, 40, 40) + 1  # no zeros
    aug = Augmentation(dy=torch.tensor([4, 4]), dx=torch.tensor([4, 4]), flip=torch.tensor([0, 0]),
                       hole_y=torch.tensor([3, 3]), hole_x=torch.tensor([5, 5]), cut=torch.tensor([True, False]))
    out = apply_augmentation(padded, aug)
    assert (out[0] == 0).all(dim=0).sum() == 64 and out[0, :, 3:11, 5:13].eq(0).all()
    assert torch.equal(out[1], padded[1, :, 4:36, 4:36]), "no hole where cut is False"


def holes_per_image(batches: torch.Tensor, value: float) -> torch.Tensor:
    """Pixels of each image of a constant-``value`` batch that differ from it (cutout holes: crops,
    flips and reflect padding of a constant image change nothing)."""
    return ((batches - value).abs() > 1e-3).any(dim=1).sum(dim=(1, 2))


@pytest.mark.parametrize("transform_set, p", [("cutout8", 1.0), ("cutout8_p05", 0.5)])
def test_the_share_of_images_with_a_hole_matches_the_albumentations_path(transform_set, p):
    """Both paths augment 2,000 copies of a constant image with the set: every hole is one whole 8x8
    square, and the share of images with one is the set's cutout probability in both."""
    n = 2000
    images = np.full((n, 32, 32, 3), 200, np.uint8)
    value = (200 / 255 - MEAN[0]) / STD[0]  # channel 0 of the constant image, normalized
    device = DeviceLoader(images, np.zeros(n), mean=MEAN, std=STD, batch_size=500, device="cpu", train=True,
                          transform_set=transform_set)
    albu = AlbumentationsLoader(images, np.zeros(n), T.train_transform(MEAN, STD, transform_set), batch_size=500,
                                train=True)
    device.set_epoch(0)
    albu.set_epoch(0)
    shares = {}
    for name, loader in (("device", device), ("albumentations", albu)):
        holes = holes_per_image(torch.cat([x for x, _ in loader])[:, :1], value)
        assert set(holes.tolist()) <= {0, 64}, f"{name}: a hole is a whole 8x8 square"
        shares[name] = (holes == 64).float().mean().item()
    if p == 1.0:
        assert shares == {"device": 1.0, "albumentations": 1.0}
    else:  # binomial(2000, 0.5): standard deviation 0.011
        assert abs(shares["device"] - p) < 0.05 and abs(shares["albumentations"] - p) < 0.05, shares
        assert abs(shares["device"] - shares["albumentations"]) < 0.06, shares


def test_the_device_loader_refuses_a_set_it_does_not_implement():
    from cifarhelpers.errors import ConfigError

    with pytest.raises(ConfigError, match=r"implements transform_set in \['cutout8', 'cutout8_p05'\] only, got "
                                          r"'affine_cutout16'"):
        DeviceLoader(coordinate_images(4), np.zeros(4), mean=MEAN, std=STD, batch_size=2, device="cpu", train=True,
                     transform_set="affine_cutout16")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        DeviceLoader(np.zeros((4, 32, 32, 3), np.float32), np.zeros(4), mean=MEAN, std=STD, batch_size=2,
                     device="cpu", train=True)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        DeviceLoader(np.zeros((4, 32, 32, 3), np.uint8), np.zeros(3), mean=MEAN, std=STD, batch_size=2,
                     device="cpu", train=True)
