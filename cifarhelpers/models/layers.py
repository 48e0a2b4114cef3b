"""Building blocks shared by the models: 3x3 convolution units, the residual block and the logit scale."""

from __future__ import annotations

import math

import torch
from torch import nn


def check_logit_scale(logit_scale: float) -> float:
    """``logit_scale`` as a float, after checking it is a finite number > 0.

    Raises:
        ValueError: not a finite number > 0 (a bool is refused too).
    """
    if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)) or not (
            math.isfinite(logit_scale) and logit_scale > 0):
        raise ValueError(f"logit_scale={logit_scale!r} must be a finite number > 0 (1.0: logits unscaled; "
                         "cifar10-fast's ResNet-9 uses 0.125)")
    return float(logit_scale)


def scale_logits(logits: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """``logits * logit_scale``, (N, num_classes) -> (N, num_classes); the tensor itself when the scale is 1.0.

    Every model ends with it: cifar10-fast's ResNet-9 multiplies its classifier's output by 0.125
    (``Mul(weight=0.125)``, https://github.com/davidcpage/cifar10-fast, ``dawn.py``), which softens the
    softmax at initialization and scales the gradients reaching the classifier. No parameter: the
    counts are unchanged.
    """
    return logits if logit_scale == 1.0 else logits * logit_scale


class ConvBNReLU(nn.Sequential):
    """conv3x3 (no bias, padding 1) -> BatchNorm2d -> ReLU. (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ConvPoolBNReLU(nn.Sequential):
    """conv3x3 -> MaxPool2d(2) -> BatchNorm2d -> ReLU. (N, C_in, H, W) -> (N, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ResBlock(nn.Sequential):
    """The residual branch R: (conv-BN-ReLU) x 2 at constant width; the caller adds it to its input."""

    def __init__(self, channels: int):
        super().__init__(ConvBNReLU(channels, channels), ConvBNReLU(channels, channels))


class ResLayer(nn.Module):
    """X = ConvPoolBNReLU(in, out); R = ResBlock(out); output X + R(X). Halves H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvPoolBNReLU(in_channels, out_channels)
        self.res = ResBlock(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x + self.res(x)
