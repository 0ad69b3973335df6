"""Ranking metrics of multi-label scores: average precision (two definitions), its class and
sample means, and F1 at a threshold. Plain torch functions of whole score tables: AP needs
every score of a class at once, so the evaluator gathers them over ranks first.

Targets hold three states (``MULTI_LABEL_IGNORED`` in ``data/sets.py``): 1 present, 0 absent,
-1 ignored. An ignored entry (a Pascal VOC object marked ``difficult``, the only one of its
class in the image) counts neither as a hit nor as a false alarm, as the VOC devkit scores it.

The two AP definitions (both reported; ``area`` is the headline):

* ``area``: the area under the precision-recall step curve, ``sum_n (R_n - R_n-1) * P_n`` over
  the distinct scores from the highest down, without interpolation. This is scikit-learn's
  ``average_precision_score`` and torchmetrics' ``average_precision``; tied scores form one step.
* ``voc07``: the VOC2007 devkit's 11-point interpolated AP, the mean over recall levels
  ``t = 0, 0.1, ..., 1`` of the best precision at a recall of at least ``t`` (0 if none).

A class without any positive (not ignored) sample has no AP (NaN) and is left out of the mean.
"""

from __future__ import annotations

import math

import torch

IGNORED = -1.0  # the third state of a multi-label target: neither present nor absent for scoring


def precision_recall(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Precision and recall at every distinct score, highest first, of one class (1-D tensors);
    None when there is no positive. Ignored targets are dropped first."""
    keep = targets >= 0
    scores, positive = scores[keep].double(), targets[keep] > 0
    total = int(positive.sum())
    if total == 0:
        return None
    order = torch.argsort(scores, descending=True, stable=True)
    scores, positive = scores[order], positive[order]
    hits = torch.cumsum(positive.double(), 0)
    seen = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    # the last position of each run of equal scores: a threshold takes a tie group whole
    last = torch.cat([torch.nonzero(scores[1:] != scores[:-1]).flatten(), torch.tensor([len(scores) - 1])])
    hits, seen = hits[last], seen[last]
    return hits / seen, hits / total


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """(area AP, VOC07 11-point AP) of one class; (nan, nan) without positives."""
    curve = precision_recall(scores, targets)
    if curve is None:
        return math.nan, math.nan
    precision, recall = curve
    steps = torch.diff(recall, prepend=torch.zeros(1, dtype=recall.dtype))
    area = float((steps * precision).sum())
    points = []
    for level in torch.linspace(0, 1, 11, dtype=torch.float64):
        reached = precision[recall >= level - 1e-12]
        points.append(float(reached.max()) if len(reached) else 0.0)
    return area, sum(points) / 11.0


def per_class_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> tuple[list[float], list[float]]:
    """Both APs of every class (columns of [N, C] tables)."""
    pairs = [average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def nan_mean(values: list[float]) -> float:
    """The mean of the defined values; nan when none is."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def sample_average_precision(scores: torch.Tensor, targets: torch.Tensor, chunk_cells: int = 4_000_000) -> float:
    """The SSKT authors' "mAP": the area AP over the classes of each image, averaged over the
    images that have a positive (scikit-learn's ``average="samples"``; ignored entries dropped).

    Per image, AP = mean over its positives k of (positives scoring >= s_k) / (entries scoring
    >= s_k), which equals the step-curve area with tie groups; computed for blocks of rows at
    once, ``chunk_cells`` bounding the [rows, C, C] comparison table."""
    n, c = scores.shape
    rows = max(1, chunk_cells // max(c * c, 1))
    total, counted = 0.0, 0
    for start in range(0, n, rows):
        s, t = scores[start:start + rows].double(), targets[start:start + rows]
        valid = t >= 0
        positive = (t > 0) & valid
        at_least = (s[:, None, :] >= s[:, :, None]) & valid[:, None, :]  # [r, k, j]: entry j scores >= s_k
        precision = (at_least & positive[:, None, :]).sum(-1).double() / at_least.sum(-1).clamp(min=1).double()
        positives = positive.sum(-1)
        has = positives > 0
        per_image = (precision * positive).sum(-1) / positives.clamp(min=1)
        total += float(per_image[has].sum())
        counted += int(has.sum())
    return total / counted if counted else math.nan


def f1_at(scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> float:
    """Micro-averaged F1 of the decisions ``score >= threshold`` over every (image, class) entry
    that is not ignored; ``scores`` are probabilities. 1.0 when nothing is present nor predicted."""
    valid = targets >= 0
    predicted = (scores >= threshold) & valid
    present = (targets > 0) & valid
    hits = int((predicted & present).sum())
    denominator = int(predicted.sum()) + int(present.sum())
    return 2.0 * hits / denominator if denominator else 1.0


def sample_f1(probabilities: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """F1 at ``threshold`` of each image (its predicted set against its true set), summed over the
    batch as a 0-d tensor on the device (no host sync): the training-window score. An image with
    nothing present and nothing predicted scores 1."""
    valid = targets >= 0
    predicted = (probabilities >= threshold) & valid
    present = (targets > 0) & valid
    hits = (predicted & present).sum(dim=1).float()
    denominator = (predicted.sum(dim=1) + present.sum(dim=1)).float()
    return torch.where(denominator > 0, 2 * hits / denominator.clamp(min=1), torch.ones_like(hits)).sum()
