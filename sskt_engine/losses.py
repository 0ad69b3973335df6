"""Losses of every method, written out so each matches METHOD.md term by term.

Reductions are explicit: per-sample sums over classes, then the batch mean.
(The SSKT authors' ``kd`` used mean reduction over batch *and* classes, which
divides the term by the source's class count, 1000x weaker for an ImageNet
source; we use batch-mean KL, the textbook definition.)
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * mean_batch( -sum_c softmax(s/T)_c * log_softmax(z/T)_c )``."""
    t = temperature
    target = F.softmax(teacher_logits.float() / t, dim=1)
    log_pred = F.log_softmax(student_logits.float() / t, dim=1)
    return -(target * log_pred).sum(dim=1).mean() * (t * t)


def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(s/T) || softmax(z/T))`` with batch-mean reduction."""
    t = temperature
    log_target = F.log_softmax(teacher_logits.float() / t, dim=1)
    log_pred = F.log_softmax(student_logits.float() / t, dim=1)
    return F.kl_div(log_pred, log_target, reduction="batchmean", log_target=True) * (t * t)


def soft_focal(student_logits: torch.Tensor, teacher_logits: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """``mean_batch( -sum_c softmax(s)_c * (1 - p_c)^gamma * log p_c )`` with ``p = softmax(z)``."""
    target = F.softmax(teacher_logits.float(), dim=1)
    log_p = F.log_softmax(student_logits.float(), dim=1)
    return -(target * (1.0 - log_p.exp()).pow(gamma) * log_p).sum(dim=1).mean()


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Half precision (AMP) to float32 for the loss; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def focal_with_targets(logits: torch.Tensor, target_probs: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss against given probabilities (hard labels as one-hot, or MAXL's generated labels)."""
    log_p = F.log_softmax(_upcast(logits), dim=1)
    return -(target_probs * (1.0 - log_p.exp()).pow(gamma) * log_p).sum(dim=1).mean()


def auxiliary_loss(kind: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   temperature: float, gamma: float = 2.0) -> torch.Tensor:
    if kind == "soft_ce":
        return soft_cross_entropy(student_logits, teacher_logits, temperature)
    if kind == "kd":
        return kd_kl(student_logits, teacher_logits, temperature)
    if kind == "focal":
        return soft_focal(student_logits, teacher_logits, gamma)
    raise ValueError(f"unknown auxiliary loss {kind!r}")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The single-label target loss: cross-entropy against class indices, batch mean."""
    return F.cross_entropy(logits.float(), labels)


def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The multi-label target loss: BCE-with-logits against 0/1 targets, mean over batch and classes."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float())


def masked_binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits, the mean over the (image, class) entries that are not ignored (target -1,
    a VOC ``difficult``-only class): a barely visible object is taught neither as present nor
    as absent, as it is scored. Without ignored entries this is the plain mean over batch and
    classes (``binary_cross_entropy``). No host sync."""
    valid = (targets >= 0).to(torch.float32)
    per_entry = F.binary_cross_entropy_with_logits(
        logits.float(), targets.float().clamp(min=0), reduction="none")
    return (per_entry * valid).sum() / valid.sum().clamp(min=1)


def multi_hot_soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """The SSKT authors' ``ce`` target loss for multi-label data, offered for replicating their VOC
    rows: ``T^2 * mean_batch(-sum_c softmax(y/T)_c * log_softmax(z/T)_c)`` against the multi-hot
    vector ``y``. An ignored entry (-1) counts as absent, as in their data, which leaves
    ``difficult`` objects out of the labels."""
    return soft_cross_entropy(logits, targets.float().clamp(min=0), temperature)  # y in the teacher's place


# ----------------------------------------------------------------------------- baselines (KD, DML, MAXL)

def binary_kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-label distillation: ``T^2 * mean_(batch, classes) KL(Bern(sigmoid(t/T)) || Bern(sigmoid(z/T)))``.

    Each class is its own two-way distribution; the mean over classes matches the reduction of
    the multi-label target loss (BCE-with-logits), so ``lam`` weighs like terms."""
    t = temperature
    s, z = _upcast(teacher_logits) / t, _upcast(student_logits) / t
    p = torch.sigmoid(s)
    # KL(p || q) = p (log p - log q) + (1 - p)(log(1 - p) - log(1 - q)), in log-sigmoid form for stability
    kl = p * (F.logsigmoid(s) - F.logsigmoid(z)) + (1 - p) * (F.logsigmoid(-s) - F.logsigmoid(-z))
    return kl.mean() * (t * t)


class LabelLosses(Protocol):
    """The two losses a task (``sskt_engine.tasks``) gives the baselines below: the target loss
    and the distillation term in its output space (softmax KL, or per-class Bernoulli KL for
    multi-label data)."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor: ...

    def distillation(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float) -> torch.Tensor: ...


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, lam: float,
            temperature: float, task: LabelLosses) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hinton et al. 2015: ``(1 - lam) * CE(z, y) + lam * T^2 * KL(softmax(t/T) || softmax(z/T))``,
    with the task's target loss and distillation term. Returns (total, target term, distillation term)."""
    target = task.loss(student_logits, labels)
    distill = task.distillation(student_logits, teacher_logits.detach(), temperature)
    return (1.0 - lam) * target + lam * distill, target, distill


def dml_losses(logits: list[torch.Tensor], labels: torch.Tensor,
               task: LabelLosses) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Zhang et al. 2018: for every peer k, ``(CE(z_k, y), 1/(K-1) * sum_{j != k} KL(p_j || p_k))``,
    the other peers' probabilities detached, no temperature, KL with batch-mean reduction
    (the task's target loss and distillation term)."""
    k = len(logits)
    if k < 2:
        raise ValueError("DML needs at least two peers")
    out = []
    for i, z in enumerate(logits):
        mimic = sum(task.distillation(z, other.detach(), 1.0) for j, other in enumerate(logits) if j != i)
        out.append((task.loss(z, labels), mimic / (k - 1)))
    return out


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss against class indices: ``mean_batch( -(1 - p_y)^gamma * log p_y )``."""
    one_hot = F.one_hot(labels, logits.shape[1]).to(_upcast(logits).dtype)
    return focal_with_targets(logits, one_hot, gamma)


def subclass_mask(labels: torch.Tensor, num_classes: int, psi: int) -> torch.Tensor:
    """Boolean [N, C * psi]: True on the psi auxiliary sub-classes ``[y*psi, (y+1)*psi)`` of each label."""
    owner = torch.arange(num_classes * psi, device=labels.device) // psi
    return owner[None, :] == labels[:, None]


def masked_subclass_softmax(logits: torch.Tensor, labels: torch.Tensor, psi: int) -> torch.Tensor:
    """MAXL's auxiliary labels: a softmax over the psi sub-classes of the ground-truth class,
    exactly zero elsewhere. (The authors multiply ``exp`` by a 0/1 mask with 1e-8 for the
    zeros; masking with -inf is the same distribution without the overflow risk.)"""
    x = _upcast(logits)
    mask = subclass_mask(labels, x.shape[1] // psi, psi)
    return x.masked_fill(~mask, float("-inf")).softmax(dim=1)


def batch_negative_entropy(probs: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    """``sum_c pbar_c * log(pbar_c + eps)`` of the batch-mean distribution ``pbar``: MAXL's
    regularizer, lowest when the generated labels use every sub-class equally. (``eps`` as
    in the authors' code keeps the gradient finite for sub-classes no sample uses.)"""
    mean = probs.mean(dim=0)
    return (mean * torch.log(mean + eps)).sum()
