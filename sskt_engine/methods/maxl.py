"""Meta auxiliary learning (Liu, Davison, Johns, NeurIPS 2019): a label-generator network
invents an auxiliary task, psi sub-classes per class, and learns to invent one that helps.

* The target has its primary head (C classes) and an auxiliary linear head (C * psi) on the
  pooled penultimate feature.
* The generator maps an image to C * psi logits; a softmax masked to the psi sub-classes of
  the ground-truth class (``losses.masked_subclass_softmax``) is the auxiliary label.
* Both heads use focal loss (gamma ``method.focal_gamma``, 2 by default).
* Each step, as in the authors' code: (1) the target takes an ordinary optimizer step on
  ``L_pri + L_aux`` with the generated labels held fixed; (2) on the same batch, a *virtual*
  SGD step ``theta+ = theta - lr * grad(L_pri + L_aux)`` is taken with ``create_graph`` (lr is
  the target's current, scheduled learning rate), and the generator takes a step on
  ``L_pri(theta+) + w * sum(pbar * log pbar)``, the second term the negative entropy of the
  batch-mean generated label (w = ``method.entropy_weight``, 0.2). The gradient reaches
  the generator only through ``theta+``: second order, via ``torch.func.functional_call``.

The generator is the target architecture with a C*psi-way classifier, as in the paper (VGG16
for both), unless ``method.generator_arch`` names another. It has its own optimizer (the
preset's optimizer kind at ``method.generator_lr``, following the same lr schedule),
is saved in checkpoints for resume, and is never exported.

BatchNorm: both forward passes of the meta step run through ``functional_call`` on *copies*
of the target's buffers, so the running statistics are updated once per step (by step 1),
not three times.
"""

from __future__ import annotations

from dataclasses import dataclass

import contextlib
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.func import functional_call

from ..errors import UserInputError
from ..losses import batch_negative_entropy, focal_loss, focal_with_targets, masked_subclass_softmax
from ..models import build_architecture
from ..models.target import TargetNetwork
from ..config import MethodOptions, option
from ..registry import METHODS, MethodInfo
from .base import MethodContext, StepOutput, TrainingMethod


