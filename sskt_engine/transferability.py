"""Transferability scores: how well a source network's outputs on the target's labelled images
predict the target's labels, computed in one pass before any training.

All three are written from their papers (plain torch, float64), for single-label targets:

``leep(probs, labels)``  LEEP, Nguyen, Hassner, Seeger, Archambeau, ICML 2020.
    The source's soft labels ``theta(x)`` over its classes ``z`` give an empirical joint
    ``P(y, z) = 1/n * sum_{i: y_i = y} theta(x_i)_z``, the conditional ``P(y | z) = P(y, z) / P(z)``
    and the "expected empirical predictor" ``p(y | x) = sum_z P(y | z) theta(x)_z``;
    LEEP is the average log-likelihood of the true labels under it (at most 0, higher is
    better). It scores exactly the soft labels SSKT's auxiliary heads learn from.

``nce(source_labels, labels)``  NCE, Tran, Nguyen, Hassner, ICCV 2019.
    The negative conditional entropy ``-H(Y | Z)`` of the target label given the source's hard
    label (its arg-max), from the empirical joint of counts (at most 0; 0 when the source's
    label determines the target's).

``logme(features, labels)``  LogME, You, Liu, Wang, Long, ICML 2021.
    Per target class, the maximum over (alpha, beta) of the log marginal likelihood (evidence)
    of a Bayesian linear regression from the features to the class's one-hot column, with
    prior ``w ~ N(0, alpha^-1 I)`` and noise ``N(0, beta^-1)``; divided by the number of images
    and averaged over classes. The maximum is found by the paper's fixed-point iteration
    (MacKay's), here on the thin SVD of the feature matrix so it costs the same whether there
    are more images than feature dimensions or fewer. Higher is better; the value depends on
    the feature scale and width, so compare LogME between sources on the same target only.

Multi-label targets (0/1 rows, -1 for "ignore"): ``multi_label_mean`` scores each class as its own
present/absent task and averages, which is how the papers' single-label definitions extend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["leep", "nce", "logme", "logme_evidence", "logme_multi_label", "LogMEFit", "multi_label_mean", "SCORES"]

# The smallest probability mass used inside a log: a class no image was given by the source
# (P(z) = 0) drops out of the sums instead of producing 0/0.
_TINY = 1e-300


def _check(labels: torch.Tensor, rows: int, what: str) -> torch.Tensor:
    if labels.ndim != 1 or labels.shape[0] != rows:
        raise ValueError(f"{what}: labels must be a vector of {rows} class indices, got shape {tuple(labels.shape)}")
    if rows == 0:
        raise ValueError(f"{what}: no images to score")
    return labels.long()


def leep(probs: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> float:
    """LEEP of source probabilities ``probs`` [n, Z] (rows sum to 1) for target labels [n]."""
    probs = probs.detach().to(torch.float64)
    labels = _check(labels, probs.shape[0], "LEEP")
    n = probs.shape[0]
    k = int(num_classes or int(labels.max()) + 1)
    joint = torch.zeros(k, probs.shape[1], dtype=torch.float64)
    joint.index_add_(0, labels.cpu(), probs.cpu())
    joint /= n  # P(y, z)
    marginal = joint.sum(dim=0, keepdim=True)  # P(z)
    conditional = joint / marginal.clamp_min(_TINY)  # P(y | z); a column with P(z) = 0 is all zeros
    predicted = probs.cpu() @ conditional.T  # [n, k]: p(y | x) of the expected empirical predictor
    chosen = predicted.gather(1, labels.cpu().view(-1, 1)).squeeze(1)
    return float(torch.log(chosen.clamp_min(_TINY)).mean())


def nce(source_labels: torch.Tensor, labels: torch.Tensor) -> float:
    """NCE: ``-H(Y | Z)`` in nats, for the source's hard labels [n] and the target labels [n]."""
    labels = _check(labels, source_labels.shape[0], "NCE")
    z = source_labels.long().cpu()
    y = labels.cpu()
    n = y.shape[0]
    joint = torch.zeros(int(y.max()) + 1, int(z.max()) + 1, dtype=torch.float64)
    joint.index_put_((y, z), torch.ones(n, dtype=torch.float64), accumulate=True)
    joint /= n
    marginal = joint.sum(dim=0, keepdim=True)
    present = joint > 0
    conditional = joint[present] / marginal.expand_as(joint)[present]
    return float((joint[present] * torch.log(conditional)).sum())


@dataclass(frozen=True)
class LogMEFit:
    """The maximum-evidence fit of one target column: evidence / n at (alpha, beta)."""

    evidence: float
    alpha: float
    beta: float
    iterations: int


