"""Previews of a transform set: each step alone on the same images, the whole train pipeline, several draws of
one image, and checks, on the pixels, that each step did what its name says (notebook 02).

Example::

    from cifarhelpers.data import augmentation_preview, preview_checks
    columns = augmentation_preview(images, stats.mean, stats.std)   # {"original": ..., "cutout 8x8": ..., ...}
    for claim, holds in preview_checks(columns, stats.mean, stats.std).items():
        print(f"{claim}:", holds)                                   # e.g. "horizontal flip mirrors each image: True"
"""

from __future__ import annotations

from collections.abc import Mapping

import albumentations as A
import numpy as np
import torch

from .transforms import (
    CROP,
    TRANSFORM_SETS,
    Stats,
    _check_stats,
    augmentation_steps,
    cutout,
    denormalize,
    mean_fill,
    normalize_batch,
    pad_crop,
    shift_scale_rotate,
    train_transform,
)

ORIGINAL = "original"  # the column of the images as given
WHOLE_PIPELINE = "whole train pipeline"  # the column of the pipeline as training runs it, un-normalized
FLIP = "horizontal flip"
AFFINE = "shift, scale, rotate"
ROUNDTRIP_ATOL = 1e-5  # largest |denormalize(normalize(x)) - x / 255| that counts as undone ([0, 1] scale)


def _crop_name(pad: int) -> str:
    return f"pad {pad} + random crop {CROP}"


def _cutout_name(size: int) -> str:
    return f"cutout {size}x{size}"


def _preview_steps(mean: Stats, transform_set: str) -> dict[str, list]:
    """Each step of a transform set alone, forced on (p=1) so a preview shows it, under its column name."""
    augmentation_steps(mean, transform_set)  # an unknown name raises ConfigError here
    spec, steps = TRANSFORM_SETS[transform_set], {}
    if spec.pad:
        steps[_crop_name(spec.pad)] = pad_crop(spec.pad)
    if spec.flip_p:
        steps[FLIP] = [A.HorizontalFlip(p=1.0)]
    if spec.affine_p:
        steps[AFFINE] = [shift_scale_rotate(mean, p=1.0)]
    if spec.cutout_size:
        steps[_cutout_name(spec.cutout_size)] = [cutout(mean, spec.cutout_size, p=1.0)]
    return steps


def preview_pipelines(mean: Stats, std: Stats, seed: int | None = None,
                      transform_set: str = "cutout8") -> dict[str, A.Compose]:
    """Each step of a transform set's train pipeline alone, then the whole pipeline, for previews.

    The single steps map uint8 (32, 32, 3) to uint8 and are always applied (even those the
    pipeline applies with probability 0.5), so a preview shows them; ``"whole train pipeline"``
    is the pipeline as training runs it and ends normalized, as a (3, 32, 32) float32 tensor
    (un-normalize it with :func:`~cifarhelpers.data.transforms.denormalize` for display).

    Raises:
        ConfigError: unknown ``transform_set``.
    """
    steps = {name: A.Compose(step, strict=True, seed=seed)
             for name, step in _preview_steps(mean, transform_set).items()}
    return {**steps, WHOLE_PIPELINE: train_transform(mean, std, transform_set, seed=seed)}


def augmentation_preview(images: np.ndarray, mean: Stats, std: Stats, seed: int = 0,
                         transform_set: str = "cutout8") -> dict[str, np.ndarray]:
    """Each image before and after every step of a transform set's train pipeline, for display.

    Args:
        images: (N, 32, 32, 3) uint8.
        mean, std: statistics on the [0, 1] scale.
        seed: seed of the random steps.
        transform_set: a key of :data:`~cifarhelpers.data.transforms.TRANSFORM_SETS` (``"cutout8"``, the main
            job's, by default).

    Returns:
        ``{"original": ..., <each step>: ..., "whole train pipeline": ...}``, each (N, 32, 32, 3):
        uint8 for the single steps, float32 in [0, 1] (un-normalized) for the whole pipeline. The steps
        of ``"cutout8"`` and ``"cutout8_p05"``: ``"pad 4 + random crop 32"``, ``"horizontal flip"``,
        ``"cutout 8x8"``; of ``"affine_cutout16"``: ``"horizontal flip"``, ``"shift, scale, rotate"``,
        ``"cutout 16x16"``.

    Raises:
        ConfigError: unknown ``transform_set``.
        ValueError: no images; ``mean`` or ``std`` is not 3 values on the [0, 1] scale.
    """
    if len(images) == 0:
        raise ValueError("augmentation_preview needs at least one image, got none")
    columns: dict[str, np.ndarray] = {ORIGINAL: np.asarray(images)}
    for name, pipeline in preview_pipelines(mean, std, seed, transform_set).items():
        outputs = [pipeline(image=image)["image"] for image in images]
        columns[name] = denormalize(torch.stack(outputs), mean, std) if isinstance(outputs[0], torch.Tensor) \
            else np.stack(outputs)
    return columns


