"""The built-in offline demo: a small procedural world of 32x32 RGB glyph images.

Nothing is downloaded and no image file is shipped: every image is drawn by vectorized
numpy from signed-distance functions, deterministically (fixed seeds per task, split and
chunk of 1,000 images), and each task's splits are cached in-process, so the first load
takes about a second and every later load is free.

Two tasks share the world but not their label spaces:

``shapes`` (the demo's SOURCE task)
    12 glyphs (circle, ring, ellipse, square, frame, diamond, triangle, star, plus,
    x-cross, horizontal bars, vertical bars) at a random position, size, small rotation
    and colour, filled, over varied backgrounds (flat, gradient, soft blobs or a
    grating) with 0-3 clutter strokes and some noise. 12,000 train / 2,000 test images.
    A small CNN learns it to about 99%.

``signs`` (the demo's TARGET task)
    6 signs, each drawn as one of TWO glyphs that look nothing alike ("stop" is a
    circle or an x-cross, "go" a triangle or vertical bars, ...), in a shifted style
    (a saturated palette, a faint grating, a clutter stroke in every image, glyphs
    lighter or darker than their background). 3,000 train / 1,500 test images. With
    few labels a network must find both looks of every sign on its own; a source that
    tells the glyphs apart hands it the sub-classes, which is what SSKT's auxiliary
    head learns.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .sets import DatasetSplits, ImageSet

IMAGE_SIZE = 32

SHAPES_CLASSES: tuple[str, ...] = (
    "circle", "ring", "ellipse", "square", "frame", "diamond",
    "triangle", "star", "plus", "x-cross", "horizontal bars", "vertical bars",
)

# Each sign is a GROUP of two glyphs that look nothing alike (as a road sign's meaning may
# be drawn with different symbols), so a class is bimodal: from a few labels a network has
# to find both looks of each sign, while a source that already tells the glyphs apart
# hands it the sub-classes.
_SIGN_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stop", ("circle", "x-cross")),
    ("go", ("triangle", "vertical bars")),
    ("yield", ("ring", "square")),
    ("info", ("star", "frame")),
    ("warning", ("ellipse", "plus")),
    ("parking", ("diamond", "horizontal bars")),
)
SIGNS_CLASSES: tuple[str, ...] = tuple(name for name, _ in _SIGN_GROUPS)
# SIGN_OF_SHAPE[g]: the sign (index into SIGNS_CLASSES) that glyph g (index into SHAPES_CLASSES) stands for.
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
    "shapes": ((0.4966, 0.4981, 0.5015), (0.2681, 0.2690, 0.2682)),
    "signs": ((0.5035, 0.4990, 0.5059), (0.2706, 0.2729, 0.2719)),
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
# Images are float32 [n, 3, H, W] in 0..1 until the very end. Every random quantity is
# drawn for all n images at once (so the stream, and thus the data, depends only on the
# seed), and the costly per-pixel work is done only for the images that need it.

_GRID = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
_GX = _GRID[None, None, :]  # x: columns
_GY = _GRID[None, :, None]  # y: rows (pointing down)


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    """n uniform draws as float32 [n, 1, 1], ready to broadcast over a pixel grid."""
    return rng.uniform(low, high, n).astype(np.float32)[:, None, None]


def _colours(rng: np.random.Generator, n: int, lum: np.ndarray, saturation: float) -> np.ndarray:
    """RGB colours [n, 3, 1, 1] in 0..1 around the luminances ``lum`` [n]."""
    hue = rng.random((n, 3), dtype=np.float32)
    hue -= hue.mean(axis=1, keepdims=True)
    rgb = lum[:, None] + saturation * hue
    return np.clip(rgb, 0, 1)[:, :, None, None].astype(np.float32)


def _glyph_alpha(rng: np.random.Generator, shape_ids: np.ndarray, size_range: tuple[float, float],
                 max_rotation: float) -> np.ndarray:
    """Anti-aliased coverage [n, H, W] of each image's glyph: random size, position (the
    glyph stays inside the image) and a small rotation (so square and diamond, plus and
    x-cross, and the two kinds of bars stay distinct)."""
    n = len(shape_ids)
    radius = rng.uniform(*size_range, n).astype(np.float32)
    margin = radius * 0.9
    cx = rng.uniform(margin, IMAGE_SIZE - margin).astype(np.float32)
    cy = rng.uniform(margin, IMAGE_SIZE - margin).astype(np.float32)
    theta = rng.uniform(-max_rotation, max_rotation, n).astype(np.float32) * np.float32(np.pi / 180)
    return glyph_alpha_at(shape_ids, cx, cy, radius, theta)


def glyph_alpha_at(shape_ids: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray,
                   theta: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage [n, H, W] of glyph ``shape_ids[i]`` centred at (cx, cy) pixels with
    radius ``radius`` and rotation ``theta`` (radians), all float32 [n]: the multi-glyph scenes
    (``demo_scenes.py``) place several per image."""
    n = len(shape_ids)
    alpha = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for shape in np.unique(shape_ids):
        idx = np.nonzero(shape_ids == shape)[0]
        dx = _GX - cx[idx, None, None]
        dy = cy[idx, None, None] - _GY  # y up
        c = np.cos(theta[idx])[:, None, None]
        sn = np.sin(theta[idx])[:, None, None]
        d = _SDFS[shape](c * dx + sn * dy, c * dy - sn * dx, radius[idx, None, None])
        alpha[idx] = np.clip(0.5 - d, 0, 1)
    return alpha


