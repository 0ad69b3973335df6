"""Target architectures (a registry of builders) and the auxiliary heads attached to them."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..registry import ARCHITECTURES, ArchitectureInfo

# A builder takes the class count and returns a fresh, randomly initialised network whose
# forward maps images to logits; each module below registers an ``ArchitectureInfo`` per network.
ArchitectureBuilder = Callable[[int], nn.Module]
__all__ = ["ARCHITECTURES", "ArchitectureInfo", "ArchitectureBuilder", "build_architecture", "check_input_kind",
           "parameter_count"]

# they register themselves
from . import cifar_resnet, resnet3d, tiny, torchvision_archs, vgg, video_archs  # noqa: E402,F401


def build_architecture(name: str, num_classes: int) -> nn.Module:
    return ARCHITECTURES.get(name).build(num_classes)


def check_input_kind(name: str, clip_len: int) -> None:
    """One sentence when a video network (``clip_len`` > 0 in its entry) meets images, or an image
    network meets clips (``clip_len``: the data's frames per clip, 0 for images)."""
    from ..errors import UserInputError

    video_net = ARCHITECTURES.get(name).clip_len > 0
    if video_net and not clip_len:
        raise UserInputError(f"architecture {name} is a video network (it takes clips of frames); the data are images")
    if clip_len and not video_net:
        raise UserInputError(f"architecture {name} is an image network; the data are video clips, which need a "
                             "video network (tiny3d, small3d, resnet3d_18, r3d_18, ...)")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
