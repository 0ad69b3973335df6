"""SSKT (Hong et al., WACV 2022): frozen sources label each batch with soft labels over
their own classes; one auxiliary head per source learns them beside the target task.

    L = L_target(primary(x), y) + alpha * sum_m L_aux(aux_m(x), s_m(x))
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MethodOptions, option
from ..losses import auxiliary_loss
from ..registry import METHODS, MethodInfo
from .base import MethodContext, SingleNetworkMethod


@dataclass(frozen=True)
class SSKTOptions(MethodOptions):
    name: str = option("sskt", "Training method.")
    alpha: float = option(0.1, "Weight of the auxiliary (source) losses against the target loss.", min=0.0,
                          max=100.0)
    temperature: float = option(3.0, "Softmax temperature applied to source and auxiliary logits.", above=0.0,
                                max=100.0)
    aux_loss: str = option("soft_ce", "Loss between an auxiliary head and its source: soft cross-entropy, "
                           "KL divergence or focal.", choices=lambda: ("soft_ce", "kd", "focal"))
    head: str = option("linear", "Auxiliary head: a linear layer on the pooled feature, or a transfer module "
                       "reading every stage of the backbone.", choices=lambda: ("linear", "transfer_module"))
    focal_gamma: float = option(2.0, "Focusing parameter of the focal loss.", min=0.0, max=10.0)
    transfer_width: int = option(0, "Width of the transfer module's branches; 0 picks 64 for CIFAR-style backbones "
                                 "and 1000 for ImageNet-style ones (ResNet-18/34/50 ...), as in the paper.", min=0, max=4096)


class SSKTMethod(SingleNetworkMethod):
    def __init__(self, ctx: MethodContext):
        if ctx.sources is None or not ctx.sources.sources:
            raise ValueError("SSKT needs at least one source")
        m = ctx.config.method
        super().__init__(ctx, aux_classes=[s.num_classes for s in ctx.sources.sources], head=m.head,
                         transfer_width=m.transfer_width)
        self.aux_names = [f"aux/{name}" for name in ctx.sources.names]
        self.soft_labels = ctx.soft_labels.request()  # every source; run per batch or read from the cache

    def loss_names(self):
        return ["loss", "target", *self.aux_names]

    def losses(self, batch):
        m = self.ctx.config.method
        with self.ctx.autocast():
            out = self.net(batch.images)
            soft_labels = self.soft_labels(batch)
        target = self.ctx.task.loss(out.logits, batch.labels)
        losses = {"target": target}
        total = target
        for name, student, teacher in zip(self.aux_names, out.aux_logits, soft_labels):
            aux = auxiliary_loss(m.aux_loss, student, teacher, m.temperature, m.focal_gamma)
            losses[name] = aux
            total = total + m.alpha * aux
        losses["loss"] = total
        return losses, out.logits


METHODS.add(MethodInfo(name="sskt", build=SSKTMethod, options=SSKTOptions, min_sources=1, uses_sources=True,
                       description="Self-supervised knowledge transfer: auxiliary heads learn the frozen sources' "
                                   "soft labels next to the target task."))