def _grating(rng: np.random.Generator, n: int, freq: tuple[float, float]) -> np.ndarray:
    """A sinusoidal grating [n, H, W] in -1..1 at a random orientation, frequency and phase."""
    ang = _uniform(rng, 0, np.pi, n)
    f = _uniform(rng, *freq, n)
    phase = _uniform(rng, 0, 2 * np.pi, n)
    return np.sin(f * (np.cos(ang) * _GX + np.sin(ang) * _GY) + phase)


def _ramp(rng: np.random.Generator, n: int) -> np.ndarray:
    """A linear gradient [n, H, W] in about -1..1 at a random angle."""
    ang = _uniform(rng, 0, 2 * np.pi, n)
    return (np.cos(ang) * _GX + np.sin(ang) * _GY) * np.float32(2 / IMAGE_SIZE) - np.cos(ang) - np.sin(ang)


def _blobs(rng: np.random.Generator, n: int, count: int = 3) -> np.ndarray:
    """A sum of ``count`` soft Gaussian bumps of either sign [n, H, W], roughly in -1..1."""
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for _ in range(count):
        cx, cy = _uniform(rng, 0, IMAGE_SIZE, n), _uniform(rng, 0, IMAGE_SIZE, n)
        sigma = _uniform(rng, 4, 10, n)
        amp = _uniform(rng, -1, 1, n)
        out += amp * np.exp(-((_GX - cx) ** 2 + (_GY - cy) ** 2) / (2 * sigma * sigma))
    return out


def _stroke(rng: np.random.Generator, n: int) -> np.ndarray:
    """Coverage [n, H, W] of one short random line segment per image (clutter)."""
    ax, ay = _uniform(rng, 0, IMAGE_SIZE, n), _uniform(rng, 0, IMAGE_SIZE, n)
    ang = _uniform(rng, 0, 2 * np.pi, n)
    length = _uniform(rng, 4, 9, n)
    width = _uniform(rng, 0.6, 1.2, n)
    bx, by = np.cos(ang) * length, np.sin(ang) * length
    px, py = _GX - ax, _GY - ay
    h = np.clip((px * bx + py * by) / (length * length), 0, 1)
    return np.clip(0.5 - (_length(px - bx * h, py - by * h) - width), 0, 1)


