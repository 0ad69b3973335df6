"""Supervised training from scratch: the target loss only. Every comparison needs it."""

from __future__ import annotations

from ..losses import target_loss
from . import METHODS
from .base import SingleNetworkMethod


@METHODS.register("supervised", description="Target labels only, from scratch: the baseline every "
                  "comparison needs.", min_sources=0)
class SupervisedMethod(SingleNetworkMethod):
    def losses(self, pixels, images, labels):
        with self.ctx.autocast():
            logits = self.net(images).logits
        loss = target_loss(logits, labels)
        return {"loss": loss, "target": loss}, logits