def logme_evidence(features: torch.Tensor, target: torch.Tensor, *, tolerance: float = 1e-6,
                   max_iterations: int = 200, _svd: tuple[torch.Tensor, torch.Tensor] | None = None) -> LogMEFit:
    """Maximum log evidence per image of ``target`` [n] regressed on ``features`` [n, D].

    With ``F = U S V^T`` (thin SVD, r = rank) and ``z = U^T y``, every quantity of the paper's
    iteration has a closed form in the r singular directions: the posterior mean's squared norm
    ``m^T m = sum (beta s z / (alpha + beta s^2))^2``, the residual ``||F m - y||^2 = ||y||^2 - ||z||^2
    + sum (alpha z / (alpha + beta s^2))^2``, the effective number of parameters
    ``gamma = sum beta s^2 / (alpha + beta s^2)`` and ``log|A| = sum log(alpha + beta s^2) + (D - r) log alpha``.
    """
    f = features.detach().to(torch.float64).cpu()
    y = target.detach().to(torch.float64).cpu()
    n, d = f.shape
    u, s = _svd if _svd is not None else _thin_svd(f)
    z = u.T @ y
    s2 = s * s
    outside = float(y @ y - z @ z)  # the part of y no feature direction reaches
    outside = max(outside, 0.0)
    alpha, beta = 1.0, 1.0
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        denom = alpha + beta * s2
        gamma = float((beta * s2 / denom).sum())
        m2 = float(((beta * s * z / denom) ** 2).sum())
        residual = outside + float(((alpha * z / denom) ** 2).sum())
        new_alpha = gamma / max(m2, _TINY)
        new_beta = max(n - gamma, _TINY) / max(residual, _TINY)
        converged = (abs(new_alpha / new_beta - alpha / beta) <= tolerance * (alpha / beta))
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    evidence = _log_evidence(alpha, beta, s2, z, outside, n, d)
    return LogMEFit(evidence / n, alpha, beta, iterations)


def _log_evidence(alpha: float, beta: float, s2: torch.Tensor, z: torch.Tensor, outside: float, n: int,
                  d: int) -> float:
    """``log p(y | F, alpha, beta)`` (the paper's equation 2) in the SVD basis."""
    denom = alpha + beta * s2
    m2 = float(((beta * s2.sqrt() * z / denom) ** 2).sum())
    residual = outside + float(((alpha * z / denom) ** 2).sum())
    log_det = float(torch.log(denom).sum()) + (d - s2.shape[0]) * math.log(alpha)
    return (n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
            - beta / 2 * residual - alpha / 2 * m2 - log_det / 2)


def _thin_svd(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    u, s, _ = torch.linalg.svd(f, full_matrices=False)
    keep = s > s.max() * max(f.shape) * torch.finfo(torch.float64).eps if s.numel() else s > 0
    return u[:, keep], s[keep]


def logme(features: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> float:
    """LogME of ``features`` [n, D] for single-label ``labels`` [n]: the mean over target classes of
    the maximum evidence per image of that class's one-hot column."""
    labels = _check(labels, features.shape[0], "LogME")
    k = int(num_classes or int(labels.max()) + 1)
    f = features.detach().to(torch.float64).cpu()
    svd = _thin_svd(f)
    columns = torch.nn.functional.one_hot(labels.cpu(), k).to(torch.float64)
    return float(sum(logme_evidence(f, columns[:, c], _svd=svd).evidence for c in range(k)) / k)


def logme_multi_label(features: torch.Tensor, targets: torch.Tensor) -> float:
    """LogME of a multi-hot target [n, C]: each class's 0/1 column (rows marked -1 left out)."""
    f = features.detach().to(torch.float64).cpu()
    values = []
    for c in range(targets.shape[1]):
        keep = targets[:, c] >= 0
        column = targets[keep, c].to(torch.float64)
        if column.numel() and 0 < float(column.sum()) < column.numel():
            values.append(logme_evidence(f[keep], column).evidence)
    return sum(values) / len(values) if values else float("nan")


def multi_label_mean(score: Callable[[torch.Tensor, torch.Tensor], float], inputs: torch.Tensor,
                     targets: torch.Tensor) -> float:
    """A single-label score averaged over the classes of a multi-label target [n, C], each class as a
    binary present/absent task (rows marked -1 for it are left out; a class present in all or none of
    the rows says nothing and is skipped)."""
    values = []
    for c in range(targets.shape[1]):
        keep = targets[:, c] >= 0
        column = targets[keep, c].long()
        if column.numel() and 0 < int(column.sum()) < column.numel():
            values.append(score(inputs[keep], column))
    return sum(values) / len(values) if values else float("nan")


@dataclass(frozen=True)
class ScoreInfo:
    key: str
    title: str
    what: str  # what the score reads from the source


SCORES: tuple[ScoreInfo, ...] = (
    ScoreInfo("leep", "LEEP", "soft labels (at the preset's temperature)"),
    ScoreInfo("logme", "LogME", "penultimate features"),
    ScoreInfo("nce", "NCE", "arg-max source labels"),
)
