"""Small networks: fast tests, and the built-in demo's source and target."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import ARCHITECTURES, ArchitectureInfo


def _conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class TinyConvNet(nn.Module):
    """Three stages (one conv each, stride 2 between) and a linear classifier."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (8, 16, 32)):
        super().__init__()
        self.stage1 = _conv_bn(3, widths[0])
        self.stage2 = _conv_bn(widths[0], widths[1], 2)
        self.stage3 = _conv_bn(widths[1], widths[2], 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class SmallConvNet(nn.Module):
    """Six convolutions in three stages: the demo's source network (about 0.3 M parameters)."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn(3, widths[0]), _conv_bn(widths[0], widths[0]))
        self.stage2 = nn.Sequential(_conv_bn(widths[0], widths[1], 2), _conv_bn(widths[1], widths[1]))
        self.stage3 = nn.Sequential(_conv_bn(widths[1], widths[2], 2), _conv_bn(widths[2], widths[2]))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


ARCHITECTURES.add(ArchitectureInfo(name="tiny_cnn", build=TinyConvNet, input_size=32, family="small",
                                   description="3-layer CNN (8-16-32 channels) for tests and quick trials"))
ARCHITECTURES.add(ArchitectureInfo(name="small_cnn", build=SmallConvNet, input_size=32, family="small",
                                   description="6-layer CNN (32-64-128 channels), the demo's source network"))