def _add_clutter(rng: np.random.Generator, img: np.ndarray, strokes: np.ndarray) -> None:
    """Paint ``strokes[i]`` short strokes of random colours over image i, in place."""
    n = len(img)
    for k in range(int(strokes.max(initial=0))):
        idx = np.nonzero(strokes > k)[0]
        colour = np.zeros((n, 3, 1, 1), np.float32)
        colour[idx] = _colours(rng, len(idx), rng.uniform(0.1, 0.9, len(idx)).astype(np.float32), 0.9)
        cover = np.zeros((n, 1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
        cover[idx, 0] = _stroke(rng, len(idx))
        delta = colour - img  # blend in place, without gathering image subsets
        delta *= cover
        img += delta


def _compose(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``bg + alpha * (fg - bg)`` as one new float32 [n, 3, H, W] array, built in place."""
    out = np.empty((len(alpha), 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    np.multiply(alpha, fg - bg, out=out)
    out += bg
    return out


def _add_noise(rng: np.random.Generator, img: np.ndarray, sigma: np.ndarray | float) -> None:
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.asarray(sigma, np.float32).reshape(-1, 1, 1, 1)
    img += noise


def _render_shapes(rng: np.random.Generator, shape_ids: np.ndarray) -> np.ndarray:
    """Source domain: filled glyphs over varied backgrounds (flat, a gradient, soft blobs
    or a grating), 0-3 clutter strokes, a range of noise levels and contrasts. The
    variety is what lets a network trained here still see the glyphs in the signs'
    domain."""
    n = len(shape_ids)
    alpha = _glyph_alpha(rng, shape_ids, (7.0, 12.0), 15.0)[:, None]
    bg_lum = rng.uniform(0.1, 0.9, n).astype(np.float32)
    gap = rng.uniform(0.2, 0.6, n).astype(np.float32)
    fg_lum = np.where(bg_lum > 0.5, bg_lum - gap, bg_lum + gap)
    bg = _colours(rng, n, bg_lum, 0.6)
    fg = _colours(rng, n, fg_lum, 0.8)
    kind = rng.integers(0, 4, n)  # 0 flat, 1 gradient, 2 blobs, 3 grating
    amp = _uniform(rng, 0.03, 0.15, n)
    strokes = rng.integers(0, 4, n)
    sigma = rng.uniform(0.01, 0.08, n)
    texture = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for k, make in ((1, _ramp), (2, _blobs), (3, lambda r, m: _grating(r, m, (0.3, 1.2)))):
        idx = np.nonzero(kind == k)[0]
        texture[idx] = amp[idx] * make(rng, len(idx))
    img = _compose(alpha, fg, bg)
    img += texture[:, None]
    _add_clutter(rng, img, strokes)
    _add_noise(rng, img, sigma)
    return img


def _render_signs(rng: np.random.Generator, shape_ids: np.ndarray) -> np.ndarray:
    """Target domain: the same glyphs in another style: a saturated palette, mid-grey
    backgrounds under a faint grating, a glyph either lighter or darker than its
    background, one clutter stroke in every image, and some noise."""
    n = len(shape_ids)
    alpha = _glyph_alpha(rng, shape_ids, (7.0, 12.0), 15.0)[:, None]
    bg_lum = rng.uniform(0.25, 0.75, n).astype(np.float32)
    gap = rng.uniform(0.3, 0.5, n).astype(np.float32) * rng.choice(np.float32([-1, 1]), n)
    fg_lum = np.clip(bg_lum + gap, 0.05, 0.95)
    bg = _colours(rng, n, bg_lum, 0.9) + np.float32(0.05) * _grating(rng, n, (0.3, 1.2))[:, None]
    fg = _colours(rng, n, fg_lum, 0.9)
    img = _compose(alpha, fg, bg)
    _add_clutter(rng, img, np.ones(n, np.int64))
    _add_noise(rng, img, 0.04)
    return img


_CHUNK = 1000  # images rendered per batch: temporaries stay small and cache-friendly


def _glyphs_and_labels(task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, shuffled labels [n] and the glyph (index into SHAPES_CLASSES) each image shows."""
    n = _SIZES[task, split]
    rng = np.random.default_rng([_SEEDS[task, split], 0])
    if task == "shapes":
        labels = np.arange(n) % len(SHAPES_CLASSES)
        rng.shuffle(labels)
        return labels, labels
    labels = np.arange(n) % len(SIGNS_CLASSES)
    rng.shuffle(labels)
    # each sign shows one of its two glyphs, balanced within the class
    member = np.empty(n, np.int64)
    for c in range(len(SIGNS_CLASSES)):
        idx = np.nonzero(labels == c)[0]
        member[idx] = np.arange(len(idx)) % 2
    members = np.array([[SHAPES_CLASSES.index(m) for m in ms] for _, ms in _SIGN_GROUPS])
    return labels, members[labels, member]


def _generate(task: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Render one split: uint8 images [n, 3, 32, 32] and int64 labels [n]. Chunk j is drawn
    from its own generator (seed, j + 1), so two threads render the chunks in parallel
    (numpy releases the GIL) and the result never depends on the scheduling."""
    labels, glyphs = _glyphs_and_labels(task, split)
    render = _render_shapes if task == "shapes" else _render_signs
    images = np.empty((len(labels), 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)

    def chunk(j: int) -> None:
        rng = np.random.default_rng([_SEEDS[task, split], j + 1])
        part = slice(j * _CHUNK, (j + 1) * _CHUNK)
        img = render(rng, glyphs[part])
        img *= 255
        img += 0.5
        images[part] = np.clip(img, 0, 255, out=img)

    count = -(-len(labels) // _CHUNK)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(chunk, range(count)))
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
