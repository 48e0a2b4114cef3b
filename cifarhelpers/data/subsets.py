"""Class-balanced, seeded subsets: what a run trains and tests on when it uses part of CIFAR-10.

An image-folder copy is ordered by class (the first N images would all be airplanes), so every
subset here draws the same share from every class, with ``numpy.random.default_rng(seed)``.
Training and every later look at a run's test images (notebook 05) draw through
:func:`balanced_subset`, so they see the same images.
"""

from __future__ import annotations

import numpy as np

from cifarhelpers.errors import ConfigError


def balanced_subset(images: np.ndarray, labels: np.ndarray, size: int | None, seed: int, *,
                    name: str = "subset") -> tuple[np.ndarray, np.ndarray]:
    """``images`` and ``labels`` restricted to the class-balanced, seeded draw of
    :func:`stratified_subset` (all of them when ``size`` is None). Training and every later look
    at a run's test images (notebook 05) draw through here, so they see the same images.

    Args:
        images: (N, ...) array; labels: (N,) integer labels.
        size: images wanted, 1 <= size <= N, or None for all.
        seed: seed of the draw.
        name: what the subset is called in error messages (e.g. ``"test_subset"``).

    Returns:
        ``(images, labels)``, the subset in ascending index order.

    Raises:
        ConfigError: as :func:`stratified_subset`.
    """
    if size is None:
        return images, labels
    idx = stratified_subset(labels, size, seed, name=name)
    return images[idx], labels[idx]


def stratified_subset(labels: np.ndarray, size: int, seed: int, *, name: str = "subset") -> np.ndarray:
    """Indices of a class-balanced random subset, sorted ascending.

    Each class gets ``size // C`` images and the first ``size % C`` classes one more, drawn without
    replacement with ``numpy.random.default_rng(seed)``. Balanced subsets matter here because an
    image-folder copy is ordered by class: the first N images would all be airplanes.

    Args:
        labels: (N,) integer labels.
        size: number of indices wanted, 1 <= size <= N.
        seed: seed of the draw.
        name: what the subset is called in error messages (e.g. ``"train_subset"``).

    Returns:
        (size,) int64 indices into ``labels``.

    Raises:
        ConfigError: size is out of range, or a class has fewer images than its share.
    """
    labels = np.asarray(labels)
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not 1 <= size <= len(labels):
        raise ConfigError(
            f"{name}={size!r} is out of range: it must be an integer from 1 to {len(labels):,} "
            f"(the number of images available); use None for all of them"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    share = np.full(len(classes), size // len(classes))
    share[: size % len(classes)] += 1
    picked = []
    for cls, k in zip(classes, share):
        members = np.flatnonzero(labels == cls)
        if k > len(members):
            raise ConfigError(
                f"{name}={size} needs {k} images of class {int(cls)} but only {len(members)} exist; "
                "use a smaller subset"
            )
        picked.append(rng.choice(members, size=int(k), replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)


def samples_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random images of every class, grouped by class (class 0 first)."""
    labels = np.asarray(labels)
    idx = stratified_subset(labels, per_class * len(np.unique(labels)), seed, name="samples")
    return idx[np.argsort(labels[idx], kind="stable")]
