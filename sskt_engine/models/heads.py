"""Auxiliary heads that predict a source's distribution over the source's classes."""

from __future__ import annotations

import torch
import torch.nn as nn


class LinearHead(nn.Module):
    """One linear layer on the pooled penultimate feature."""

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(feature_dim, num_classes)

    def forward(self, feature: torch.Tensor, stages: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(torch.flatten(feature, 1))


def _branch(in_channels: int, width: int, middle: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, middle, 1, bias=False), nn.BatchNorm2d(middle), nn.ReLU(inplace=True),
        nn.Conv2d(middle, middle, 3, 2, 1, bias=False), nn.BatchNorm2d(middle), nn.ReLU(inplace=True),
        nn.Conv2d(middle, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
    )


class TransferModule(nn.Module):
    """SSKT's transfer module: one branch per backbone stage to a common width, each
    globally pooled, the branches averaged, then a linear layer to the source's classes."""

    def __init__(self, stage_channels: tuple[int, ...], num_classes: int, width: int = 64, middle: int = 32):
        super().__init__()
        self.branches = nn.ModuleList(_branch(c, width, middle) for c in stage_channels)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, feature: torch.Tensor, stages: list[torch.Tensor]) -> torch.Tensor:
        pooled = [branch(stage).mean(dim=(2, 3)) for branch, stage in zip(self.branches, stages)]
        return self.fc(torch.stack(pooled).mean(dim=0))


def transfer_width(stage_channels: tuple[int, ...], requested: int) -> tuple[int, int]:
    """The paper's widths: 64 (middle 32) for CIFAR-sized backbones, 1000 (middle 500) for
    ImageNet-sized ones; a requested width keeps the same 2:1 ratio."""
    if requested > 0:
        return requested, max(1, requested // 2)
    return (1000, 500) if max(stage_channels) >= 1024 else (64, 32)
