"""The built-in multi-label demo (``demo-multilabel``): scenes of the demo world holding one to
three glyphs, labelled with every sign group present.

Each 32x32 scene is drawn in the ``signs`` style (``demo_world.py``: saturated palette, a faint
grating, one clutter stroke, noise) on a 2x2 grid of 16-pixel cells: 1, 2 or 3 cells (equally
likely) each hold a random glyph of the 12 shapes, radius 5-7 px, jittered and slightly rotated.
The targets are the six signs: sign s is present when some glyph of its group is (two glyphs of
one group give one label). About 30 % of the (image, sign) entries are positive.

The glyphs are smaller than in the shapes task (radius 7-12), so the demo preset lets the
shipped shapes network look at the scenes upsampled to 64 px (``input_size: 64``), where each
glyph has about the size it was trained on; being a global-pooled CNN, it then reports a mix of
the glyphs it sees. Deterministic: a fixed seed per split and chunk of 1,000 scenes; cached.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .demo_world import (IMAGE_SIZE, SHAPES_CLASSES, SIGN_OF_SHAPE, SIGNS_CLASSES, _add_clutter, _add_noise,
                         _colours, _grating, glyph_alpha_at)
from .sets import DatasetSplits, ImageSet

MAX_GLYPHS = 3
_CELL = IMAGE_SIZE // 2
_SIZES = {"train": 4_000, "test": 1_500}
_SEEDS = {"train": 53_001, "test": 53_002}
_CHUNK = 1000


def _render(rng: np.random.Generator, glyphs: np.ndarray) -> np.ndarray:
    """Scenes float32 [n, 3, H, W] in 0..1 for glyph ids [n, MAX_GLYPHS] (-1: no glyph in that slot)."""
    n = len(glyphs)
    bg_lum = rng.uniform(0.25, 0.75, n).astype(np.float32)
    background = _colours(rng, n, bg_lum, 0.9) + np.float32(0.05) * _grating(rng, n, (0.3, 1.2))[:, None]
    img = np.broadcast_to(background, (n, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)  # a writable copy
    cells = np.argsort(rng.random((n, 4)), axis=1)  # a random cell order per scene: slots never share a cell
    for slot in range(MAX_GLYPHS):
        idx = np.nonzero(glyphs[:, slot] >= 0)[0]
        cell = cells[idx, slot]
        m = len(idx)
        cx = (_CELL / 2 + _CELL * (cell % 2) + rng.uniform(-1.0, 1.0, m)).astype(np.float32)
        cy = (_CELL / 2 + _CELL * (cell // 2) + rng.uniform(-1.0, 1.0, m)).astype(np.float32)
        radius = rng.uniform(5.0, 7.0, m).astype(np.float32)
        theta = (rng.uniform(-15.0, 15.0, m) * np.pi / 180).astype(np.float32)
        alpha = glyph_alpha_at(glyphs[idx, slot], cx, cy, radius, theta)[:, None]
        gap = rng.uniform(0.3, 0.5, m).astype(np.float32) * rng.choice(np.float32([-1, 1]), m)
        fg = _colours(rng, m, np.clip(bg_lum[idx] + gap, 0.05, 0.95), 0.9)
        img[idx] += alpha * (fg - img[idx])
    _add_clutter(rng, img, np.ones(n, np.int64))
    _add_noise(rng, img, 0.04)
    return img


def _glyphs(split: str) -> np.ndarray:
    """Glyph ids [n, MAX_GLYPHS] of every scene, -1 in the unused slots."""
    n = _SIZES[split]
    rng = np.random.default_rng([_SEEDS[split], 0])
    count = rng.integers(1, MAX_GLYPHS + 1, n)
    glyphs = rng.integers(0, len(SHAPES_CLASSES), (n, MAX_GLYPHS))
    glyphs[np.arange(MAX_GLYPHS)[None, :] >= count[:, None]] = -1
    return glyphs


def sign_targets(glyphs: np.ndarray) -> np.ndarray:
    """Multi-hot float32 [n, 6]: 1 for every sign with a glyph of its group in the scene."""
    signs = np.asarray(SIGN_OF_SHAPE)
    targets = np.zeros((len(glyphs), len(SIGNS_CLASSES)), np.float32)
    for slot in range(glyphs.shape[1]):
        present = np.nonzero(glyphs[:, slot] >= 0)[0]
        targets[present, signs[glyphs[present, slot]]] = 1.0
    return targets


def _generate(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    glyphs = _glyphs(split)
    images = np.empty((len(glyphs), 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for j in range(-(-len(glyphs) // _CHUNK)):
        part = slice(j * _CHUNK, (j + 1) * _CHUNK)
        img = _render(np.random.default_rng([_SEEDS[split], j + 1]), glyphs[part])
        images[part] = np.clip(img * 255 + 0.5, 0, 255)
    return torch.from_numpy(images), torch.from_numpy(sign_targets(glyphs))


@functools.lru_cache(maxsize=None)
def scene_splits() -> DatasetSplits:
    """The train scenes and the test scenes (as ``val``); cached, so treat the tensors as read-only.
    Mean and std are measured on the train scenes."""
    train, test = ImageSet(*_generate("train")), ImageSet(*_generate("test"))
    pixels = train.images.float().div_(255)
    mean = tuple(round(v, 4) for v in pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(round(v, 4) for v in pixels.std(dim=(0, 2, 3)).tolist())
    return DatasetSplits(train=train, val=test, class_names=SIGNS_CLASSES, mean=mean, std=std,  # type: ignore[arg-type]
                         image_size=IMAGE_SIZE, multi_label=True)