def _heads(out: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(primary logits, auxiliary logits) of a TargetNetwork output (or a plain pair)."""
    if isinstance(out, tuple):
        return out[0], out[1]
    return out.logits, out.aux_logits[0]


def maxl_meta_objective(net: nn.Module, aux_labels: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
                        inner_lr: float, gamma: float = 2.0, entropy_weight: float = 0.2,
                        autocast: Callable[[], Any] = contextlib.nullcontext, grad_scale: float | None = None,
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator's objective ``L_pri(theta+) + w * negentropy(mean aux_labels)``.

    ``aux_labels`` are the generated labels *with* their graph to the generator; ``net`` maps
    images to (primary, auxiliary) logits. ``theta+`` is one plain SGD step on ``L_pri + L_aux``
    from ``net``'s current parameters, built with ``create_graph`` so the result differentiates
    through it. ``net``'s buffers (BatchNorm statistics) are left as they were. ``grad_scale``
    (the AMP scale) multiplies the inner loss before its gradient and divides the gradient
    after, so float16 gradients do not underflow."""
    params = dict(net.named_parameters())
    trainable = [name for name, p in params.items() if p.requires_grad]

    def run(weights: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        buffers = {name: b.clone() for name, b in net.named_buffers()}
        with autocast():
            return _heads(functional_call(net, (weights, buffers), (images,)))

    primary, auxiliary = run(params)
    inner = focal_loss(primary, labels, gamma) + focal_with_targets(auxiliary, aux_labels, gamma)
    scale = grad_scale or 1.0
    grads = torch.autograd.grad(inner * scale, [params[n] for n in trainable], create_graph=True, allow_unused=True)
    fast = dict(params)
    for name, grad in zip(trainable, grads):
        if grad is not None:
            fast[name] = params[name] - inner_lr * (grad / scale)
    primary_plus, _ = run(fast)
    after = focal_loss(primary_plus, labels, gamma)
    negentropy = batch_negative_entropy(aux_labels)
    meta = after + entropy_weight * negentropy
    return meta, {"inner": inner.detach(), "meta_primary": after.detach(), "neg_entropy": negentropy.detach()}


@dataclass(frozen=True)
class MAXLOptions(MethodOptions):
    name: str = option("maxl", "Training method.")
    psi: int = option(5, "Auxiliary sub-classes per primary class (the auxiliary head has classes x psi outputs).",
                      min=1, max=100)
    focal_gamma: float = option(2.0, "Focusing parameter of the focal loss of both heads.", min=0.0, max=10.0)
    generator_arch: str = option("", "Architecture of the label-generator network; empty: the target "
                                 "architecture (the MAXL paper used the same network for both).",
                                 label="Generator architecture")
    generator_lr: float = option(1e-3, "Learning rate of the label generator (the MAXL code used 1e-3); it "
                                 "follows the same schedule as the target's.", above=0.0, max=100.0,
                                 label="Generator lr")
    entropy_weight: float = option(0.2, "Weight of the entropy regularizer that keeps the generated labels spread "
                                   "over all sub-classes.", min=0.0, max=100.0)


class MAXLMethod(TrainingMethod):
    def __init__(self, ctx: MethodContext):
        if ctx.multi_label:
            raise UserInputError("MAXL needs single-label data: its auxiliary labels are sub-classes of each "
                                 "image's one class")
        if ctx.clip_len:
            raise UserInputError("MAXL does not train on video clips: its label generator is an image network; "
                                 "use SSKT, KD, DML or supervised training for video data")
        super().__init__(ctx)
        m = ctx.config.method
        self.psi = m.psi
        aux_classes = ctx.num_classes * m.psi
        target = self.new_target(aux_classes=[aux_classes], head="linear")  # starts where target.init says
        gen_arch = m.generator_arch or ctx.config.target.arch
        try:
            generator = build_architecture(gen_arch, aux_classes)
        except UserInputError as exc:  # an unknown name: say which key holds it
            raise UserInputError(f"method.generator_arch: {exc}") from None
        self.generator = generator.to(ctx.device)
        self.generator_arch = gen_arch
        self.networks = {"target": target}
        self.optimizers = {"target": self.new_optimizer(target.parameters()),
                           "generator": self.new_optimizer(self.generator.parameters(), lr=m.generator_lr)}

    @property
    def net(self) -> TargetNetwork:
        return self.networks["target"]

    def loss_names(self):
        return ["loss", "target", "aux", "meta", "neg_entropy"]

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.generator.train(mode)

    def generated_labels(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with self.ctx.autocast():
            logits = self.generator(images)
        return masked_subclass_softmax(logits, labels, self.psi)

    def train_step(self, batch, step):
        images, labels = batch.images, batch.labels
        m = self.ctx.config.method
        scaler = self.ctx.scaler
        skip_bad = self.ctx.config.train.nan_policy == "skip"
        target_opt, gen_opt = self.optimizers["target"], self.optimizers["generator"]
        # The generator's parameters do not change in step 1, so its output (and graph) serves both steps.
        aux_labels = self.generated_labels(images, labels)

        # (1) the target learns both tasks, generated labels held fixed
        with self.ctx.autocast():
            primary, auxiliary = _heads(self.net(images))
        pri_loss = focal_loss(primary, labels, m.focal_gamma)
        aux_loss = focal_with_targets(auxiliary, aux_labels.detach(), m.focal_gamma)
        loss = pri_loss + aux_loss
        target_opt.zero_grad(set_to_none=True)
        gen_opt.zero_grad(set_to_none=True)
        losses = {"loss": loss.detach(), "target": pri_loss.detach(), "aux": aux_loss.detach()}
        if skip_bad and self._any_rank_bad(loss):
            self.ctx.skipped_steps.append(step)
            nan = torch.full((), float("nan"), device=loss.device)
            return StepOutput({**losses, "meta": nan, "neg_entropy": nan}, primary.detach().float())
        self._backward(loss, list(self.net.parameters()))
        self._step(target_opt)

        # (2) the generator's meta step through a virtual SGD step of the target
        meta, parts = maxl_meta_objective(
            self.net, aux_labels, images, labels, inner_lr=float(target_opt.param_groups[0]["lr"]),
            gamma=m.focal_gamma, entropy_weight=m.entropy_weight, autocast=self.ctx.autocast,
            grad_scale=float(scaler.get_scale()) if scaler is not None else None)
        if skip_bad and self._any_rank_bad(meta):
            self.ctx.skipped_steps.append(step)
        else:
            self._backward(meta, list(self.generator.parameters()))
            self._step(gen_opt)
        if scaler is not None:
            scaler.update()  # once per iteration, after every optimizer stepped
        losses.update(meta=meta.detach(), neg_entropy=parts["neg_entropy"])
        return StepOutput(losses, primary.detach().float())

    def _any_rank_bad(self, loss: torch.Tensor) -> bool:
        """A non-finite loss on any rank: every rank skips together (gradient all-reduce)."""
        return self.ctx.dist.any(not torch.isfinite(loss.detach()).item(), loss.device)

    def _backward(self, loss: torch.Tensor, inputs: list[torch.Tensor]) -> None:
        """Gradients for ``inputs`` only (the meta loss also depends on the target's parameters)."""
        if self.ctx.scaler is not None:
            loss = self.ctx.scaler.scale(loss)
        loss.backward(inputs=inputs)

    def _step(self, optimizer: torch.optim.Optimizer) -> None:
        self.ctx.sync_gradients(optimizer)  # average over ranks in a distributed run
        if self.ctx.scaler is not None:
            self.ctx.scaler.step(optimizer)
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["generator"] = self.generator.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.load_state_dict(state["generator"])

    def network_archs(self) -> dict[str, str]:
        return {"target": self.ctx.config.target.arch}


METHODS.add(MethodInfo(name="maxl", build=MAXLMethod, options=MAXLOptions,
                       description="Meta auxiliary learning (Liu 2019): a label generator invents sub-class labels "
                                   "for an auxiliary head and learns, by a meta step, which ones help."))
