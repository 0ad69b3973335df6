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


def _branch(in_channels: int, width: int, middle: int, rank: int = 4) -> nn.Sequential:
    """``rank`` 5: the same branch in 3D for a video backbone's stages [B, C, T, H, W] (the 3x3
    convolution becomes 3x3x3 with stride 2 in time and space)."""
    conv, norm = (nn.Conv3d, nn.BatchNorm3d) if rank == 5 else (nn.Conv2d, nn.BatchNorm2d)
    return nn.Sequential(
        conv(in_channels, middle, 1, bias=False), norm(middle), nn.ReLU(inplace=True),
        conv(middle, middle, 3, 2, 1, bias=False), norm(middle), nn.ReLU(inplace=True),
        conv(middle, width, 1, bias=False), norm(width), nn.ReLU(inplace=True),
    )


class TransferModule(nn.Module):
    """SSKT's transfer module: one branch per backbone stage to a common width, each
    globally pooled, the branches averaged, then a linear layer to the source's classes."""

    def __init__(self, stage_channels: tuple[int, ...], num_classes: int, width: int = 64, middle: int = 32,
                 rank: int = 4):
        super().__init__()
        self.branches = nn.ModuleList(_branch(c, width, middle, rank) for c in stage_channels)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, feature: torch.Tensor, stages: list[torch.Tensor]) -> torch.Tensor:
        # global average pool over every position (space, and time for clips)
        pooled = [branch(stage).flatten(2).mean(dim=2) for branch, stage in zip(self.branches, stages)]
        return self.fc(torch.stack(pooled).mean(dim=0))


def transfer_width(stage_channels: tuple[int, ...], requested: int, imagenet_style: bool = False) -> tuple[int, int]:
    """The paper's widths: 64 (middle 32) for CIFAR-style backbones, 1000 (middle 500) for
    ImageNet-style ones. ``imagenet_style``: an architecture made for 224 px inputs (the authors'
    code gives every ImageNet ResNet 1000/500, ResNet-18 and -34 included); an unknown backbone
    is judged by its widths (1024 channels or more). A requested width keeps the same 2:1 ratio."""
    if requested > 0:
        return requested, max(1, requested // 2)
    return (1000, 500) if imagenet_style or max(stage_channels) >= 1024 else (64, 32)
