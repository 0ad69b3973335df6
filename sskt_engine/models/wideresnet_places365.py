"""The CSAIL Places365 "wideresnet18": a ResNet-18 whose last stage keeps the 14x14 resolution.

The Places365 authors (places365/wideresnet.py) trained it for class activation maps: the same
blocks and parameter names as torchvision's ResNet-18, but ``layer4`` has stride 1, so the last
feature map of a 224 px image is 14x14 (not 7x7), then a 14x14 average pool and ``fc``. Their
pool is a fixed ``AvgPool2d(14)``, which is the global average at 224 px; it is written here as
an adaptive global average, identical at 224 px and usable at the other sizes a source may be
fed. Its checkpoint ``wideresnet18_places365.pth.tar`` loads into this module unchanged (after
the ``module.`` prefix is stripped).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock


class PlacesWideResNet18(nn.Module):
    def __init__(self, num_classes: int = 365):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2, stride=1)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=1)  # the one difference from ResNet-18
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():  # the authors' initialisation (matters only for a network trained here)
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers.extend(BasicBlock(planes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
