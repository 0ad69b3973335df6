"""Deep mutual learning (Zhang, Xiang, Hospedales, Lu 2018): K peers trained together from
scratch, each learning the labels and the other peers' predictions.

    peer k minimizes  CE(z_k, y) + 1/(K-1) * sum_{j != k} KL(p_j || p_k)

with the other peers' probabilities detached and no temperature. All peers take their step
on the same batch at the same time (the simultaneous variant most public implementations use;
the paper's Algorithm 1 recomputes the predictions between the peers' updates, which makes
the result depend on the peers' order). The peers are symmetric: swapping two swaps their
losses and gradients.

Every peer is evaluated ("peerK/acc" in the run's metrics). The run's headline accuracy is
peer1's: the peers are interchangeable, and taking the maximum over peers on the validation
set would report a selected, optimistic number. The export picks the peer with the best
validation accuracy (``export_network``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserInputError
from ..losses import dml_losses
from ..config import MethodOptions, option
from ..registry import ARCHITECTURES, METHODS, MethodInfo
from .base import MethodContext, StepOutput, TrainingMethod


@dataclass(frozen=True)
class DMLOptions(MethodOptions):
    name: str = option("dml", "Training method.")
    peers: int = option(2, "Number of networks trained together, each learning from the others.", min=2, max=16)
    peer_archs: tuple[str, ...] = option((), "Architecture of each peer, one per peer; empty: every peer is the "
                                         "target architecture.", choices=ARCHITECTURES.keys,
                                         label="Peer architectures")


class DMLMethod(TrainingMethod):
    primary = "peer1"

    def __init__(self, ctx: MethodContext):
        super().__init__(ctx)
        m = ctx.config.method
        archs = list(m.peer_archs) or [ctx.config.target.arch] * m.peers
        if len(archs) != m.peers:
            raise UserInputError(f"method.peer_archs lists {len(archs)} architecture(s) but method.peers is "
                                 f"{m.peers}; give one architecture per peer, or leave peer_archs empty")
        for arch in archs:
            ARCHITECTURES.get(arch)  # an unknown name is a UserInputError naming the close ones
        self.archs = {f"peer{i + 1}": arch for i, arch in enumerate(archs)}
        for name, arch in self.archs.items():
            net = self.new_target(arch)
            self.networks[name] = net
            self.optimizers[name] = self.new_optimizer(net.parameters())

    def loss_names(self):
        names = ["loss", "target"]
        for peer in self.networks:
            names += [f"{peer}/ce", f"{peer}/kl"]
        return names

    def network_archs(self):
        return dict(self.archs)

    def export_network(self, val_acc=None):
        if not val_acc:
            return self.primary
        # max keeps the first of equal peers, so ties export peer1
        return max(self.networks, key=lambda name: val_acc.get(name, float("-inf")))

    def peer_losses(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[list[torch.Tensor], list[tuple]]:
        with self.ctx.autocast():
            logits = [net(images).logits for net in self.networks.values()]
        return logits, dml_losses(logits, labels, self.ctx.task)

    def train_step(self, batch, step):
        logits, terms = self.peer_losses(batch.images, batch.labels)
        per_peer = [ce + kl for ce, kl in terms]
        # The peers' losses share no parameters (the others are detached), so one backward of
        # the sum gives every peer the gradient of its own loss.
        total = torch.stack(per_peer).sum()
        self._step_all(total, step)
        k = len(per_peer)
        losses = {"loss": total.detach() / k, "target": torch.stack([ce for ce, _ in terms]).detach().mean()}
        for peer, (ce, kl) in zip(self.networks, terms):
            losses[f"{peer}/ce"] = ce.detach()
            losses[f"{peer}/kl"] = kl.detach()
        return StepOutput(losses, logits[0].detach().float())

    def _step_all(self, total: torch.Tensor, step: int) -> None:
        """``optimizer_step`` for several optimizers: one backward, every optimizer steps, and
        the AMP scaler updates once per iteration (as torch.amp asks for several optimizers)."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if self.ctx.config.train.nan_policy == "skip":
            bad = not torch.isfinite(total.detach()).item()
            if self.ctx.dist.any(bad, total.device):  # every rank skips together (gradient all-reduce)
                self.ctx.skipped_steps.append(step)
                return
        scaler = self.ctx.scaler
        if scaler is not None:
            scaler.scale(total).backward()
            for opt in self.optimizers.values():
                self.ctx.sync_gradients(opt)
                scaler.step(opt)
            scaler.update()
        else:
            total.backward()
            for opt in self.optimizers.values():
                self.ctx.sync_gradients(opt)
                opt.step()


METHODS.add(MethodInfo(name="dml", build=DMLMethod, options=DMLOptions,
                       description="Deep mutual learning (Zhang 2018): two or more peers train together, each also "
                                   "matching the others' predictions; the best peer is exported."))
