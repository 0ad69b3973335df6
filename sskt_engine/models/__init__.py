"""Target architectures (a registry of builders) and the auxiliary heads attached to them."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..registry import ARCHITECTURES, ArchitectureInfo

# A builder takes the class count and returns a fresh, randomly initialised network whose
# forward maps images to logits; each module below registers an ``ArchitectureInfo`` per network.
ArchitectureBuilder = Callable[[int], nn.Module]
__all__ = ["ARCHITECTURES", "ArchitectureInfo", "ArchitectureBuilder", "build_architecture", "parameter_count"]

from . import cifar_resnet, tiny, torchvision_archs, vgg  # noqa: E402,F401  (they register themselves)


def build_architecture(name: str, num_classes: int) -> nn.Module:
    return ARCHITECTURES.get(name).build(num_classes)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
