"""FitNets-style hints (Romero et al., ICLR 2015), trained jointly: beside its labels, the target
learns to reproduce intermediate feature maps of the frozen sources through learned adapters.

    L = L_target(z, y) + hint_weight * sum_m sum_k MSE(adapter_mk(f_k(x)), resize(g_mk(x)))

``f_k`` is a tapped feature map of the target, ``g_mk`` the paired one of source m (both
[B, C, H, W]). The feature maps of two unrelated networks differ in width and resolution,
so each pair gets:

* a learned adapter, 1x1 conv + BatchNorm from the target's channels to the source's (FitNets'
  regressor), trained with the target and dropped at export, like the auxiliary heads;
* the source's map brought to the target's resolution: average pooling when it is larger
  (a 224 px ResNet-50's 14x14 third stage against a CIFAR ResNet's 8x8), bilinear when smaller
  (its 7x7 last stage).

Which features: by default the deepest ``method.stages`` stages of each network, found by
the same probing pass that attaches SSKT's heads (``feature_taps.stage_names``), paired from
the deepest; ``method.target_layers`` / ``method.source_layers`` name modules instead.

FitNets trained in two stages (hints first, then KD); the joint form here, with one weight,
is what torchdistill and most later comparisons run, and needs no second schedule. A source
must be a network whose layers can be hooked: not a compiled (TorchScript, .pt2) file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import MethodOptions, option
from ..data.batches import Batch
from ..errors import UserInputError
from ..feature_taps import FeatureTaps, feature_shapes, stage_names, untappable_reason
from ..registry import METHODS, MethodInfo
from .base import MethodContext, SingleNetworkMethod


@dataclass(frozen=True)
class FitNetsOptions(MethodOptions):
    name: str = option("fitnets", "Training method.")
    hint_weight: float = option(1.0, "Weight of the hint losses (target features matching the sources' features "
                                "through the adapters) against the target loss.", min=0.0, max=10000.0)
    stages: int = option(1, "How many of the deepest stages to pair, the target's with each source's (1: the last "
                         "stage of each); ignored when target_layers names them.", min=1, max=8)
    target_layers: tuple[str, ...] = option((), "Target modules whose outputs take the hints, by name (e.g. layer3); "
                                            "empty: the deepest stages, found by probing.")
    source_layers: tuple[str, ...] = option((), "Source modules that give the hints, by name, one per target layer "
                                            "and the same for every source; empty: each source's deepest stages.")


@dataclass(frozen=True)
class HintPair:
    """One target feature map matched to one source's feature map."""

    source: int  # index into the sources
    target_layer: str
    source_layer: str
    target_shape: tuple[int, int, int]  # (C, H, W) at the training resolution
    source_shape: tuple[int, int, int]  # (C, H, W) at the source's input size


def hint_adapter(target_channels: int, source_channels: int) -> nn.Module:
    """FitNets' regressor: target width to source width; BatchNorm keeps its output on the
    source's scale early in training, when the 1x1 conv is still random."""
    return nn.Sequential(nn.Conv2d(target_channels, source_channels, 1, bias=False), nn.BatchNorm2d(source_channels))


