"""VGG16 with batch norm for 32-pixel images (the CIFAR variant used by MAXL and SSKT)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import ARCHITECTURES, ArchitectureInfo

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class CifarVGG(nn.Module):
    def __init__(self, num_classes: int, plan: tuple = _VGG16):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1, bias=False), nn.BatchNorm2d(item),
                           nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


ARCHITECTURES.add(ArchitectureInfo(name="vgg16_bn_cifar", build=CifarVGG, input_size=32, family="VGG",
                                   description="VGG16 with batch norm for 32 px images"))
