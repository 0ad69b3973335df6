"""Clip sets: what a video dataset loader returns, beside ``sets.ImageSet`` / ``FileImageSet``.

A clip is a short run of frames with one label. In memory (the video demo) every clip of a set
holds the same number of frames; on disk each sample is a video file or a folder of frame
images, of any length, decoded per batch by a DataLoader (``clip_batches.py``). Which frames
of a sample the network sees (``clip_len`` at ``frame_stride``, random in training, centred in
validation) is chosen by the batch stream, not stored here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClipSet:
    """Clips held in memory. ``clips`` uint8 [N, F, 3, H, W]: F frames per clip, frame-major so
    each frame is laid out as an ``ImageSet`` image (one gather crops every frame of a batch);
    ``labels`` int64 [N]."""

    clips: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def frames(self) -> int:
        """Frames stored per clip (F)."""
        return int(self.clips.shape[1])

    def subset(self, indices: torch.Tensor) -> "ClipSet":
        return ClipSet(self.clips[indices], self.labels[indices])


@dataclass(frozen=True)
class FileClipSet:
    """Clips left on disk: each path is a video file or a folder of frame images (sorted by
    name); frames are resized (shorter side) and centre-cropped to ``image_size``."""

    paths: tuple[str, ...]
    labels: torch.Tensor
    image_size: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> "FileClipSet":
        return FileClipSet(tuple(self.paths[i] for i in indices.tolist()), self.labels[indices], self.image_size)


def is_clip_set(dataset: object) -> bool:
    return isinstance(dataset, (ClipSet, FileClipSet))


# ----------------------------------------------------------------------------- temporal sampling

def clip_span(clip_len: int, stride: int) -> int:
    """Frames a clip of ``clip_len`` frames at ``stride`` stretches over."""
    return (clip_len - 1) * stride + 1


def clip_frame_indices(frames: int, clip_len: int, stride: int, position: float) -> list[int]:
    """The frame indices of one clip of a sample with ``frames`` frames.

    ``position`` in [0, 1] places the clip among all the starts that fit: 0 the first, 1 the last,
    0.5 the centre (validation); training draws it uniformly. A sample shorter than the clip's
    span is looped (frame indices taken modulo its length), as the 3D-ResNet reference code does,
    so every clip has exactly ``clip_len`` frames.
    """
    if frames < 1:
        raise ValueError("a clip needs at least one frame")
    span = clip_span(clip_len, stride)
    if frames < span:
        return [(i * stride) % frames for i in range(clip_len)]
    starts = frames - span + 1
    start = min(int(position * starts), starts - 1)
    return [start + i * stride for i in range(clip_len)]


def view_positions(views: int) -> list[float]:
    """Positions of ``views`` evenly spaced validation clips; one view is the centre clip."""
    return [(j + 0.5) / views for j in range(views)]