def augmentation_draws(image: np.ndarray, mean: Stats, std: Stats, draws: int = 8, seed: int = 0,
                       transform_set: str = "cutout8") -> np.ndarray:
    """``draws`` passes of one (32, 32, 3) uint8 image through a transform set's train pipeline,
    un-normalized: (draws, 32, 32, 3) float32 in [0, 1].

    Raises:
        ConfigError: unknown ``transform_set``.
        ValueError: ``draws`` < 1; ``mean`` or ``std`` is not 3 values on the [0, 1] scale.
    """
    if draws < 1:
        raise ValueError(f"draws={draws}: it must be an integer >= 1")
    pipeline = train_transform(mean, std, transform_set, seed=seed)
    return denormalize(torch.stack([pipeline(image=image)["image"] for _ in range(draws)]), mean, std)


def _is_shifted_crop(original: np.ndarray, crop: np.ndarray, pad: int) -> bool:
    """Whether ``crop`` is a window of ``original`` padded ``pad`` pixels with reflect-101 (np.pad "reflect")."""
    padded = np.pad(original, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    side = crop.shape[0]
    return any(np.array_equal(padded[y:y + side, x:x + side], crop)
               for y in range(2 * pad + 1) for x in range(2 * pad + 1))


def _is_one_hole(original: np.ndarray, cut: np.ndarray, size: int, fill: np.ndarray) -> bool:
    """Whether ``cut`` differs from ``original`` somewhere, only inside one ``size`` x ``size`` square, and only
    where it holds ``fill``."""
    changed = (cut != original).any(axis=-1)  # (H, W)
    if not changed.any():
        return False
    rows, cols = changed.nonzero()
    return bool(np.ptp(rows) < size and np.ptp(cols) < size and (cut[changed] == fill).all())


def preview_checks(columns: Mapping[str, np.ndarray], mean: Stats, std: Stats | None = None,
                   transform_set: str = "cutout8") -> dict[str, bool]:
    """Check, on the pixels, that each single-step column of :func:`augmentation_preview` does what its step
    says, for every image; the claims are in plain words, ready to print (notebook 02 prints them).

    Checked: the crop column is a window of the reflect-101 padded original (a shift of at most ``pad`` pixels
    each way); the flip column is the original mirrored left-right; the cutout column differs from the original
    inside one ``size`` x ``size`` square only, and there holds the mean colour
    (:func:`~cifarhelpers.data.transforms.mean_fill`). A hole is found where the pixels changed, so on an image
    that already has the mean colour all over the hole's square the cutout claim is False. Not checked: the affine
    step (interpolated pixels have no exact expected value) and the whole pipeline (random).

    Args:
        columns: :func:`augmentation_preview`'s output for ``transform_set``: ``"original"`` and each step's
            column, each (N, 32, 32, 3) uint8 with the same N >= 1.
        mean: the statistics the preview used ([0, 1] scale): the cutout's fill colour.
        std: when given, also checks that :func:`~cifarhelpers.data.transforms.denormalize` undoes
            :func:`~cifarhelpers.data.transforms.normalize_batch` on the original images (to
            :data:`ROUNDTRIP_ATOL` on the [0, 1] scale), the claim last.
        transform_set: the set the preview showed.

    Returns:
        ``{claim: holds}`` in the order of the checked steps, e.g. ``{"pad 4 + random crop 32 shows each image
        shifted by at most 4 pixels": True, "horizontal flip mirrors each image": True, ...}``.

    Raises:
        ConfigError: unknown ``transform_set``.
        ValueError: ``columns`` lacks ``"original"`` or a column of the set's steps (it was made for another
            set), its columns hold different numbers of images or none; ``mean`` or ``std`` is not 3 values on
            the [0, 1] scale.
    """
    _check_stats(mean, std)
    steps = list(_preview_steps(mean, transform_set))  # an unknown name raises ConfigError here
    missing = [name for name in [ORIGINAL, *steps] if name not in columns]
    if missing:
        raise ValueError(f"columns lack {missing}: pass augmentation_preview(..., transform_set={transform_set!r})'s "
                         f"output, which has them")
    counts = {name: len(columns[name]) for name in [ORIGINAL, *steps]}
    if len(set(counts.values())) != 1 or not counts[ORIGINAL]:
        raise ValueError(f"every column needs the same number of images, at least one; got {counts}: pass one "
                         f"augmentation_preview() output unchanged")
    spec, original = TRANSFORM_SETS[transform_set], np.asarray(columns[ORIGINAL])
    claims: dict[str, bool] = {}
    if spec.pad:
        name = _crop_name(spec.pad)
        claims[f"{name} shows each image shifted by at most {spec.pad} pixels"] = all(
            _is_shifted_crop(o, c, spec.pad) for o, c in zip(original, columns[name], strict=True))
    if spec.flip_p:
        claims[f"{FLIP} mirrors each image"] = bool(np.array_equal(columns[FLIP], original[:, :, ::-1]))
    if spec.cutout_size:
        name, fill = _cutout_name(spec.cutout_size), np.asarray(mean_fill(mean))
        claims[f"{name} changes each image inside one {spec.cutout_size}x{spec.cutout_size} square, to the mean "
               f"colour"] = all(_is_one_hole(o, c, spec.cutout_size, fill)
                                for o, c in zip(original, columns[name], strict=True))
    if std is not None:
        roundtrip = denormalize(normalize_batch(original, mean, std), mean, std)
        claims["un-normalizing undoes normalizing"] = bool(np.abs(roundtrip - original / 255.0).max() < ROUNDTRIP_ATOL)
    return claims
