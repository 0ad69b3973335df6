"""ImageNet architectures from torchvision, built without weights as targets."""

from __future__ import annotations

import torchvision

from ..registry import ARCHITECTURES, ArchitectureInfo

_TORCHVISION_TARGETS = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3_small": "MobileNetV3 small",
    "efficientnet_b0": "EfficientNet-B0",
}


def _register(name: str, title: str) -> None:
    ARCHITECTURES.add(ArchitectureInfo(
        name=name,
        build=lambda num_classes, name=name: torchvision.models.get_model(name, weights=None, num_classes=num_classes),
        input_size=224, family="torchvision", torchvision_name=name, description=f"torchvision {title}"))


for _name, _title in _TORCHVISION_TARGETS.items():
    _register(_name, _title)
