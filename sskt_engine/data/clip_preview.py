"""Clips for the GUI's dataset preview: each sample as a strip of a few of its frames side by side.

The strip shows the centre clip the network would validate on (``clip_len`` frames at
``frame_stride``), thinned to ``STRIP_FRAMES`` evenly spaced frames with a thin dark gap between
them, so a sample's motion reads left to right at a glance.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .clips import ClipSet, FileClipSet, clip_frame_indices

STRIP_FRAMES = 4
GAP = 2  # pixels between frames, scaled with the frame side below


def strip_positions(clip_len: int, shown: int = STRIP_FRAMES) -> list[int]:
    """Which frames of a clip of ``clip_len`` frames the strip shows: first, last and evenly between."""
    shown = min(shown, clip_len)
    if shown == 1:
        return [clip_len // 2]
    return [round(i * (clip_len - 1) / (shown - 1)) for i in range(shown)]


def join_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 [k, S, S, 3] -> one strip [S, k * S + (k - 1) * gap, 3], frames separated by dark gaps."""
    count, side = frames.shape[0], frames.shape[1]
    gap = max(1, GAP * side // 32)
    strip = np.full((side, count * side + (count - 1) * gap, 3), 24, np.uint8)
    for i, frame in enumerate(frames):
        strip[:, i * (side + gap): i * (side + gap) + side] = frame
    return strip


def clip_strips(dataset: ClipSet | FileClipSet, picked: Sequence[int], clip_len: int,
                stride: int) -> tuple[np.ndarray, list[int]]:
    """Strips uint8 [n, S, W, 3] of the samples ``picked`` that can be read, and their positions in
    ``picked`` (an unreadable video is left out of the preview)."""
    shown = strip_positions(clip_len)
    strips, kept = [], []
    for position, index in enumerate(picked):
        if isinstance(dataset, ClipSet):
            frames_of_clip = clip_frame_indices(dataset.frames, clip_len, stride, 0.5)
            chosen = [frames_of_clip[i] for i in shown]
            frames = dataset.clips[index, chosen].permute(0, 2, 3, 1).numpy()
        else:
            from .video_decoding import read_frames

            def pick(count: int) -> list[int]:
                frames_of_clip = clip_frame_indices(count, clip_len, stride, 0.5)
                return [frames_of_clip[i] for i in shown]

            try:
                frames = read_frames(dataset.paths[index], pick, dataset.image_size)
            except Exception:  # noqa: BLE001 - an unreadable video is left out of the preview
                continue
        strips.append(join_frames(np.ascontiguousarray(frames)))
        kept.append(position)
    if not strips:
        side = dataset.image_size if isinstance(dataset, FileClipSet) else int(dataset.clips.shape[-1])
        return np.zeros((0, side, side, 3), np.uint8), kept
    return np.stack(strips), kept


def clip_labels(labels: torch.Tensor, picked: Sequence[int], kept: Sequence[int],
                class_names: Sequence[str]) -> list[str]:
    return [class_names[int(labels[picked[k]])] for k in kept]
