"""The built-in offline video demo (``demo-video``): short clips of one glyph of the demo world
that slides, turns or appears, labelled by WHAT the glyph is and HOW it moves.

Every clip has ``FRAMES`` = 10 frames of 32x32 RGB in the ``signs`` style of ``demo_world.py``
(saturated palette, a faint grating, one clutter stroke, noise drawn anew in every frame). The
glyph is one of eight, in four sign groups of two glyphs that look nothing alike (as in the
image demo), and it does one of three things over the clip:

``slides``   moves in a straight line (1.0-1.8 px per frame, any direction), upright;
``turns``    stays put and rotates (8-12 degrees per frame, either way), upright at the clip's centre;
``appears``  stays put and fades in from the background (invisible before the first frame).

The 12 classes are (sign, motion): "go slides", "go turns", ... A class is bimodal in the
glyph (two looks per sign) and defined by its motion, so a network must learn both what and
how from few labelled clips; the shipped 2D shapes network, shown a clip's centre frame (where
every glyph is at its drawn size and upright), tells the glyphs apart, which SSKT's auxiliary
head can pass on, while the motion must come from the labels. Sources see the glyph at the
size they were trained on (radius 7-10 px in 32 px frames).

Deterministic (a fixed seed per split and chunk of clips) and cached in-process; 1,200 training
and 720 test clips, balanced over the classes (a few seconds to draw, once per process).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .clips import ClipSet
from .demo_world import IMAGE_SIZE, SHAPES_CLASSES, _add_noise, _colours, _grating, _stroke, glyph_alpha_at
from .sets import DatasetSplits

FRAMES = 10  # stored per clip; the default clip_len of 8 leaves room for temporal jitter
DEFAULT_CLIP_LEN = 8
MOTIONS: tuple[str, ...] = ("slides", "turns", "appears")
_SIGN_GROUPS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("go", ("triangle", "vertical bars")),
    ("info", ("star", "frame")),
    ("warning", ("ellipse", "plus")),
    ("parking", ("diamond", "horizontal bars")),
)
SIGNS: tuple[str, ...] = tuple(name for name, _ in _SIGN_GROUPS)
# class = sign * len(MOTIONS) + motion
CLASSES: tuple[str, ...] = tuple(f"{sign} {motion}" for sign in SIGNS for motion in MOTIONS)
_SIZES = {"train": 1_200, "test": 720}
_SEEDS = {"train": 54_001, "test": 54_002}
_CHUNK = 240


def _glyph_paths(rng: np.random.Generator, motion: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per clip and frame: centre x, y, rotation (radians) and opacity, each float32 [n, FRAMES],
    and the radius [n]. Time is centred on the clip's middle, where every glyph is upright."""
    n = len(motion)
    t = np.arange(FRAMES, dtype=np.float32) - (FRAMES - 1) / 2  # [-4.5, 4.5]
    radius = rng.uniform(7.0, 10.0, n).astype(np.float32)
    heading = rng.uniform(0, 2 * np.pi, n)
    speed = np.where(motion == 0, rng.uniform(1.0, 1.8, n), 0.0)
    vx, vy = (speed * np.cos(heading)).astype(np.float32), (speed * np.sin(heading)).astype(np.float32)
    reach_x = np.abs(vx) * t[-1] + 0.8 * radius  # the glyph stays inside the frame all along its path
    reach_y = np.abs(vy) * t[-1] + 0.8 * radius
    mid_x = rng.uniform(reach_x, IMAGE_SIZE - reach_x).astype(np.float32)
    mid_y = rng.uniform(reach_y, IMAGE_SIZE - reach_y).astype(np.float32)
    cx = mid_x[:, None] + vx[:, None] * t
    cy = mid_y[:, None] + vy[:, None] * t
    spin = np.where(motion == 1, rng.uniform(8.0, 12.0, n) * rng.choice([-1.0, 1.0], n), 0.0)
    tilt = rng.uniform(-8.0, 8.0, n)  # a small fixed slant, as in the image demo
    theta = ((tilt[:, None] + spin[:, None] * t) * np.pi / 180).astype(np.float32)
    ramp = np.clip((np.arange(FRAMES, dtype=np.float32) + 1) / FRAMES, 0, 1)
    opacity = np.where((motion == 2)[:, None], ramp[None, :], 1.0).astype(np.float32)
    return cx, cy, theta, opacity, radius


