"""The built-in offline demo: a small procedural world of 32x32 RGB glyph images.

Nothing is downloaded and no image file is shipped: every image is drawn by vectorized
numpy from signed-distance functions, deterministically (one fixed seed per task and
split), and the arrays are cached in-process, so the first load takes about a second
and every later load is free.

Two tasks share the world but not their label spaces:

``shapes`` (the demo's SOURCE task)
    12 glyph classes (circle, ring, ellipse, square, ...) at a random position, scale,
    small rotation and colour, filled, over a plain background with a soft gradient
    and mild noise. 12,000 train / 2,000 test images.

``signs`` (the demo's TARGET task)
    6 classes, each a GROUP of two glyphs that look different ("round" is a disc or
    an ellipse, "pointy" a triangle or a star, ...), drawn in a shifted domain: a
    textured background, a patterned fill, clutter strokes, stronger noise and lower
    contrast. 3,000 train / 1,500 test images. With a few labels per class a network
    has to discover from scratch which pixels matter; a source that knows the glyphs
    tells it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from . import DatasetSplits, ImageSet

IMAGE_SIZE = 32

SHAPES_CLASSES: tuple[str, ...] = (
    "circle", "ring", "ellipse", "square", "frame", "diamond",
    "triangle", "star", "plus", "x-cross", "horizontal bars", "vertical bars",
)

# Each sign is a group of glyphs (indices into SHAPES_CLASSES).
_SIGN_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("round", ("circle", "ellipse")),
    ("hollow", ("ring", "frame")),
    ("blocky", ("square", "diamond")),
    ("pointy", ("triangle", "star")),
    ("crossed", ("plus", "x-cross")),
    ("striped", ("horizontal bars", "vertical bars")),
)
SIGNS_CLASSES: tuple[str, ...] = tuple(name for name, _ in _SIGN_GROUPS)
SIGN_OF_SHAPE: tuple[int, ...] = tuple(
    next(i for i, (_, members) in enumerate(_SIGN_GROUPS) if shape in members) for shape in SHAPES_CLASSES
)

TASKS = ("shapes", "signs")
_SIZES = {("shapes", "train"): 12_000, ("shapes", "test"): 2_000,
          ("signs", "train"): 3_000, ("signs", "test"): 1_500}
_SEEDS = {("shapes", "train"): 51_001, ("shapes", "test"): 51_002,
          ("signs", "train"): 52_001, ("signs", "test"): 52_002}

# Per-channel statistics of the train images (0..1 scale), computed once from the
# generated data and rounded to 4 decimals; tests/test_demo_world.py checks them.
_STATS = {
    "shapes": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    "signs": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
}


# ----------------------------------------------------------------------------- SDFs
# Every function takes local coordinates x, y (pixels, y pointing up, float32 arrays
# [n, H, W]) and a size r [n, 1, 1] and returns the signed distance (negative inside).

def _length(x, y):
    return np.sqrt(x * x + y * y)


def _box(x, y, bx, by):
    qx = np.abs(x) - bx
    qy = np.abs(y) - by
    return _length(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _rot45(x, y):
    c = np.float32(np.sqrt(0.5))
    return c * (x + y), c * (y - x)


def _circle(x, y, r):
    return _length(x, y) - r


def _ring(x, y, r):
    return np.abs(_length(x, y) - 0.78 * r) - 0.24 * r


def _ellipse(x, y, r):
    a, b = r * 1.05, r * 0.5
    k0 = _length(x / a, y / b)
    k1 = _length(x / (a * a), y / (b * b))
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def _square(x, y, r):
    return _box(x, y, 0.8 * r, 0.8 * r)


def _frame(x, y, r):
    return np.abs(_box(x, y, 0.72 * r, 0.72 * r)) - 0.2 * r


def _diamond(x, y, r):
    u, v = _rot45(x, y)
    return _box(u, v, 0.78 * r, 0.78 * r)


def _triangle(x, y, r):
    k = np.float32(np.sqrt(3.0))
    y = y + 0.25 * r  # centre the triangle's bounding box
    px = np.abs(x) - r
    py = y + r / k
    flip = (px + k * py) > 0
    qx = np.where(flip, (px - k * py) / 2, px)
    qy = np.where(flip, (-k * px - py) / 2, py)
    qx = qx - np.clip(qx, -2 * r, 0)
    return -_length(qx, qy) * np.sign(qy)


def _star(x, y, r):
    k1x, k1y = np.float32(0.809016994375), np.float32(-0.587785252292)
    k2x, k2y = -k1x, k1y
    rf = np.float32(0.45)
    r = 1.1 * r
    px = np.abs(x)
    py = y
    d = 2 * np.maximum(k1x * px + k1y * py, 0)
    px, py = px - d * k1x, py - d * k1y
    d = 2 * np.maximum(k2x * px + k2y * py, 0)
    px, py = px - d * k2x, py - d * k2y
    px = np.abs(px)
    py = py - r
    bax, bay = rf * -k1y, rf * k1x - 1
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0, r)
    return _length(px - bax * h, py - bay * h) * np.sign(py * bax - px * bay)


def _plus(x, y, r):
    return np.minimum(_box(x, y, r, 0.28 * r), _box(x, y, 0.28 * r, r))


def _xcross(x, y, r):
    u, v = _rot45(x, y)
    return _plus(u, v, 1.05 * r)


def _hbars(x, y, r):
    w, t = 0.95 * r, 0.17 * r
    return np.minimum(np.minimum(_box(x, y - 0.62 * r, w, t), _box(x, y, w, t)), _box(x, y + 0.62 * r, w, t))


def _vbars(x, y, r):
    return _hbars(y, x, r)


_SDFS = (_circle, _ring, _ellipse, _square, _frame, _diamond,
         _triangle, _star, _plus, _xcross, _hbars, _vbars)
assert len(_SDFS) == len(SHAPES_CLASSES)


# ----------------------------------------------------------------------- rendering

def _colours(rng: np.random.Generator, n: int, lum: np.ndarray, saturation: float) -> np.ndarray:
    """RGB colours [n, 3, 1, 1] in 0..1 around the luminances ``lum`` [n]."""
    hue = rng.random((n, 3), dtype=np.float32)
    hue -= hue.mean(axis=1, keepdims=True)
    rgb = lum[:, None] + saturation * hue
    return np.clip(rgb, 0, 1)[:, :, None, None].astype(np.float32)


def _glyph_alpha(rng: np.random.Generator, shape_ids: np.ndarray, size_range: tuple[float, float],
                 max_rotation: float) -> np.ndarray:
    """Anti-aliased coverage [n, H, W] of each image's glyph."""
    n = len(shape_ids)
    s = IMAGE_SIZE
    radius = rng.uniform(*size_range, n).astype(np.float32)
    margin = radius * 0.9
    cx = rng.uniform(margin, s - margin).astype(np.float32)
    cy = rng.uniform(margin, s - margin).astype(np.float32)
    theta = rng.uniform(-max_rotation, max_rotation, n).astype(np.float32) * np.float32(np.pi / 180)
    grid = np.arange(s, dtype=np.float32) + 0.5
    alpha = np.empty((n, s, s), np.float32)
    for shape in np.unique(shape_ids):
        idx = np.nonzero(shape_ids == shape)[0]
        dx = grid[None, None, :] - cx[idx, None, None]
        dy = cy[idx, None, None] - grid[None, :, None]  # y up
        c = np.cos(theta[idx])[:, None, None]
        sn = np.sin(theta[idx])[:, None, None]
        x = c * dx + sn * dy
        y = -sn * dx + c * dy
        d = _SDFS[shape](x, y, radius[idx, None, None])
        alpha[idx] = np.clip(0.5 - d, 0, 1)
    return alpha


