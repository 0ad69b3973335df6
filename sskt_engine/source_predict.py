"""What one of a preset's sources sees on given image files (``sskt predict --preset P --source S``).

The image goes the way a training batch goes: read at the side the target's images have
(``data.image_size``, else the dataset's own side), then resized (bilinear) to the side the
preset feeds the source and normalized as the source wants (``source_inspection.SourceReader``,
which runs ``SourceEnsemble``). Printed per image: the source's top classes with their
probability (softmax at temperature 1) and the soft label SSKT's auxiliary head learns
(softmax at the preset's temperature).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import ExperimentConfig, SourceConfig
from .errors import UserInputError

__all__ = ["SourcePrediction", "SourcePredictor", "pick_source"]


@dataclass(frozen=True)
class SourcePrediction:
    image: Path
    top: tuple[tuple[str, float, float], ...]  # (class, probability at T=1, soft label at the preset's T)


def pick_source(config: ExperimentConfig, which: str | None) -> SourceConfig:
    """The preset's source named ``which`` (its name, or its 1-based position); the first by default.
    Anything else is read as a ``--source`` spec of its own (a model file with keys)."""
    sources = list(config.sources)
    if not which:
        if not sources:
            raise UserInputError("the preset has no sources; name one with --source")
        return sources[0]
    for source in sources:
        if source.display_name() == which:
            return source
    if which.isdigit() and 1 <= int(which) <= len(sources):
        return sources[int(which) - 1]
    from .source_cli import parse_source_spec

    if Path(which.split(",", 1)[0]).expanduser().exists() or which.startswith("builtin:") or "=" in which:
        return parse_source_spec(which)
    names = ", ".join(s.display_name() for s in sources) or "none"
    raise UserInputError(f"--source {which}: the preset has no source of that name or number (its sources: {names})")


class SourcePredictor:
    def __init__(self, config: ExperimentConfig, source: SourceConfig, device: torch.device | str = "cpu"):
        from .registry import DATASETS
        from .source_inspection import SourceReader
        from .source_ranking import method_temperature
        from .sources import build_source

        self.source = build_source(source, device)
        self.reader = SourceReader(self.source, device)
        self.temperature = method_temperature(config)
        info = DATASETS.get(config.data.dataset) if config.data.dataset in DATASETS.keys() else None
        self.target_side = int(config.data.image_size or (info.image_size if info else None)
                               or self.source.input_size)

    def describe(self) -> str:
        s = self.source
        return (f"source {s.name} ({s.origin}): {s.num_classes} classes; each image is read at the target's "
                f"{self.target_side} px, then fed to it at {s.input_size} px; soft labels at temperature "
                f"{self.temperature:g}")

    def _pixels(self, path: Path) -> torch.Tensor:
        from .data.image_folder import load_rgb

        if not path.is_file():
            raise UserInputError(f"image {path} does not exist" if not path.exists() else f"{path} is not a file")
        try:
            array = np.asarray(load_rgb(str(path), self.target_side), dtype=np.uint8).copy()
        except Exception as exc:  # noqa: BLE001 - any decoder failure on a user's file means "unreadable"
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise UserInputError(f"image {path.name} cannot be read as an image ({reason})") from None
        return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0

    def predict(self, images: Sequence[str | os.PathLike], top_k: int = 5) -> list[SourcePrediction]:
        if top_k < 1:
            raise UserInputError("--top-k must be at least 1")
        if not images:
            raise UserInputError("no images given")
        paths = [Path(p) for p in images]
        pixels = torch.stack([self._pixels(p) for p in paths])  # every image read before any is classified
        logits, _ = self.reader.read([pixels], self.source.input_size)
        probs = torch.softmax(logits.double(), dim=1)
        soft = torch.softmax(logits.double() / self.temperature, dim=1)
        k = min(top_k, self.source.num_classes)
        values, indices = probs.topk(k, dim=1)
        names = self.source.class_names
        out = []
        for row, path in enumerate(paths):
            top = tuple(((names[i] if names and i < len(names) else f"class {i}"), float(v), float(soft[row, i]))
                        for v, i in zip(values[row].tolist(), indices[row].tolist()))
            out.append(SourcePrediction(path, top))
        return out
