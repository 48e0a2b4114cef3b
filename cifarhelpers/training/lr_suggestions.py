"""Rules that turn an LR range test's curve into a suggested LRMAX.

======================  ==========================================================================
rule                    suggestion (on the smoothed loss, after skipping the curve's ends)
======================  ==========================================================================
``valley``              fastai's: the longest stretch over which the loss keeps falling (the
                        longest decreasing subsequence); the point about halfway through it.
                        fastai's default since v2.4 because steepest descent lands too early.
``steepest``            the steepest fall of the loss, ``argmin(np.gradient(loss))``:
                        torch-lr-finder's ``suggest_lr``; on an untrained net it often marks the
                        first drop of the loss, far below the LRs that train well.
``min_loss`` (default)  the LR of the lowest loss, divided by 10 (fastai's ``minimum``): a
                        cautious rule, since the minimum sits just before the loss explodes.
======================  ==========================================================================

Why ``min_loss`` is the default: on the main job (custom ResNet, Adam, OneCycle, 24 epochs, batch
512, JPEG copy; NVIDIA H200, ``results/gpu-nvidia-h200/gpu_report.json``, 2026-11-26) a 100-iteration
test suggested valley 2.54e-4, steepest 4.98e-5 and min_loss 2.42e-3. Trained at LRMAX 2.54e-4 the
model reached 87.93% test accuracy, at 2e-3 (the grid value nearest min_loss's) 89.87%, and the sweep's
best, 5e-3, 90.29% (seed 0 each): valley's suggestion cost 2.4 points, min_loss's 0.4. Steepest moved
between runs (4.98e-5 in the report, 2.78e-1 in notebook 03's test of the same run).

Sources: Smith, "Cyclical Learning Rates for Training Neural Networks", 2017 (the test);
fastai ``fastai/callback/schedule.py`` (``valley``, ``minimum``, ``steep``); torch-lr-finder
``LRFinder.plot(suggest_lr=True)``.

Example::

    suggest_lrs(lrs, losses)   # {"valley": 2.1e-3, "steepest": 1.1e-4, "min_loss": 3.0e-3}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cifarhelpers.errors import ConfigError

#: Points skipped at each end of the curve before suggesting an LR (torch-lr-finder's defaults):
#: the first ones are noise around the initial loss, the last ones the explosion.
SKIP_START, SKIP_END = 10, 5


def steepest_lr(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The LR where the loss falls fastest: ``lrs[argmin(np.gradient(losses))]``."""
    return float(lrs[int(np.gradient(losses).argmin())])


def valley_lr(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's valley rule: the longest decreasing subsequence of ``losses`` ends at ``end`` and
    has ``k`` points; with ``start = end - k`` and ``s = (end - start) / 3`` the suggestion is the LR
    at ``start + int(s) + int(s / 2)``, about halfway into the valley (fastai's arithmetic, kept
    exactly; a curve that never falls gives its first point)."""
    n = len(losses)
    run = np.ones(n, dtype=int)  # run[i]: length of the longest decreasing subsequence ending at i
    for i in range(1, n):
        earlier = run[:i][losses[:i] > losses[i]]
        if len(earlier):
            run[i] = earlier.max() + 1
    end = int(np.argmax(run))  # the first index with the longest run, as fastai's strict update
    start = end - int(run[end])
    sections = (end - start) / 3
    return float(lrs[max(start + int(sections) + int(sections / 2), 0)])


def min_loss_lr(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The LR of the lowest loss, divided by 10."""
    return float(lrs[int(np.argmin(losses))]) / 10.0


#: The rules by name (see the module docstring).
RULES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "valley": valley_lr,
    "steepest": steepest_lr,
    "min_loss": min_loss_lr,
}
DEFAULT_RULE = "min_loss"  # measured on the main job: see the module docstring


def suggest_lrs(lrs: Sequence[float], losses: Sequence[float], skip_start: int = SKIP_START,
                skip_end: int = SKIP_END) -> dict[str, float]:
    """Every rule's suggestion for one curve.

    Args:
        lrs: the LR of each iteration, increasing.
        losses: the smoothed training loss of each iteration.
        skip_start, skip_end: points ignored at each end.

    Returns:
        ``{rule: LR}`` for every rule in :data:`RULES`.

    Raises:
        ConfigError: fewer than 2 points remain after skipping, or ``lrs`` and ``losses`` differ in length.
    """
    if len(lrs) != len(losses):
        raise ConfigError(f"{len(lrs)} LRs but {len(losses)} losses: a curve needs one loss per LR")
    end = len(lrs) - skip_end
    if end - skip_start < 2:
        raise ConfigError(f"a curve of {len(lrs)} points leaves {max(end - skip_start, 0)} after skipping "
                          f"{skip_start} + {skip_end}: run the LR range test with more iterations")
    kept_lrs = np.asarray(lrs[skip_start:end], dtype=float)
    kept_losses = np.asarray(losses[skip_start:end], dtype=float)
    return {name: rule(kept_lrs, kept_losses) for name, rule in RULES.items()}
