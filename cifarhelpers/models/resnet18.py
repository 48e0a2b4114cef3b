"""ResNet-18 for 32x32 inputs with GroupNorm in place of BatchNorm.

He et al., "Deep Residual Learning for Image Recognition" (2016, https://arxiv.org/abs/1512.03385),
in the CIFAR form popularised by https://github.com/kuangliu/pytorch-cifar (3x3 stem, no stem
pooling); GroupNorm from Wu & He, "Group Normalization" (2018, https://arxiv.org/abs/1803.08494).
11,173,962 parameters for 10 classes, whatever the number of groups.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_logit_scale, scale_logits


class BasicBlock(nn.Module):
    """conv3x3-GN-ReLU-conv3x3-GN plus the shortcut, then ReLU. The shortcut is the identity,
    or a 1x1 projection with its own GroupNorm when the stride or width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, num_groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(num_groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(num_groups, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.GroupNorm(num_groups, out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (BasicBlocks [2, 2, 2, 2], widths 64-128-256-512) for (N, 3, 32, 32) inputs.

    Args:
        num_classes: output logits.
        num_groups: GroupNorm groups; must divide 64 (and so every width). 32 is Wu & He's default;
            1 gives LayerNorm-like, 64 InstanceNorm-like normalization.
        logit_scale: the logits are multiplied by it (:func:`~cifarhelpers.models.layers.scale_logits`), finite > 0.

    Raises:
        ValueError: ``num_groups`` does not divide 64, or ``logit_scale`` is not a finite number > 0.
    """

    def __init__(self, num_classes: int = 10, num_groups: int = 32, logit_scale: float = 1.0):
        super().__init__()
        self.logit_scale = check_logit_scale(logit_scale)
        if not isinstance(num_groups, int) or num_groups < 1 or 64 % num_groups:
            raise ValueError(f"num_groups={num_groups!r} must be a positive divisor of 64 (1, 2, 4, 8, 16, 32, 64)")
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.GroupNorm(num_groups, 64),
                                  nn.ReLU(inplace=True))
        layers, in_channels = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(in_channels, width, stride, num_groups),
                                        BasicBlock(width, width, 1, num_groups)))
            in_channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return scale_logits(self.fc(torch.flatten(self.pool(x), 1)), self.logit_scale)
