"""Losses of every method, written out so each matches METHOD.md term by term.

Reductions are explicit: per-sample sums over classes, then the batch mean.
(The SSKT authors' ``kd`` used mean reduction over batch *and* classes, which
divides the term by the source's class count, 1000x weaker for an ImageNet
source; we use batch-mean KL, the textbook definition.)
"""

from __future__ import annotations

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


def focal_with_targets(logits: torch.Tensor, target_probs: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss against given probabilities (hard labels as one-hot, or MAXL's generated labels)."""
    log_p = F.log_softmax(logits.float(), dim=1)
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


def target_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class indices; BCE-with-logits for multi-label 0/1 targets."""
    if labels.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return F.cross_entropy(logits.float(), labels)