_GRID = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5


def _grating(rng: np.random.Generator, n: int, freq: tuple[float, float]) -> np.ndarray:
    """A sinusoidal grating [n, H, W] in -1..1 at a random orientation, frequency and phase."""
    ang = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    f = rng.uniform(*freq, n).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    g = _GRID
    return np.sin(f * (np.cos(ang) * g[None, None, :] + np.sin(ang) * g[None, :, None]) + phase)


def _ramp(rng: np.random.Generator, n: int) -> np.ndarray:
    """A linear gradient [n, H, W] in -0.5..0.5 at a random angle."""
    ang = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    g = _GRID / IMAGE_SIZE - 0.5
    return np.cos(ang) * g[None, None, :] + np.sin(ang) * g[None, :, None]


def _blobs(rng: np.random.Generator, n: int, count: int = 3) -> np.ndarray:
    """A sum of ``count`` soft Gaussian bumps of either sign [n, H, W], roughly in -1..1."""
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    g = _GRID
    for _ in range(count):
        cx = rng.uniform(0, IMAGE_SIZE, n).astype(np.float32)[:, None, None]
        cy = rng.uniform(0, IMAGE_SIZE, n).astype(np.float32)[:, None, None]
        sigma = rng.uniform(4, 10, n).astype(np.float32)[:, None, None]
        amp = rng.uniform(-1, 1, n).astype(np.float32)[:, None, None]
        out += amp * np.exp(-((g[None, None, :] - cx) ** 2 + (g[None, :, None] - cy) ** 2) / (2 * sigma * sigma))
    return out


