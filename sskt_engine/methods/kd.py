"""Knowledge distillation (Hinton, Vinyals, Dean 2015): a frozen teacher with the target's own
classes supplies softened probabilities the student matches beside the labels.

    L = (1 - lam) * CE(z, y) + lam * T^2 * KL(softmax(t/T) || softmax(z/T))

The teacher is one of the experiment's sources (``method.teacher``), so any model a source can
be (a checkpoint file, an earlier run, torchvision weights) can teach, provided it predicts the
target's classes. Multi-label data distils each class's sigmoid (``losses.binary_kd_kl``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserInputError
from ..losses import kd_loss
from ..sources import FrozenSource
from ..config import MethodOptions, option
from ..registry import METHODS, MethodInfo
from .base import MethodContext, SingleNetworkMethod


def check_teacher(ctx: MethodContext, index: int) -> FrozenSource:
    """The teacher source, or a ``UserInputError`` with one sentence saying why it cannot teach."""
    sources = ctx.sources.sources if ctx.sources is not None else []
    if not sources:
        raise UserInputError("KD needs a teacher: add a source model trained on the target's classes "
                             f"({ctx.num_classes} classes)")
    if index >= len(sources):
        raise UserInputError(f"method.teacher is {index}, but there are only {len(sources)} source(s); "
                             f"use a number from 0 to {len(sources) - 1}")
    teacher = sources[index]
    if teacher.num_classes != ctx.num_classes:
        raise UserInputError(f"source {teacher.name!r} cannot be the KD teacher: it predicts "
                             f"{teacher.num_classes} classes but the target dataset has {ctx.num_classes}; "
                             "KD needs a teacher trained on the target's classes")
    if teacher.class_names and ctx.class_names and tuple(teacher.class_names) != tuple(ctx.class_names):
        differing = next(i for i, (a, b) in enumerate(zip(teacher.class_names, ctx.class_names)) if a != b)
        raise UserInputError(f"source {teacher.name!r} cannot be the KD teacher: its classes differ from the "
                             f"target's (class {differing} is {teacher.class_names[differing]!r} for the teacher "
                             f"but {ctx.class_names[differing]!r} for the target); KD needs a teacher trained "
                             "on the target's classes")
    return teacher


@dataclass(frozen=True)
class KDOptions(MethodOptions):
    name: str = option("kd", "Training method.")
    teacher: int = option(0, "Which source is the teacher (0 = the first); its classes must be the target's "
                          "classes.", min=0, max=1000)
    distill_weight: float = option(0.9, "Weight of the distillation term (Hinton's lambda); the label loss gets "
                                   "1 - weight.", min=0.0, max=1.0, label="Distillation weight")
    temperature: float = option(4.0, "Softmax temperature of teacher and student in the distillation term.",
                                above=0.0, max=100.0)


class KDMethod(SingleNetworkMethod):
    def __init__(self, ctx: MethodContext):
        m = ctx.config.method
        check_teacher(ctx, m.teacher)  # refuse before building anything
        super().__init__(ctx)
        self.teacher_index = m.teacher
        # only the teacher runs per batch (or is cached), even when the preset lists other sources
        self.teacher = ctx.soft_labels.request([m.teacher]).to(ctx.device)

    def loss_names(self):
        return ["loss", "target", "kd"]

    def losses(self, batch):
        m = self.ctx.config.method
        with self.ctx.autocast():
            logits = self.net(batch.images).logits
            teacher_logits = self.teacher(batch)[0]
        total, target, distill = kd_loss(logits, teacher_logits, batch.labels, m.distill_weight, m.temperature,
                                         self.ctx.task)
        return {"loss": total, "target": target, "kd": distill}, logits


METHODS.add(MethodInfo(name="kd", build=KDMethod, options=KDOptions, min_sources=1, uses_sources=True,
                       description="Knowledge distillation (Hinton 2015): the target also matches the softened "
                                   "predictions of a teacher trained on the same classes."))
