"""Supervised training from scratch: the target loss only. Every comparison needs it."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MethodOptions, option
from ..registry import METHODS, MethodInfo
from .base import SingleNetworkMethod


@dataclass(frozen=True)
class SupervisedOptions(MethodOptions):
    name: str = option("supervised", "Training method.")


class SupervisedMethod(SingleNetworkMethod):
    def losses(self, batch):
        with self.ctx.autocast():
            logits = self.net(batch.images).logits
        loss = self.ctx.task.loss(logits, batch.labels)
        return {"loss": loss, "target": loss}, logits


METHODS.add(MethodInfo(name="supervised", build=SupervisedMethod, options=SupervisedOptions,
                       description="Target labels only, from scratch: the baseline every comparison needs."))
