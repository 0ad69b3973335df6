"""The interface every training method implements, and the single-network base.

A method owns its networks and optimizers and performs whole optimizer steps in
``train_step``; the trainer only feeds batches, sets learning rates, evaluates,
checkpoints and reports. So DML (several networks, several optimizers) and MAXL
(a label generator and a second-order meta step) fit without trainer changes.
``train_step`` gets the whole ``Batch`` (images, source pixels, labels, dataset
indices); a method that reads intermediate features taps them by module name
(``sskt_engine.feature_taps``) and releases its hooks in ``close``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import ExperimentConfig
from ..data.batches import Batch
from ..distributed import DistContext
from ..models import build_architecture, check_input_kind
from ..models.introspect import probe_input
from ..network_weights import native_input_size
from ..models.target import TargetNetwork
from ..soft_labels import SoftLabels
from ..sources import SourceEnsemble
from ..target_init import freeze_first_stages, initialise_backbone
from ..tasks import Task, get_task, task_name


@dataclass
class MethodContext:
    config: ExperimentConfig
    num_classes: int
    class_names: tuple[str, ...]
    input_size: int
    device: torch.device
    sources: SourceEnsemble | None
    multi_label: bool = False
    scaler: Any = None  # torch.amp.GradScaler when AMP is on
    skipped_steps: list[int] = field(default_factory=list)  # steps whose loss was not finite (nan_policy skip)
    notes: list[str] = field(default_factory=list)  # for the run's log: where the target's weights started
    dist: DistContext = field(default_factory=DistContext)
    # What depends on the kind of labels (target loss, distillation term); the trainer passes
    # the data's task, a context built without one gets the task its multi_label flag names.
    task: Task = None  # type: ignore[assignment]
    # The sources' logits per batch, run or read from the cache (``soft_labels``); methods ask it
    # with ``soft_labels.request()``. A context built without one runs the sources per batch.
    soft_labels: SoftLabels | None = None
    # Frames per clip when the data are clips ([B, 3, T, H, W] batches; ``DatasetSplits.clip_len``); 0: images.
    clip_len: int = 0

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = get_task(task_name(self.multi_label))
        if self.soft_labels is None and self.sources is not None:
            self.soft_labels = SoftLabels(self.sources)

    def sync_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Average this optimizer's gradients over ranks (distributed runs); call between
        backward and step in any method that steps an optimizer itself."""
        if self.dist.active:
            self.dist.average_gradients(p for group in optimizer.param_groups for p in group["params"])

    @property
    def amp(self) -> bool:
        return self.scaler is not None

    def autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()


@dataclass
class StepOutput:
    losses: dict[str, torch.Tensor]  # detached scalars; "loss" is the total
    logits: torch.Tensor  # detached logits of the primary network, for training accuracy


