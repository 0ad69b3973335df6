"""Video architectures besides the 3D ResNets: torchvision's video models and a tiny 3D CNN for
tests and the video demo. All take clips [B, 3, T, H, W] (torchvision's video layout)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import ARCHITECTURES, ArchitectureInfo

# torchvision name -> title; each has Kinetics-400 weights (KINETICS400_V1) for target initialisation
_TORCHVISION_VIDEO = {
    "r3d_18": "R3D-18 (3D ResNet-18, Tran et al. 2018)",
    "mc3_18": "MC3-18 (mixed 3D/2D convolutions)",
    "r2plus1d_18": "R(2+1)D-18 (factorised spatial and temporal convolutions)",
}


def _register_torchvision(name: str, title: str) -> None:
    def build(num_classes: int, name: str = name) -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    ARCHITECTURES.add(ArchitectureInfo(name=name, build=build, input_size=112, clip_len=16, family="torchvision video",
                                       torchvision_name=name, description=f"torchvision {title}"))


for _name, _title in _TORCHVISION_VIDEO.items():
    _register_torchvision(_name, _title)


def _conv_bn3d(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, 3, stride, 1, bias=False),
                         nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


class Tiny3dNet(nn.Module):
    """Three stages of 3x3x3 convolutions (8, 16, 32 channels; stride 2 in time and space between
    them) and a linear classifier: about 18 k parameters, any clip length and side."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (8, 16, 32)):
        super().__init__()
        self.stage1 = _conv_bn3d(3, widths[0])
        self.stage2 = _conv_bn3d(widths[0], widths[1], 2)
        self.stage3 = _conv_bn3d(widths[1], widths[2], 2)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


ARCHITECTURES.add(ArchitectureInfo(name="tiny3d", build=Tiny3dNet, input_size=32, clip_len=8, family="small",
                                   description="3-layer 3D CNN (8-16-32 channels) for clips: tests and the video "
                                               "demo"))


class Residual3dNet(nn.Module):
    """A strided stem (half the side), then three basic blocks with option-A shortcuts (16, 32, 64
    channels; stride 2 in time and space from the second on). ``temporal`` is the extent in time
    of the convolutions of the stem and of each block: 3 everywhere is ``small3d``, 1 (each frame
    on its own) everywhere but the last block is ``late3d``."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (16, 32, 64),
                 temporal: tuple[int, int, int, int] = (3, 3, 3, 3)):
        super().__init__()
        from .resnet3d import BasicBlock3d

        stem_time = temporal[0]
        self.stem = nn.Sequential(nn.Conv3d(3, widths[0], (stem_time, 3, 3), (1, 2, 2), (stem_time // 2, 1, 1),
                                            bias=False),
                                  nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        self.layer1 = BasicBlock3d(widths[0], widths[0], temporal=temporal[1])
        self.layer2 = BasicBlock3d(widths[0], widths[1], 2, temporal=temporal[2])
        self.layer3 = BasicBlock3d(widths[1], widths[2], 2, temporal=temporal[3])
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class Small3dNet(Residual3dNet):
    """``Residual3dNet`` with 3x3x3 convolutions throughout: about 0.22 M parameters. It was the
    video demo's target until ``Late3dNet``: it learns how the demo's glyphs move but not which
    glyph moves."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__(num_classes, widths, temporal=(3, 3, 3, 3))


ARCHITECTURES.add(ArchitectureInfo(name="small3d", build=Small3dNet, input_size=32, clip_len=8, family="small",
                                   description="3D CNN with three residual blocks (16-32-64 channels), 3x3x3 "
                                               "convolutions throughout"))


class Late3dNet(Residual3dNet):
    """``small3d``'s layout with temporal convolutions only in the last block; the stem and the
    first two blocks see each frame on its own (1x3x3 kernels), as the slow pathway of SlowFast
    (Feichtenhofer et al., ICCV 2019), which found temporal convolutions in early stages hurt when
    things move. Why here: on the video demo's 240 labelled clips, small3d (3x3x3 everywhere)
    learned the motion but not what the moving glyph is (27 % for the 4-way sign on held-out
    training clips, chance 25 %), this layout learned both (67 % sign, 98 % motion) at 0.4x
    small3d's time. About 0.19 M parameters."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__(num_classes, widths, temporal=(1, 1, 1, 3))


ARCHITECTURES.add(ArchitectureInfo(name="late3d", build=Late3dNet, input_size=32, clip_len=8, family="small",
                                   description="3D CNN with three residual blocks (16-32-64 channels), temporal "
                                               "convolutions only in the last: the video demo's target"))
