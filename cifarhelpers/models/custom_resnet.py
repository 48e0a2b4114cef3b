"""The "custom ResNet" of the main job: a ResNet-9 variant after David Page's DAWNBench entry.

Page, "How to train your ResNet" (2018), https://myrtle.ai/learn/how-to-train-your-resnet/ and
https://github.com/davidcpage/cifar10-fast. 6,573,130 parameters for 10 classes.

=========  ==========================================================  ===============
layer      operations                                                  output (N, C, H, W)
=========  ==========================================================  ===============
prep       conv3x3 64 -> BN -> ReLU                                    (N, 64, 32, 32)
layer1     X = conv3x3 128 -> MaxPool2d(2) -> BN -> ReLU;               (N, 128, 16, 16)
           R1 = (conv3x3 128 -> BN -> ReLU) x 2; X + R1
layer2     conv3x3 256 -> MaxPool2d(2) -> BN -> ReLU                    (N, 256, 8, 8)
layer3     like layer1 with 512                                        (N, 512, 4, 4)
pool       MaxPool2d(4)                                                (N, 512, 1, 1)
fc         Linear(512, 10), times ``logit_scale``                      (N, 10) logits
=========  ==========================================================  ===============
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBNReLU, ConvPoolBNReLU, ResLayer, check_logit_scale, scale_logits


class CustomResNet(nn.Module):
    """Custom ResNet for (N, 3, 32, 32) float inputs; returns (N, num_classes) logits.

    Train it with ``nn.CrossEntropyLoss`` (the model applies no softmax). GradCAM's usual target
    layer is ``layer3`` (4x4 maps) or ``layer2`` (8x8).

    Args:
        num_classes: output logits.
        logit_scale: the logits are multiplied by it (:func:`~cifarhelpers.models.layers.scale_logits`;
            cifar10-fast's ResNet-9 uses 0.125), finite > 0.

    Raises:
        ValueError: ``logit_scale`` is not a finite number > 0.
    """

    def __init__(self, num_classes: int = 10, logit_scale: float = 1.0):
        super().__init__()
        self.logit_scale = check_logit_scale(logit_scale)
        self.prep = ConvBNReLU(3, 64)
        self.layer1 = ResLayer(64, 128)
        self.layer2 = ConvPoolBNReLU(128, 256)
        self.layer3 = ResLayer(256, 512)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return scale_logits(self.fc(torch.flatten(self.pool(x), 1)), self.logit_scale)
