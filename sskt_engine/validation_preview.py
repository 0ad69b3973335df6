"""Look inside a finished run: validation images with the trained network's predictions.

The GUI calls this from a worker thread and gets plain numpy arrays and strings back,
so it never touches tensors itself."""

from __future__ import annotations

import os

import numpy as np
import torch

from .data import load_dataset, normalised_for_target
from .data.clip_batches import batch_stream
from .data.splits import seeded_generator
from .export import load_run_network
from .runs import find_run
from .tasks import task_for_data


@torch.no_grad()
def validation_predictions(run_dir: str | os.PathLike, count: int = 32, checkpoint: str = "best",
                           seed: int = 0) -> tuple[np.ndarray, list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(uint8 images [n, H, W, 3], true labels, predicted labels) for ``count`` validation
    images (clips: strips of frames, W > H) drawn at random (fixed by ``seed``). Labels are tuples of class names, so single-
    and multi-label runs read alike: one name each for single-label data; for multi-label data
    every label present, and every class the network gives at least 0.5 (possibly none).
    Tuples rather than joined text, so a reader compares label sets, never strings."""
    folder = find_run(str(run_dir))
    config = folder.config()
    model, _, _ = load_run_network(folder, checkpoint)
    data = normalised_for_target(load_dataset(config.data, config.train.seed), config.target)
    pick = torch.randperm(len(data.val), generator=seeded_generator(seed, "inspect"))[:count]
    stream = batch_stream(data, data.val.subset(pick), config.data, batch_size=max(len(pick), 1), shuffle=False,
                          augment=False, mean=data.mean, std=data.std, device="cpu", seed=seed, resident="auto")
    batch = next(iter(stream.epoch(0)))
    logits = model(batch.images)
    names = data.class_names
    images = _pictures(batch.pixels)
    if data.multi_label:
        return images, [_chosen(row > 0, names) for row in batch.labels], \
            [_chosen(row >= 0.5, names) for row in task_for_data(data).outputs(logits)]
    predicted = logits.argmax(dim=1)
    return images, [(names[int(i)],) for i in batch.labels], [(names[int(i)],) for i in predicted]


def _pictures(pixels: torch.Tensor) -> np.ndarray:
    """uint8 [n, H, W, 3] of the batch's images; a clip [3, T, H, W] becomes a strip of a few of its
    frames side by side (as the dataset preview shows clips)."""
    raw = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
    if raw.dim() == 4:
        return raw.permute(0, 2, 3, 1).contiguous().numpy()
    from .data.clip_preview import join_frames, strip_positions

    frames = raw[:, :, strip_positions(raw.shape[2])].permute(0, 2, 3, 4, 1).numpy()  # [n, k, H, W, 3]
    if len(frames) == 0:
        return np.zeros((0, raw.shape[3], raw.shape[4], 3), np.uint8)
    return np.stack([join_frames(np.ascontiguousarray(clip)) for clip in frames])


def _chosen(mask: torch.Tensor, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(names[i] for i in torch.nonzero(mask).flatten().tolist())
