"""Building blocks shared by the models: 3x3 convolution units and the residual block."""

from __future__ import annotations

import torch
from torch import nn


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
