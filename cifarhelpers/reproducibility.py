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
    """The global RNG states (python, numpy, torch CPU, torch CUDA), in types ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