def _strokes(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """Coverage [count, n, H, W] of short random line segments (clutter)."""
    g = _GRID
    out = np.empty((count, n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for k in range(count):
        ax = rng.uniform(0, IMAGE_SIZE, n).astype(np.float32)[:, None, None]
        ay = rng.uniform(0, IMAGE_SIZE, n).astype(np.float32)[:, None, None]
        ang = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
        length = rng.uniform(4, 9, n).astype(np.float32)[:, None, None]
        width = rng.uniform(0.6, 1.2, n).astype(np.float32)[:, None, None]
        bx, by = np.cos(ang) * length, np.sin(ang) * length
        px, py = g[None, None, :] - ax, g[None, :, None] - ay
        h = np.clip((px * bx + py * by) / (length * length), 0, 1)
        d = _length(px - bx * h, py - by * h) - width
        out[k] = np.clip(0.5 - d, 0, 1)
    return out


def _render_shapes(rng: np.random.Generator, shape_ids: np.ndarray) -> np.ndarray:
    """Source domain: filled glyphs over varied but calm backgrounds (flat, gradient,
    soft blobs or a faint grating), mild noise, good contrast."""
    n = len(shape_ids)
    alpha = _glyph_alpha(rng, shape_ids, (7.0, 12.0), 15.0)[:, None]
    bg_lum = rng.uniform(0.1, 0.9, n).astype(np.float32)
    gap = rng.uniform(0.25, 0.6, n).astype(np.float32)
    fg_lum = np.where(bg_lum > 0.5, bg_lum - gap, bg_lum + gap)
    bg = _colours(rng, n, bg_lum, 0.5)
    fg = _colours(rng, n, fg_lum, 0.8)
    kind = rng.integers(0, 4, n)[:, None, None]  # 0 flat, 1 gradient, 2 blobs, 3 grating
    amp = rng.uniform(0.03, 0.1, n).astype(np.float32)[:, None, None]
    texture = np.where(kind == 1, 2.5 * _ramp(rng, n), 0) + np.where(kind == 2, _blobs(rng, n), 0)
    texture = texture + np.where(kind == 3, _grating(rng, n, (0.3, 1.2)), 0)
    img = bg + (amp * texture)[:, None] + alpha * (fg - bg)
    sigma = rng.uniform(0.01, 0.05, n).astype(np.float32)[:, None, None, None]
    img += sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return img


def _render_signs(rng: np.random.Generator, shape_ids: np.ndarray) -> np.ndarray:
    """Target domain: the same glyphs, but over a strong grating, with a textured fill,
    a few clutter strokes, saturated colours, lower contrast and more noise."""
    n = len(shape_ids)
    alpha = _glyph_alpha(rng, shape_ids, (7.0, 12.0), 15.0)[:, None]
    bg_lum = rng.uniform(0.25, 0.75, n).astype(np.float32)
    gap = rng.uniform(0.2, 0.4, n).astype(np.float32) * rng.choice(np.float32([-1, 1]), n)
    fg_lum = np.clip(bg_lum + gap, 0.05, 0.95)
    bg = _colours(rng, n, bg_lum, 0.9) + 0.15 * _grating(rng, n, (0.3, 1.2))[:, None]
    fg = _colours(rng, n, fg_lum, 0.9) + 0.08 * _grating(rng, n, (1.0, 2.0))[:, None]
    img = bg + alpha * (fg - bg)
    clutter = _strokes(rng, n, 3)
    for k in range(len(clutter)):
        colour = _colours(rng, n, rng.uniform(0.1, 0.9, n).astype(np.float32), 0.9)
        img += clutter[k][:, None] * (colour - img)
    img += 0.07 * rng.standard_normal(img.shape, dtype=np.float32)
    return img


def _generate(task: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = _SIZES[task, split]
    rng = np.random.default_rng(_SEEDS[task, split])
    if task == "shapes":
        labels = np.arange(n) % len(SHAPES_CLASSES)
        rng.shuffle(labels)
        img = _render_shapes(rng, labels)
    else:
        labels = np.arange(n) % len(SIGNS_CLASSES)
        rng.shuffle(labels)
        # each sign draws one of its glyphs, balanced within the class
        member = np.empty(n, np.int64)
        for c in range(len(SIGNS_CLASSES)):
            idx = np.nonzero(labels == c)[0]
            member[idx] = np.arange(len(idx)) % 2
        members = np.array([[SHAPES_CLASSES.index(m) for m in ms] for _, ms in _SIGN_GROUPS])
        img = _render_signs(rng, members[labels, member])
    images = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


@functools.lru_cache(maxsize=None)
def demo_splits(task: str) -> DatasetSplits:
    """The demo task ``task`` ("shapes" or "signs"): its train split and its test split
    (as ``val``). Cached: every call returns the same object, so treat its tensors as
    read-only."""
    if task not in TASKS:
        raise ValueError(f"unknown demo task {task!r}; choose one of {', '.join(TASKS)}")
    train = ImageSet(*_generate(task, "train"))
    test = ImageSet(*_generate(task, "test"))
    names = SHAPES_CLASSES if task == "shapes" else SIGNS_CLASSES
    mean, std = _STATS[task]
    return DatasetSplits(train=train, val=test, class_names=names, mean=mean, std=std, image_size=IMAGE_SIZE)
