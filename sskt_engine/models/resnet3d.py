"""3D ResNets for clips (Hara, Kataoka, Satoh, "Can Spatiotemporal 3D CNNs Retrace the History of
2D CNNs and ImageNet?", CVPR 2018), with option-A shortcuts: the variant the SSKT authors trained
on UCF101 and HMDB51, and whose Kinetics-400 checkpoints they fine-tuned.

Layout and parameter names follow the authors' 3D-ResNets-PyTorch code (``conv1``, ``bn1``,
``layer1``..``layer4``, ``fc``; no shortcut parameters), so their ``resnet-18-kinetics.pth`` state
dict loads by name once DataParallel's ``module.`` prefix is stripped. Two deliberate
differences, neither of which changes the numbers at their 16 x 112 x 112 clips: the final
pool is adaptive (any clip length and side work; theirs was sized for one input), and the
option-A shortcut is a module (theirs was a function), so that the network traces to
TorchScript and ONNX and the probe that attaches SSKT's heads sees it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import ARCHITECTURES, ArchitectureInfo

CLIP_LEN = 16  # the authors' sample_duration
CLIP_SIDE = 112  # the authors' sample_size


class PadShortcut3d(nn.Module):
    """Option A in 3D: subsample time and space by ``stride`` (one for both, or (time, space)),
    append zero channels; no parameters (the authors' ``downsample_basic_block``: avg_pool3d with
    kernel 1 is a subsampling)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple[int, int]):
        super().__init__()
        self.time, self.space = (stride, stride) if isinstance(stride, int) else stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.time, ::self.space, ::self.space]
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.extra))  # the new channels come last, as theirs


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convolutions and an option-A shortcut. ``stride`` is one for time and space, or
    (time, space); ``temporal`` is the convolutions' extent in time (3 as the authors'; 1 sees
    each frame on its own, a 2D block applied per frame, as ``late3d``'s early blocks)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple[int, int] = 1, temporal: int = 3):
        super().__init__()
        time, space = (stride, stride) if isinstance(stride, int) else stride
        kernel, padding = (temporal, 3, 3), (temporal // 2, 1, 1)
        self.conv1 = nn.Conv3d(in_channels, out_channels, kernel, (time, space, space), padding, bias=False)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel, 1, padding, bias=False)
        self.bn2 = nn.BatchNorm3d(out_channels)
        if (time, space) != (1, 1) or in_channels != out_channels:
            self.shortcut: nn.Module = PadShortcut3d(in_channels, out_channels, (time, space))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet3d(nn.Module):
    """Stem (7x7x7 convolution, stride 1 in time and 2 in space; 3x3x3 max pool, stride 2),
    four stages of basic blocks (64, 128, 256, 512 channels; stride 2 from the second on)."""

    def __init__(self, blocks: tuple[int, int, int, int], num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, 7, (1, 2, 2), 3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, 2, 1)
        channels = 64
        stages = []
        for index, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            stage = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(BasicBlock3d(channels, width, stride))
                channels = width
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():  # the authors' initialisation
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def _register(depth: int) -> None:
    ARCHITECTURES.add(ArchitectureInfo(
        name=f"resnet3d_{depth}", build=lambda num_classes, depth=depth: ResNet3d(_DEPTHS[depth], num_classes),
        input_size=CLIP_SIDE, clip_len=CLIP_LEN, family="3D ResNet",
        description=f"3D ResNet-{depth} for clips, option-A shortcuts (Hara et al. 2018; the SSKT authors' video "
                    "target)"))


for _depth in _DEPTHS:
    _register(_depth)
