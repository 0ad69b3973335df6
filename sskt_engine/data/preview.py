"""A handful of training images for the GUI's dataset preview grid.

The grid answers "did I point at the right data, and are the classes what I think?",
so the samples are spread over the classes (round-robin), chosen deterministically
from the seed. Image folders are previewed from their file listing without decoding
the whole folder, so the preview stays quick on large folders.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from ..registry import DATASETS
from .sets import FileImageSet, ImageSet
from .splits import class_of_each, seeded_generator


def spread_indices(labels: torch.Tensor, count: int, seed: int) -> list[int]:
    """Indices that visit the classes in turn (class 0, 1, ..., 0, 1, ...), each class's
    images in a seeded random order, until ``count`` are taken or none are left."""
    generator = seeded_generator(seed, "preview")
    classes = class_of_each(labels)
    queues = []
    for cls in torch.unique(classes).tolist():
        members = torch.nonzero(classes == cls).flatten()
        queues.append(members[torch.randperm(len(members), generator=generator)].tolist())
    picked: list[int] = []
    depth = 0
    while len(picked) < count and any(depth < len(q) for q in queues):
        picked.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return picked[:count]


def _label_name(label: torch.Tensor, class_names: Sequence[str]) -> str:
    if label.ndim == 0:
        return class_names[int(label)]
    return ", ".join(class_names[i] for i in torch.nonzero(label > 0).flatten().tolist()) or "(none)"


def _decode_files(paths: Sequence[str], size: int) -> tuple[list[np.ndarray], list[int]]:
    """Decode the files that can be read; returns the arrays and their positions."""
    from .image_folder import load_rgb

    arrays, kept = [], []
    for position, path in enumerate(paths):
        try:
            arrays.append(np.asarray(load_rgb(path, size), dtype=np.uint8))
        except Exception:  # noqa: BLE001 - an unreadable file is left out of the preview
            continue
        kept.append(position)
    return arrays, kept


def _stack(arrays: list[np.ndarray], size: int) -> np.ndarray:
    return np.stack(arrays) if arrays else np.zeros((0, size, size, 3), dtype=np.uint8)


def _preview_image_folder(cfg: DataConfig, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    from .dataset_files import require_root
    from .image_folder import DEFAULT_IMAGE_SIZE, find_layout, list_split

    layout = find_layout(require_root(cfg, "imagefolder"))
    listing = list_split(layout.train_folder, layout.class_names)
    if not listing.paths:
        raise DataError(f"{layout.train_folder} holds no images.")
    size = cfg.image_size or DEFAULT_IMAGE_SIZE
    # Ask for a few extra candidates so unreadable files do not shrink the grid.
    candidates = spread_indices(torch.tensor(listing.labels), count + 8, seed)
    arrays, kept = _decode_files([listing.paths[i] for i in candidates], size)
    arrays, kept = arrays[:count], kept[:count]
    names = [layout.class_names[listing.labels[candidates[k]]] for k in kept]
    return _stack(arrays, size), names


def preview_samples(cfg: DataConfig, count: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Up to ``count`` training images as uint8 [n, H, W, 3] with their class names (for video
    data up to ``count // 2`` samples, each a strip of frames [H, W, 3] with W > H).

    Raises ``DataError`` (and ``UnknownEntry`` for an unknown dataset) exactly as
    loading the dataset for training would.
    """
    if cfg.dataset == "imagefolder":
        return _preview_image_folder(cfg, count, seed)
    splits = DATASETS.get(cfg.dataset).load(cfg)
    train = splits.train
    if splits.is_video:  # clips: one strip of frames per sample, half as many samples (they are wide)
        from .clip_preview import clip_labels, clip_strips

        picked = spread_indices(train.labels, max(count, 0) // 2, seed)
        strips, kept = clip_strips(train, picked, splits.clip_len, cfg.frame_stride)
        return strips, clip_labels(train.labels, picked, kept, splits.class_names)
    picked = spread_indices(train.labels, max(count, 0), seed)
    if isinstance(train, ImageSet):
        index = torch.tensor(picked, dtype=torch.long)
        images = train.images[index].permute(0, 2, 3, 1).contiguous().numpy()
        return images, [_label_name(train.labels[i], splits.class_names) for i in picked]
    assert isinstance(train, FileImageSet)
    arrays, kept = _decode_files([train.paths[i] for i in picked], train.image_size)
    names = [_label_name(train.labels[picked[k]], splits.class_names) for k in kept]
    return _stack(arrays, train.image_size), names