def _render(rng: np.random.Generator, glyphs: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Clips float32 [n, FRAMES, 3, H, W] in about 0..1."""
    n = len(glyphs)
    cx, cy, theta, opacity, radius = _glyph_paths(rng, motion)
    bg_lum = rng.uniform(0.25, 0.75, n).astype(np.float32)
    gap = rng.uniform(0.3, 0.5, n).astype(np.float32) * rng.choice(np.float32([-1, 1]), n)
    background = _colours(rng, n, bg_lum, 0.9) + np.float32(0.05) * _grating(rng, n, (0.3, 1.2))[:, None]
    fg = _colours(rng, n, np.clip(bg_lum + gap, 0.05, 0.95), 0.9)
    stroke = _stroke(rng, n)[:, None]  # a static clutter stroke, drawn over the glyph
    stroke_colour = _colours(rng, n, rng.uniform(0.1, 0.9, n).astype(np.float32), 0.9)
    clips = np.empty((n, FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for f in range(FRAMES):
        alpha = glyph_alpha_at(glyphs, cx[:, f], cy[:, f], radius, theta[:, f])[:, None]
        alpha *= opacity[:, f, None, None, None]
        frame = background + alpha * (fg - background)
        frame += stroke * (stroke_colour - frame)
        _add_noise(rng, frame, 0.04)
        clips[:, f] = frame
    return clips


def _labels_and_glyphs(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced shuffled classes [n], each clip's glyph (index into SHAPES_CLASSES, the two of its
    sign alternating within the class) and motion."""
    n = _SIZES[split]
    rng = np.random.default_rng([_SEEDS[split], 0])
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    member = np.empty(n, np.int64)
    for c in range(len(CLASSES)):
        idx = np.nonzero(labels == c)[0]
        member[idx] = np.arange(len(idx)) % 2
    members = np.array([[SHAPES_CLASSES.index(m) for m in ms] for _, ms in _SIGN_GROUPS])
    sign, motion = labels // len(MOTIONS), labels % len(MOTIONS)
    return labels, members[sign, member], motion


def _generate(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 clips [n, FRAMES, 3, 32, 32] and int64 labels [n]; chunk j from its own seed."""
    labels, glyphs, motion = _labels_and_glyphs(split)
    clips = np.empty((len(labels), FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for j in range(-(-len(labels) // _CHUNK)):
        part = slice(j * _CHUNK, (j + 1) * _CHUNK)
        rendered = _render(np.random.default_rng([_SEEDS[split], j + 1]), glyphs[part], motion[part])
        rendered *= 255
        rendered += 0.5
        clips[part] = np.clip(rendered, 0, 255, out=rendered)
    return torch.from_numpy(clips), torch.from_numpy(labels.astype(np.int64))


@functools.lru_cache(maxsize=None)
def clip_splits() -> DatasetSplits:
    """The training clips and the test clips (as ``val``), at the default clip length; cached, so
    treat the tensors as read-only. Mean and std are measured on the training clips."""
    train, test = ClipSet(*_generate("train")), ClipSet(*_generate("test"))
    pixels = train.clips.float().div_(255)
    mean = tuple(round(v, 4) for v in pixels.mean(dim=(0, 1, 3, 4)).tolist())
    std = tuple(round(v, 4) for v in pixels.std(dim=(0, 1, 3, 4)).tolist())
    return DatasetSplits(train=train, val=test, class_names=CLASSES, mean=mean, std=std,  # type: ignore[arg-type]
                         image_size=IMAGE_SIZE, clip_len=DEFAULT_CLIP_LEN)
