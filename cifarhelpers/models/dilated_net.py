"""DilatedNet: a CIFAR-10 net under 200,000 parameters with no max pooling.

Downsampling by stride-2 convolutions, a dilated convolution (dilation 2) to widen the receptive
field cheaply, depthwise-separable convolutions (Howard et al., "MobileNets", 2017,
https://arxiv.org/abs/1704.04861) for most layers, BatchNorm and dropout after every unit, global
average pooling and a 1x1 convolution as the classifier head. 193,535 parameters; receptive
field 67 pixels at the output (``cifarhelpers.models.receptive_field``). Trained with the
``affine_cutout16`` transform set; it targets 85% test accuracy.

=========  ==============================================  ===============
stage      units                                           output (C, H, W)
=========  ==============================================  ===============
stem       DWSep 3->16                                     (16, 32, 32)
block1     Conv 16->32; Conv 32->32 stride 2               (32, 16, 16)
block2     DWSep 32->96; DWSep 96->96; DWSep 96->104 s2    (104, 8, 8)
block3     Conv 104->104 dilation 2; DWSep 104->104;       (156, 4, 4)
           DWSep 104->156 stride 2
block4     DWSep 156->156                                  (156, 4, 4)
head       global average pool; conv1x1 156->10            (10,) logits
=========  ==============================================  ===============
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_logit_scale, scale_logits


class ConvUnit(nn.Sequential):
    """conv3x3 (stride, dilation; padding keeps the size at stride 1) -> BN -> ReLU -> Dropout."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, dropout: float = 0.05):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )


class DepthwiseSeparable(nn.Sequential):
    """Depthwise conv3x3 (one filter per channel) -> pointwise conv1x1 -> BN -> ReLU -> Dropout.

    9*C_in + C_in*C_out weights instead of a full conv's 9*C_in*C_out.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.05):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )


class DilatedNet(nn.Module):
    """The sub-200k-parameter net for (N, 3, 32, 32) inputs; returns (N, num_classes) logits.

    Args:
        num_classes: output logits.
        dropout: dropout probability after every unit.
        logit_scale: the logits are multiplied by it (:func:`~cifarhelpers.models.layers.scale_logits`), finite > 0.

    Raises:
        ValueError: ``logit_scale`` is not a finite number > 0.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.05, logit_scale: float = 1.0):
        super().__init__()
        self.logit_scale = check_logit_scale(logit_scale)
        self.stem = DepthwiseSeparable(3, 16, dropout=dropout)
        self.block1 = nn.Sequential(ConvUnit(16, 32, dropout=dropout), ConvUnit(32, 32, stride=2, dropout=dropout))
        self.block2 = nn.Sequential(
            DepthwiseSeparable(32, 96, dropout=dropout), DepthwiseSeparable(96, 96, dropout=dropout),
            DepthwiseSeparable(96, 104, stride=2, dropout=dropout))
        self.block3 = nn.Sequential(
            ConvUnit(104, 104, dilation=2, dropout=dropout), DepthwiseSeparable(104, 104, dropout=dropout),
            DepthwiseSeparable(104, 156, stride=2, dropout=dropout))
        self.block4 = DepthwiseSeparable(156, 156, dropout=dropout)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Conv2d(156, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block4(self.block3(self.block2(self.block1(self.stem(x)))))
        return scale_logits(torch.flatten(self.head(self.pool(x)), 1), self.logit_scale)