def match_resolution(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``features`` [B, C, h, w] at spatial ``size``: averaged down when larger (every source
    pixel counts), bilinear up otherwise."""
    if tuple(features.shape[-2:]) == tuple(size):
        return features
    if features.shape[-2] >= size[0] and features.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(features, size)
    return F.interpolate(features, size=size, mode="bilinear", align_corners=False)


def _map_shape(shape: tuple[int, ...], owner: str, layer: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UserInputError(f"{owner}'s layer {layer!r} returns a tensor of shape {list(shape)} per image, not a "
                             "feature map (channels, height, width); hints need feature maps")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _deepest(names: tuple[str, ...], count: int, owner: str) -> tuple[str, ...]:
    if count > len(names):
        raise UserInputError(f"method.stages is {count}, but {owner} has only {len(names)} stage(s); lower "
                             "method.stages or name the layers in method.target_layers/source_layers")
    return names[-count:]


class FitNetsMethod(SingleNetworkMethod):
    def __init__(self, ctx: MethodContext):
        if ctx.sources is None or not ctx.sources.sources:
            raise UserInputError("FitNets needs at least one source model to take hints from")
        if ctx.clip_len:
            raise UserInputError("FitNets does not train on video clips: an image source's feature maps have no "
                                 "time axis to match a 3D target's; use SSKT, KD, DML or supervised training")
        m: FitNetsOptions = ctx.config.method
        if m.target_layers and m.source_layers and len(m.source_layers) != len(m.target_layers):
            raise UserInputError(f"method.source_layers names {len(m.source_layers)} layer(s) but "
                                 f"method.target_layers names {len(m.target_layers)}; give one source layer per "
                                 "target layer")
        super().__init__(ctx)
        count = len(m.target_layers) or len(m.source_layers) or m.stages
        backbone = self.net.backbone
        target_layers = m.target_layers or _deepest(self.net.layout.stage_modules, count, "the target")
        target_shapes = feature_shapes(backbone, target_layers, ctx.input_size, "the target")
        self.pairs: list[HintPair] = []
        source_layers: list[tuple[str, ...]] = []
        for index, source in enumerate(ctx.sources.sources):
            owner = f"source {source.name!r}"
            reason = untappable_reason(source.module)
            if reason is not None:
                raise UserInputError(f"FitNets cannot take hints from {owner}: {reason}; use a source built from an "
                                     "architecture (torchvision, checkpoint file or earlier run)")
            names = m.source_layers or _deepest(stage_names(source.module, source.input_size), count, owner)
            shapes = feature_shapes(source.module, names, source.input_size, owner)
            source_layers.append(tuple(names))
            for t_layer, s_layer in zip(target_layers, names):
                self.pairs.append(HintPair(index, t_layer, s_layer,
                                           _map_shape(target_shapes[t_layer], "the target", t_layer),
                                           _map_shape(shapes[s_layer], owner, s_layer)))
        self.adapters = nn.ModuleList(hint_adapter(p.target_shape[0], p.source_shape[0])
                                      for p in self.pairs).to(ctx.device)
        # one optimizer for the target and its adapters, as for SSKT's heads
        self.optimizers["target"] = self.new_optimizer([*self.net.parameters(), *self.adapters.parameters()])
        self.target_taps = FeatureTaps(backbone, target_layers, "the target")
        self.source_taps = [FeatureTaps(s.module, names, f"source {s.name!r}")
                            for s, names in zip(ctx.sources.sources, source_layers)]
        self.hint_names = [f"hint/{name}" for name in ctx.sources.names]

    def loss_names(self) -> list[str]:
        return ["loss", "target", *self.hint_names]

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.adapters.train(mode)

    def losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        m: FitNetsOptions = self.ctx.config.method
        with contextlib.ExitStack() as taps:
            student = taps.enter_context(self.target_taps.capture())
            teachers = [taps.enter_context(t.capture()) for t in self.source_taps]
            with self.ctx.autocast():
                logits = self.net(batch.images).logits
                self.ctx.sources(batch.pixels)  # its logits are not needed; the taps keep the features
        # the captures have ended: the sources' features are normal float32 tensors now
        target = self.ctx.task.loss(logits, batch.labels)
        per_source: list[list[torch.Tensor]] = [[] for _ in self.hint_names]
        for pair, adapter in zip(self.pairs, self.adapters):
            with self.ctx.autocast():
                adapted = adapter(student[pair.target_layer])
            wanted = match_resolution(teachers[pair.source][pair.source_layer].detach().float(), pair.target_shape[1:])
            per_source[pair.source].append(F.mse_loss(adapted.float(), wanted))
        losses = {"target": target}
        total = target
        for name, parts in zip(self.hint_names, per_source):
            hint = parts[0] if len(parts) == 1 else torch.stack(parts).sum()
            losses[name] = hint
            total = total + m.hint_weight * hint
        losses["loss"] = total
        return losses, logits

    def close(self) -> None:
        self.target_taps.close()
        for taps in self.source_taps:
            taps.close()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["adapters"] = self.adapters.state_dict()  # kept for resume; never exported
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.adapters.load_state_dict(state["adapters"])


METHODS.add(MethodInfo(name="fitnets", build=FitNetsMethod, options=FitNetsOptions, min_sources=1, uses_sources=True,
                       description="FitNets hints (Romero 2015): the target also learns, through learned 1x1 "
                                   "adapters, to reproduce the sources' intermediate feature maps."))
