"""Datasets: a registry of loaders that turn a ``DataConfig`` into train/val image sets.

Every loader returns images as one uint8 tensor ``[N, 3, H, W]`` in memory when the
dataset fits (CIFAR, STL10, the demo, small image folders), or as a list of files
otherwise. ``batches.py`` turns either into a stream of augmented, normalized batches
on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..config import DataConfig
from ..registry import Registry


@dataclass(frozen=True)
class ImageSet:
    """Images held in memory. ``images`` uint8 [N, 3, H, W]; ``labels`` int64 [N]
    (or float [N, C] of 0/1 for multi-label data)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        return ImageSet(self.images[indices], self.labels[indices])


@dataclass(frozen=True)
class FileImageSet:
    """Images left on disk (datasets too large for memory); decoded per sample by a DataLoader."""

    paths: tuple[str, ...]
    labels: torch.Tensor
    image_size: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> "FileImageSet":
        return FileImageSet(tuple(self.paths[i] for i in indices.tolist()), self.labels[indices], self.image_size)


@dataclass(frozen=True)
class DatasetSplits:
    train: ImageSet | FileImageSet
    val: ImageSet | FileImageSet
    class_names: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int
    multi_label: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)  # warnings for the log (skipped files, ...)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# A loader reads the dataset named by ``cfg`` (root, image_size, download) and returns its
# full train split and its own test/val split; subsets and val_split are applied by
# ``load_dataset`` so every dataset gets them the same way.
DatasetLoader = Callable[[DataConfig], DatasetSplits]
DATASETS: Registry[DatasetLoader] = Registry("dataset")

from . import builtin  # noqa: E402,F401  (registers the datasets)
from .splits import load_dataset  # noqa: E402,F401
