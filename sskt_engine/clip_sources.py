"""Sources on clips: what an image source or a video source sees of a clip, and how its logits
for a clip are formed.

A batch of clips has pixels [B, 3, T, H, W]. Per source:

* an **image source** (``FrozenSource.clip_len == 0``) sees frames. With ``clip_frames`` 1 (the
  default) it sees the centre frame ``pixels[:, :, T // 2]``, exactly as the SSKT authors'
  video code (``inputs[:, :, T // 2]``), and its logits on that frame label the clip. With
  ``clip_frames`` k > 1 it sees k evenly spaced frames and the clip's label is the mean of its k
  soft labels (softmax distributions), returned as the log of that mean: log-probabilities are
  logits whose softmax is exactly the mean distribution, so every auxiliary and distillation
  loss applies its temperature to the averaged distribution the same way as to any source's
  logits. (Averaging the logits instead would give a normalised geometric mean, which is not
  "the mean of the soft labels".)
* a **video source** (``clip_len > 0``: a 3D network from a checkpoint, an earlier run or a
  compiled file) sees the whole clip, each frame resized to its input side.

Resizing and normalisation are the ensemble's (``SourceEnsemble.prepared``), on frames
[N, 3, H, W], so images and clips are prepared by the same code.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from .errors import SourceError
from .frozen_source import FrozenSource


def frame_positions(length: int, count: int) -> list[int]:
    """The frames an image source sees of a clip of ``length`` frames: the centre frame for
    ``count`` 1 (``length // 2``, the authors' choice), else ``count`` evenly spaced frames, the
    centre of each of ``count`` equal parts of the clip (every frame when ``count >= length``)."""
    if count <= 1:
        return [length // 2]
    if count >= length:
        return list(range(length))
    return [min(length - 1, int((i + 0.5) * length / count)) for i in range(count)]


def clip_frames(pixels: torch.Tensor, count: int) -> torch.Tensor:
    """Frames of every clip of [B, 3, T, H, W] as an image batch [B * k, 3, H, W]; the k frames of
    clip b are rows b * k .. b * k + k - 1."""
    positions = frame_positions(pixels.shape[2], count)
    frames = pixels[:, :, positions]  # [B, 3, k, H, W]
    batch, channels, k, height, width = frames.shape
    return frames.transpose(1, 2).reshape(batch * k, channels, height, width)


def mean_soft_labels(logits: torch.Tensor, count: int) -> torch.Tensor:
    """[B * k, C] logits of k frames per clip -> [B, C]: the log of the mean of the k softmax
    distributions (``logsumexp`` of the log-softmax, minus log k: finite where the logits are).
    One frame per clip: the logits themselves."""
    if count == 1:
        return logits
    per_clip = torch.log_softmax(logits.float(), dim=1).view(-1, count, logits.shape[1])
    return torch.logsumexp(per_clip, dim=1) - math.log(count)


def whole_clips(pixels: torch.Tensor) -> torch.Tensor:
    """[B, 3, T, H, W] -> [B * T, 3, H, W]: every frame, so the ensemble can resize them."""
    batch, channels, length, height, width = pixels.shape
    return pixels.transpose(1, 2).reshape(batch * length, channels, height, width)


def as_clips(frames: torch.Tensor, batch: int) -> torch.Tensor:
    """The inverse of ``whole_clips`` after resizing: [B * T, 3, S, S] -> [B, 3, T, S, S]."""
    _, channels, height, width = frames.shape
    return frames.view(batch, -1, channels, height, width).transpose(1, 2).contiguous()


def label_clips(ensemble: Any, pixels: torch.Tensor) -> list[torch.Tensor | None]:
    """Every source's logits for a batch of clips, in the order of ``ensemble`` (a
    ``sources.SourceEnsemble``, which calls this inside its inference mode and precision; not
    imported here, as the ensemble imports this module). Frames prepared once per preprocessing
    group and frame count are shared by the sources that need them."""
    outputs: list[torch.Tensor | None] = [None] * len(ensemble.sources)
    batch = pixels.shape[0]
    for group, (_, members) in enumerate(ensemble.groups):
        prepared: dict[int, torch.Tensor] = {}  # frames per clip (0: the whole clip) -> network input
        for index in members:
            source = ensemble.sources[index]
            count = 0 if source.clip_len else max(1, int(source.clip_frames))
            if count not in prepared:
                if count == 0:
                    prepared[count] = as_clips(ensemble.prepared(whole_clips(pixels), group), batch)
                else:
                    prepared[count] = ensemble.prepared(clip_frames(pixels, count), group)
            logits = ensemble.nets[index](prepared[count])
            outputs[index] = logits if count == 0 else mean_soft_labels(logits, min(count, pixels.shape[2]))
    return outputs


def check_sources_fit(sources: Sequence[FrozenSource], clip_len: int) -> None:
    """Refuse, with one sentence, a video source on image data: a 3D network cannot label an image.
    (Image sources fit both: on clips they see frames.)"""
    if clip_len:
        return
    for source in sources:
        if source.clip_len:
            raise SourceError(f"source {source.name!r} is a video network (it takes clips of frames); it can "
                              "teach only on video data, and this dataset holds images")
