"""What every dataset loader returns: images in memory or on disk, with their labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class ImageSet:
    """Images held in memory. ``images`` uint8 [N, 3, H, W]; ``labels`` int64 [N], or for
    multi-label data float [N, C] of 1 present / 0 absent / -1 ignored in loss and scoring
    (``average_precision.IGNORED``: a VOC class whose only objects are ``difficult``)."""

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
    # Frames per clip the target sees (data.clip_len or the dataset's default); 0: the data are images.
    # train/val are then ``clips.ClipSet`` / ``clips.FileClipSet`` and image_size is the frame side.
    clip_len: int = 0
    # Honest model selection: ``val_held_out`` says ``val`` was held out of train (data.val_split),
    # so choosing the best epoch on it peeks at nothing; ``test`` is then the dataset's own
    # test/val split, scored but never used to choose (None when ``val`` is that split itself).
    val_held_out: bool = False
    test: Any = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_video(self) -> bool:
        """True when the samples are clips (batches [B, 3, T, H, W]) rather than images."""
        return self.clip_len > 0
