"""The target network: any backbone plus one auxiliary head per source.

Hooks found by ``probe_layout`` capture the stage outputs and the penultimate
feature during the backbone's own forward pass, so the backbone runs once and
its code is untouched; ``backbone`` alone is what gets exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .heads import LinearHead, TransferModule, transfer_width
from .introspect import BackboneLayout, probe_layout


@dataclass
class TargetOutput:
    logits: torch.Tensor
    aux_logits: list[torch.Tensor]


class TargetNetwork(nn.Module):
    def __init__(self, backbone: nn.Module, input_size: int, aux_classes: list[int] | tuple[int, ...] = (),
                 head: str = "linear", width: int = 0, clip_len: int = 0, imagenet_style: bool = False):
        """``clip_len`` > 0: the backbone is a video network taking clips of that many frames.
        ``imagenet_style``: an architecture made for 224 px inputs (transfer modules 1000 wide)."""
        super().__init__()
        self.backbone = backbone
        self.head_kind = head
        self.clip_len = clip_len
        self.layout: BackboneLayout = probe_layout(backbone, input_size, clip_len=clip_len)
        heads: list[nn.Module] = []
        for classes in aux_classes:
            if head == "linear":
                heads.append(LinearHead(self.layout.feature_dim, classes))
            elif head == "transfer_module":
                w, middle = transfer_width(self.layout.stage_channels, width, imagenet_style)
                heads.append(TransferModule(self.layout.stage_channels, classes, w, middle, self.layout.stage_rank))
            else:
                raise ValueError(f"unknown head {head!r}")
        self.aux_heads = nn.ModuleList(heads)
        # backbone modules frozen by target.frozen_stages (target_init.freeze_first_stages): kept in
        # eval mode, so their BatchNorm statistics stay those of the pretrained weights
        self.frozen_modules: tuple[str, ...] = ()
        self._stages: list[torch.Tensor | None] = [None] * len(self.layout.stage_modules)
        self._feature: torch.Tensor | None = None
        self._handles = []
        if heads:
            self._install_hooks()

    def train(self, mode: bool = True) -> "TargetNetwork":
        super().train(mode)
        if mode and self.frozen_modules:
            modules = dict(self.backbone.named_modules())
            for name in self.frozen_modules:
                modules[name].eval()
        return self

    def _install_hooks(self) -> None:
        modules = dict(self.backbone.named_modules())
        if self.head_kind == "transfer_module":
            for index, name in enumerate(self.layout.stage_modules):
                self._handles.append(modules[name].register_forward_hook(self._stage_hook(index)))
        elif self.layout.classifier is not None:
            self._handles.append(modules[self.layout.classifier].register_forward_pre_hook(self._feature_hook))
        else:
            last = self.layout.stage_modules[-1]
            self._handles.append(modules[last].register_forward_hook(self._pooled_hook))

    def _stage_hook(self, index: int):
        def hook(module, args, output):
            self._stages[index] = output

        return hook

    def _feature_hook(self, module, args):
        self._feature = args[0]

    def _pooled_hook(self, module, args, output):
        self._feature = output.flatten(2).mean(dim=2)  # over space (and time for clips)

    def forward(self, x: torch.Tensor) -> TargetOutput:
        logits = self.backbone(x)
        if not self.aux_heads:
            return TargetOutput(logits, [])
        stages = list(self._stages)
        aux = [head(self._feature, stages) for head in self.aux_heads]
        self._stages = [None] * len(self._stages)
        self._feature = None
        return TargetOutput(logits, aux)
