"""Model summaries in torchsummary's table format, on an explicit device."""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from .state import preserved


def model_summary(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32),
                  device: torch.device | str | None = None) -> str:
    """torchsummary's layer table (output shape and parameters per layer, totals, sizes in MB).

    Args:
        model: the model; it is run once on a random (2, *input_size) batch in ``eval()`` mode,
            so BatchNorm running statistics are not changed, and its train/eval mode is restored.
        input_size: (C, H, W) of one input.
        device: where the model lives (``"cpu"`` or a CUDA device); by default the device of its
            first parameter. The model is not moved.

    Returns:
        The table as text (print it).

    Raises:
        ValueError: ``device`` is not where the model's parameters are.
    """
    from torchsummary import summary

    param_device = next(model.parameters()).device
    device = torch.device(device) if device is not None else param_device
    if device.type != param_device.type:
        raise ValueError(f"the model's parameters are on {param_device}, not {device}: move it with "
                         f"model.to({str(device)!r}) or pass device={str(param_device)!r}")
    buffer = io.StringIO()
    with preserved(model):
        model.eval()
        with contextlib.redirect_stdout(buffer):
            summary(model, input_size, device=device.type)
    return buffer.getvalue()
