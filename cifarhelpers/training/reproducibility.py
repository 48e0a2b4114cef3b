"""Seeding: one seed per run, and a seed per epoch derived from it.

Every epoch re-derives its random streams from ``(seed, epoch)`` (:func:`seed_epoch`), so what an
epoch draws (shuffling, crops, flips, cutout, dropout) does not depend on what ran before it. That
makes a run resumed at epoch k identical to one left alone, for both data loaders.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys (numpy's SeedSequence), e.g. ``(seed, epoch)``."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_epoch(seed: int, epoch: int) -> int:
    """Seed the global generators for ``epoch`` (0-based) of a run; returns the epoch's seed."""
    epoch_seed = derive_seed(seed, epoch)
    seed_everything(epoch_seed)
    return epoch_seed


def rng_states() -> dict:
    """The global RNG states, in types ``torch.load(weights_only=True)`` reads.

    Returns:
        ``{"python": random.getstate() (a tuple of ints), "numpy": {"name", "keys" (624,) int64
        tensor, "pos", "has_gauss", "cached_gaussian"}, "torch": (5056,) uint8 tensor, "cuda": list of
        uint8 tensors, one per CUDA device (empty without CUDA)}``; :func:`restore_rng_states`
        puts them back.
    """
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict) -> None:
    """Set the global generators to ``states`` from :func:`rng_states` (e.g. out of a checkpoint).

    CUDA states are restored only when as many CUDA devices are present as were saved (a
    checkpoint from a GPU machine resumed on a CPU keeps the CPU streams).
    """
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), int(n["pos"]), int(n["has_gauss"]),
                         float(n["cached_gaussian"])))
    torch.set_rng_state(states["torch"].cpu())
    cuda = list(states.get("cuda") or [])
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
