"""Auxiliary heads attach to every registered architecture, with 1 and 2 sources."""

from __future__ import annotations

import pytest
import torch

from sskt_engine.models import ARCHITECTURES, build_architecture
from sskt_engine.models.target import TargetNetwork

# Small inputs keep ImageNet-sized networks fast; the probe adapts to the input size.
SIDE = {"torchvision": 64}


@pytest.mark.parametrize("head", ["linear", "transfer_module"])
@pytest.mark.parametrize("sources", [[7], [7, 11]])
@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES.keys() if not ARCHITECTURES.get(a).clip_len])
def test_heads_on_every_architecture(arch, sources, head):
    """Image networks; the video networks (clips [B, 3, T, H, W]) in tests/test_video_models.py."""
    torch.manual_seed(0)
    side = SIDE.get(ARCHITECTURES.get(arch).family, 32)
    net = TargetNetwork(build_architecture(arch, 5), side, sources, head)
    x = torch.randn(2, 3, side, side)
    out = net(x)
    assert out.logits.shape == (2, 5)
    assert [a.shape for a in out.aux_logits] == [(2, c) for c in sources]
    # the auxiliary loss alone must reach the backbone's first layers
    sum(a.square().mean() for a in out.aux_logits).backward()
    first = next(p for p in net.backbone.parameters() if p.dim() == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert len(net.layout.stage_modules) >= 3 if head == "transfer_module" else True


def test_transfer_module_reads_every_stage_of_a_cifar_resnet():
    net = TargetNetwork(build_architecture("resnet20", 10), 32, [100], "transfer_module")
    assert net.layout.stage_channels == (16, 32, 64)
    assert net.layout.stage_sizes == ((32, 32), (16, 16), (8, 8))
    branch = net.aux_heads[0].branches[0]
    assert branch[0].out_channels == 32 and branch[6].out_channels == 64  # the paper's 64/32 widths


def test_imagenet_backbone_gets_wide_transfer_module():
    net = TargetNetwork(build_architecture("resnet50", 10), 64, [365], "transfer_module")
    assert net.aux_heads[0].fc.in_features == 1000  # paper: width 1000, middle 500 for ImageNet ResNets
    assert net.layout.stage_channels == (256, 512, 1024, 2048)


def test_no_sources_means_no_hooks_and_plain_logits():
    net = TargetNetwork(build_architecture("tiny_cnn", 3), 32)
    out = net(torch.randn(1, 3, 32, 32))
    assert out.aux_logits == [] and out.logits.shape == (1, 3)
