"""SSKT (Hong et al., WACV 2022): frozen sources label each batch with soft labels over
their own classes; one auxiliary head per source learns them beside the target task.

    L = L_target(primary(x), y) + alpha * sum_m L_aux(aux_m(x), s_m(x))
"""

from __future__ import annotations

from ..losses import auxiliary_loss, target_loss
from . import METHODS
from .base import MethodContext, SingleNetworkMethod


@METHODS.register("sskt", description="Self-supervised knowledge transfer: auxiliary heads learn the "
                  "frozen sources' soft labels next to the target task.", min_sources=1)
class SSKTMethod(SingleNetworkMethod):
    def __init__(self, ctx: MethodContext):
        if ctx.sources is None or not ctx.sources.sources:
            raise ValueError("SSKT needs at least one source")
        super().__init__(ctx, aux_classes=[s.num_classes for s in ctx.sources.sources])
        self.aux_names = [f"aux/{name}" for name in ctx.sources.names]

    def loss_names(self):
        return ["loss", "target", *self.aux_names]

    def losses(self, pixels, images, labels):
        m = self.ctx.config.method
        with self.ctx.autocast():
            out = self.net(images)
            soft_labels = self.ctx.sources(pixels)
        target = target_loss(out.logits, labels)
        losses = {"target": target}
        total = target
        for name, student, teacher in zip(self.aux_names, out.aux_logits, soft_labels):
            aux = auxiliary_loss(m.aux_loss, student, teacher, m.temperature, m.focal_gamma)
            losses[name] = aux
            total = total + m.alpha * aux
        losses["loss"] = total
        return losses, out.logits