class TrainingMethod:
    """Base class. Subclasses set ``networks`` (name -> TargetNetwork) and ``optimizers``."""

    primary: str = "target"

    def __init__(self, ctx: MethodContext):
        self.ctx = ctx
        self.networks: dict[str, TargetNetwork] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- building blocks for subclasses ------------------------------------------------------
    def new_target(self, arch: str | None = None, aux_classes: list[int] | tuple[int, ...] = (),
                   head: str = "linear", transfer_width: int = 0) -> TargetNetwork:
        """A target network; ``head`` and ``transfer_width`` shape its auxiliary heads, if any. A
        network of the preset's target architecture starts where ``target.init`` says, with its
        first ``target.frozen_stages`` frozen (``target_init``)."""
        target = self.ctx.config.target
        check_input_kind(arch or target.arch, self.ctx.clip_len)
        backbone = build_architecture(arch or target.arch, self.ctx.num_classes)
        pretrained = (arch or target.arch) == target.arch and target.init != "scratch"
        if pretrained:
            for note in initialise_backbone(backbone, target):
                if note not in self.ctx.notes:  # DML's peers start from the same file: say it once
                    self.ctx.notes.append(note)
        net = TargetNetwork(backbone, self.ctx.input_size, aux_classes, head, transfer_width,
                            clip_len=self.ctx.clip_len, imagenet_style=native_input_size(arch or target.arch) >= 224)
        if pretrained and target.frozen_stages:
            example = probe_input(self.ctx.input_size, self.ctx.clip_len, batch=1)
            net.frozen_modules = freeze_first_stages(backbone, target.frozen_stages, net.layout.stage_modules,
                                                     example)
        return net.to(self.ctx.device)

    def new_optimizer(self, params, lr: float | None = None) -> torch.optim.Optimizer:
        t = self.ctx.config.train
        lr = t.lr if lr is None else lr
        if t.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=t.momentum, weight_decay=t.weight_decay,
                                  nesterov=t.nesterov and t.momentum > 0)
        elif t.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=t.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=t.weight_decay)
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]  # the trainer scales this by the schedule's factor
        return opt

    def optimizer_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, step: int) -> None:
        """Backward and step, through the AMP scaler when there is one. With nan_policy
        'skip' a non-finite loss skips the step (this needs one host sync per step)."""
        optimizer.zero_grad(set_to_none=True)
        if self.ctx.config.train.nan_policy == "skip":
            bad = not torch.isfinite(loss.detach()).item()
            # every rank skips together, or the others would wait in the gradient all-reduce
            if self.ctx.dist.any(bad, loss.device):
                self.ctx.skipped_steps.append(step)
                return
        if self.ctx.scaler is not None:
            self.ctx.scaler.scale(loss).backward()
            self.ctx.sync_gradients(optimizer)
            self.ctx.scaler.step(optimizer)
            self.ctx.scaler.update()
        else:
            loss.backward()
            self.ctx.sync_gradients(optimizer)
            optimizer.step()

    # -- the interface ------------------------------------------------------------------------
    def loss_names(self) -> list[str]:
        return ["loss", "target"]

    def train_step(self, batch: Batch, step: int) -> StepOutput:
        """One whole training iteration on ``batch`` (every optimizer step it takes);
        ``step`` is the global step, for ``nan_policy`` skip bookkeeping."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the method holds beyond its networks (feature-tap hooks); the base
        method holds nothing. Safe to call twice."""

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every evaluated network; auxiliary heads are not run."""
        with self.ctx.autocast():
            return {name: net.backbone(images).float() for name, net in self.networks.items()}

    def export_network(self, val_acc: dict[str, float] | None = None) -> str:
        """Which network is the method's result (DML picks its best peer)."""
        return self.primary

    def state_dict(self) -> dict[str, Any]:
        return {"models": {k: v.state_dict() for k, v in self.networks.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["models"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            for group in opt.param_groups:  # older checkpoints may lack it; harmless to restate
                group.setdefault("initial_lr", group["lr"])

    def network_archs(self) -> dict[str, str]:
        return {name: self.ctx.config.target.arch for name in self.networks}


class SingleNetworkMethod(TrainingMethod):
    """One target network with one optimizer; subclasses say how losses are formed."""

    def __init__(self, ctx: MethodContext, aux_classes: list[int] | tuple[int, ...] = (), head: str = "linear",
                 transfer_width: int = 0):
        super().__init__(ctx)
        net = self.new_target(aux_classes=aux_classes, head=head, transfer_width=transfer_width)
        self.networks = {"target": net}
        self.optimizers = {"target": self.new_optimizer(net.parameters())}

    @property
    def net(self) -> TargetNetwork:
        return self.networks["target"]

    def losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return (losses with 'loss' as the total, primary logits)."""
        raise NotImplementedError

    def train_step(self, batch: Batch, step: int) -> StepOutput:
        losses, logits = self.losses(batch)
        self.optimizer_step(losses["loss"], self.optimizers["target"], step)
        return StepOutput({k: v.detach() for k, v in losses.items()}, logits.detach())

