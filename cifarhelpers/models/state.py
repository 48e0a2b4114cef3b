"""Looking at a model without leaving a trace: its train/eval modes and gradients as they were.

Summaries, receptive-field walks, GradCAM and the LR range test all run a model the caller owns;
afterwards every module must be back in the mode it was in and every ``.grad`` as it was.

Example::

    with preserved(model, grads=True):
        model.eval()
        ...                      # forward and backward passes
    # model.training, every submodule's mode and every p.grad are back
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def preserved(model: nn.Module, *, grads: bool = False) -> Iterator[nn.Module]:
    """Restore ``model``'s train/eval modes (each submodule's own) on exit, and with ``grads=True``
    every parameter's ``.grad`` too (a copy taken on entry, so in-place accumulation inside the
    block does not leak out; ``None`` stays ``None``). Runs on exit whatever happens inside.

    Parameters stay the same objects when the block moves the model between devices
    (``nn.Module.to``), so restored gradients follow them to their device.

    Yields:
        ``model`` itself.
    """
    modes = [(module, module.training) for module in model.modules()]
    saved = [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()] if grads else []
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for p, grad in saved:
            p.grad = None if grad is None else grad.to(p.device)
