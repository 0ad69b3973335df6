"""An example SSKT Studio architecture plugin.

SSKT Studio calls ``register(registry)`` (the target of this package's entry point in the
``sskt_studio.architectures`` group, see ``pyproject.toml``) once at start. ``registry``
behaves like ``sskt_engine.models.ARCHITECTURES``: ``registry.add(name, builder, **meta)``.

A builder takes the class count and returns a fresh network whose ``forward`` maps a batch of
images ``(N, 3, H, W)`` to logits ``(N, num_classes)``. SSKT attaches its auxiliary heads to the
network's stages generically, so any such network can be a target; with a checkpoint file of
its weights it can also be a source (kind ``checkpoint``, ``arch: example_net``).

Metadata the app shows and uses: ``input_size`` (the side the network was designed for),
``family`` and ``description``. This package imports nothing from SSKT Studio, so it can be
installed and imported without it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ExampleNet", "register"]


class ExampleNet(nn.Module):
    """Two conv stages with a residual connection in the second, global pooling, a linear classifier."""

    def __init__(self, num_classes: int, width: int = 12):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(2 * width), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        x = self.down(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


def register(registry) -> None:
    registry.add("example_net", ExampleNet, input_size=32, family="example plugin",
                 description="2-stage residual CNN from the example plugin package")
