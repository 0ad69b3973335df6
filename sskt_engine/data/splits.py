"""From a ``DataConfig`` to the train/val sets a run uses: the dataset, a held-out
validation fraction, and a limited-label subset.

Every random choice comes from a ``torch.Generator`` seeded from the run's seed and
the purpose of the draw, never from global RNG: the same preset and seed select the
same images on any machine, in any process, whatever ran before.
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch

from ..config import DataConfig, TargetConfig
from ..errors import DataError
from ..registry import DATASETS
from .sets import DatasetSplits

DEFAULT_VAL_SPLIT = 0.1


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple such as (seed, "val_split") or (seed, epoch).

    Hashing instead of ``seed + epoch`` keeps streams for different purposes and
    neighbouring seeds unrelated; hashlib is used because ``hash()`` of a str changes
    between processes.
    """
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def seeded_generator(*parts: int | str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def class_of_each(labels: torch.Tensor) -> torch.Tensor:
    """Class index per sample used for stratifying: the label itself, or for multi-label
    rows [N, C] the first positive class (an approximation: a row counts for one class)."""
    if labels.ndim == 1:
        return labels.long()
    return (labels > 0).float().argmax(dim=1)


def _members_by_class(labels: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    classes = class_of_each(labels)
    return [(int(c), torch.nonzero(classes == c).flatten()) for c in torch.unique(classes).tolist()]


def stratified_holdout(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (train, val) with ``fraction`` of every class in val.

    A class with at least two images keeps at least one on each side, so no class
    vanishes from training or from validation. Indices come back sorted.
    """
    generator = seeded_generator(seed, "val_split")
    train_parts, val_parts = [], []
    for _, members in _members_by_class(labels):
        shuffled = members[torch.randperm(len(members), generator=generator)]
        n = len(members)
        n_val = min(max(round(fraction * n), 1), n - 1) if n >= 2 else 0
        val_parts.append(shuffled[:n_val])
        train_parts.append(shuffled[n_val:])
    empty = torch.empty(0, dtype=torch.long)
    train = torch.cat(train_parts) if train_parts else empty
    val = torch.cat(val_parts) if val_parts else empty
    return torch.sort(train).values, torch.sort(val).values


def per_class_subset(labels: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, dict[int, int]]:
    """Indices of ``per_class`` random images of every class (sorted), and the classes
    that had fewer, with how many they had (those keep all of theirs)."""
    generator = seeded_generator(seed, "labels_per_class")
    parts, short = [], {}
    for cls, members in _members_by_class(labels):
        shuffled = members[torch.randperm(len(members), generator=generator)]
        if len(members) < per_class:
            short[cls] = len(members)
        parts.append(shuffled[:per_class])
    chosen = torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)
    return torch.sort(chosen).values, short


def multi_label_subset(labels: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, dict[int, int]]:
    """``labels_per_class`` for multi-label rows [N, C]: a greedy subset in which every class has
    at least ``per_class`` positive images. Images are visited in a seeded random order; the
    rarest class goes first, taking its next positive images until it has enough, and every
    image taken counts for all its classes (so common classes often end above ``per_class``).
    Returns the indices (sorted) and the classes that had fewer positives, with their count.
    An image with no positive label is never taken: it adds no positive to any class."""
    generator = seeded_generator(seed, "labels_per_class")
    order = torch.randperm(labels.shape[0], generator=generator)
    positive = (labels[order] > 0).numpy()
    counts = positive.sum(axis=0) * 0
    chosen = [False] * len(order)
    short: dict[int, int] = {}
    for cls in sorted(range(positive.shape[1]), key=lambda c: (int(positive[:, c].sum()), c)):
        for row in positive[:, cls].nonzero()[0].tolist():
            if counts[cls] >= per_class:
                break
            if not chosen[row]:
                chosen[row] = True
                counts += positive[row]
        if counts[cls] < per_class:
            short[cls] = int(counts[cls])
    picked = order[torch.tensor(chosen, dtype=torch.bool)] if len(chosen) else order
    return torch.sort(picked).values, short


def _short_note(short: dict[int, int], per_class: int, class_names: tuple[str, ...]) -> str:
    examples = ", ".join(f"{class_names[c] if c < len(class_names) else c} ({n})" for c, n in list(short.items())[:3])
    return (f"{len(short)} class(es) have fewer than labels_per_class={per_class} training images and keep all "
            f"they have, e.g. {examples}")


def hold_out_val(splits: DatasetSplits, fraction: float, seed: int) -> DatasetSplits:
    """Replace the val split by ``fraction`` of train, stratified per class."""
    train_idx, val_idx = stratified_holdout(splits.train.labels, fraction, seed)
    if len(val_idx) == 0:
        raise DataError(f"the training set ({len(splits.train)} images) is too small to hold out a validation "
                        "set; add images or give the dataset its own validation split.")
    return dataclasses.replace(splits, train=splits.train.subset(train_idx), val=splits.train.subset(val_idx),
                               val_held_out=True, test=splits.val if len(splits.val) else None)


def limit_labels(splits: DatasetSplits, per_class: int, seed: int) -> DatasetSplits:
    """Keep ``per_class`` training images of every class (single-label), or a subset in which
    every class has at least ``per_class`` positive images (multi-label; said in the notes)."""
    labels = splits.train.labels
    if labels.ndim == 1:
        keep, short = per_class_subset(labels, per_class, seed)
        notes = splits.notes + ((_short_note(short, per_class, splits.class_names),) if short else ())
        return dataclasses.replace(splits, train=splits.train.subset(keep), notes=notes)
    keep, short = multi_label_subset(labels, per_class, seed)
    positives = (labels[keep] > 0).sum(dim=0).tolist()
    note = (f"multi-label data: labels_per_class={per_class} kept {len(keep)} of {len(labels)} training images, "
            f"a greedy subset (seed {seed}) in which every class has at least {per_class} positive images; "
            f"positives per class from {min(positives)} to {max(positives)}")
    notes = splits.notes + (note,) + ((_short_note(short, per_class, splits.class_names),) if short else ())
    return dataclasses.replace(splits, train=splits.train.subset(keep), notes=notes)


def normalised_for_target(splits: DatasetSplits, target: TargetConfig) -> DatasetSplits:
    """The splits with the target's own input normalisation (``target.mean``/``std``) in place of
    the dataset's, for pretrained weights trained another way. Only what the target sees changes:
    sources take the batch's 0-1 pixels with their own normalisation, and the checkpoint records
    this mean/std, so export and predict feed the network the same way."""
    if target.mean is None or target.std is None:
        return splits
    return dataclasses.replace(splits, mean=tuple(target.mean), std=tuple(target.std))


def load_dataset(cfg: DataConfig, seed: int) -> DatasetSplits:
    """Read the dataset ``cfg.dataset`` and apply ``val_split`` and ``labels_per_class``.

    A loader that has no validation split of its own returns an empty val; it then
    gets ``val_split`` of train, or 10% when val_split is 0 (said in the notes).
    """
    splits = DATASETS.get(cfg.dataset).load(cfg)
    if len(splits.train) == 0:
        raise DataError(f"dataset {cfg.dataset} has no training images.")
    fraction = cfg.val_split
    if fraction <= 0 and len(splits.val) == 0:
        fraction = DEFAULT_VAL_SPLIT
        splits = dataclasses.replace(splits, notes=splits.notes + (
            f"the dataset has no validation split; held out {fraction:.0%} of the training images "
            "(set data.val_split to change this)",))
    if fraction > 0:
        splits = hold_out_val(splits, fraction, seed)
    if cfg.labels_per_class:
        splits = limit_labels(splits, cfg.labels_per_class, seed)
    return splits
