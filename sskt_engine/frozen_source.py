"""What every source kind produces: a frozen network and what it expects to be fed.

Kept apart from the kinds (``sources``, ``compiled_sources``) so that they, the methods and
the ensemble share it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BUILTIN_PREFIX = "builtin:"


@dataclass
class FrozenSource:
    """A frozen network plus what it expects: input side, normalization, classes."""

    name: str
    module: nn.Module
    num_classes: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...] | None
    origin: str  # where it came from, for the GUI and the summary
    # Set when the source wants (255 * x - pixel_offset) / pixel_scale; mean/std then hold the
    # equivalent values on [0, 1] pixels, for anything that only reads those.
    pixel_scale: float | None = None
    pixel_offset: float | None = None
    # Clips (``clip_sources``): a video network takes whole clips [B, 3, T, H, W] (``clip_len`` > 0,
    # the clip length it was made for); an image network (0) sees ``clip_frames`` frames of each
    # clip, 1 being the centre frame, and labels the clip with the mean of their soft labels.
    clip_len: int = 0
    clip_frames: int = 1

    def set_pixel_normalization(self, scale: float, offset: float) -> None:
        self.pixel_scale, self.pixel_offset = float(scale), float(offset)
        self.mean = (self.pixel_offset / 255.0,) * 3
        self.std = (self.pixel_scale / 255.0,) * 3

    def preprocessing(self) -> tuple[int, float, tuple[float, ...], tuple[float, ...]]:
        """(side, multiplier, shift, divisor): the source sees (resize(x) * multiplier - shift) / divisor."""
        if self.pixel_scale is not None:
            return self.input_size, 255.0, (self.pixel_offset or 0.0,) * 3, (self.pixel_scale,) * 3
        return self.input_size, 1.0, tuple(self.mean), tuple(self.std)

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "num_classes": self.num_classes, "input_size": self.input_size,
               "mean": list(self.mean), "std": list(self.std), "origin": self.origin}
        if self.pixel_scale is not None:
            out.update(pixel_scale=self.pixel_scale, pixel_offset=self.pixel_offset)
        if self.clip_len:
            out["clip_len"] = self.clip_len
        if self.clip_frames != 1:
            out["clip_frames"] = self.clip_frames
        return out


def resolve_path(path: str) -> Path:
    """Expand ``~`` and the ``builtin:`` prefix (files shipped in the app's resources)."""
    if path.startswith(BUILTIN_PREFIX):
        from .resources import resource_path

        return resource_path("models", path[len(BUILTIN_PREFIX):])
    return Path(path).expanduser()
