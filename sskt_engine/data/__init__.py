"""Datasets: a registry of loaders that turn a ``DataConfig`` into train/val image sets.

Every loader returns images as one uint8 tensor ``[N, 3, H, W]`` in memory when the
dataset fits (CIFAR, STL10, the demo, small image folders), or as a list of files
otherwise. ``batches.py`` turns either into a stream of augmented, normalized batches
on the training device.
"""

from __future__ import annotations

from typing import Callable

from ..config import DataConfig
from ..registry import DATASETS, DatasetInfo
from .sets import DatasetSplits, FileImageSet, ImageSet


# A loader reads the dataset named by ``cfg`` (root, image_size, download) and returns its
# full train split and its own test/val split; subsets and val_split are applied by
# ``load_dataset`` so every dataset gets them the same way. Each registers a DatasetInfo.
DatasetLoader = Callable[[DataConfig], DatasetSplits]
__all__ = ["DATASETS", "DatasetInfo", "DatasetLoader", "DatasetSplits", "FileImageSet", "ImageSet", "load_dataset",
           "normalised_for_target"]

from . import builtin  # noqa: E402,F401  (registers the datasets)
from .splits import load_dataset, normalised_for_target  # noqa: E402,F401
