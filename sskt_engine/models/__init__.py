"""Target architectures (a registry of builders) and the auxiliary heads attached to them."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..registry import Registry

# A builder takes the class count and returns a fresh, randomly initialised network
# whose forward maps images to logits. Metadata: input_size (the side it was designed
# for), family, description, and for torchvision models the name torchvision knows.
ArchitectureBuilder = Callable[[int], nn.Module]
ARCHITECTURES: Registry[ArchitectureBuilder] = Registry("architecture")

from . import cifar_resnet, tiny, torchvision_archs, vgg  # noqa: E402,F401  (they register themselves)


def build_architecture(name: str, num_classes: int) -> nn.Module:
    return ARCHITECTURES.get(name)(num_classes)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
