"""Classify image files with an exported model, using nothing but the file and its metadata.

Preprocessing is what the metadata says (``export.PREPROCESS``) and what training on an
image folder does: RGB, shorter side resized to ``input_size``, centre crop, pixels
scaled to [0, 1], then ``(x - mean) / std``. Probabilities are a softmax over the
logits, or a sigmoid per class for a multi-label model.

A video model (its metadata gives ``clip_len``) classifies video files and frame folders: the
centre clip of ``clip_len`` frames, each frame preprocessed as an image (decoding is
``data.video_decoding.read_prediction_clip``'s, the same as validation's centre clip).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .errors import UserInputError
from .export import ExportedModel, clip_length, load_exported
from .tasks import output_activation


@dataclass(frozen=True)
class Prediction:
    image: Path
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first

    @property
    def label(self) -> str:
        """The most probable class; for a multi-label model with nothing above its threshold, "(none)"."""
        return self.top[0][0] if self.top else "(none)"


class Predictor:
    """An exported model ready to classify images. ``Predictor(path)`` raises ``UserInputError``
    for anything that is not a model file exported by SSKT Studio."""

    def __init__(self, model_file: str | os.PathLike):
        self.model: ExportedModel = load_exported(model_file)
        meta = self.model.metadata
        self.input_size = int(meta["input_size"])
        self.clip_len = clip_length(meta)  # 0: an image model; else it classifies clips of this many frames
        shape = (1, 3, 1, 1, 1) if self.clip_len else (1, 3, 1, 1)
        self.mean = torch.tensor([float(v) for v in meta["mean"]]).view(shape)
        self.std = torch.tensor([float(v) for v in meta["std"]]).view(shape)
        self.num_classes = int(meta["num_classes"])
        names = meta.get("class_names")
        if not isinstance(names, list) or len(names) != self.num_classes:
            names = [f"class {i}" for i in range(self.num_classes)]
        self.class_names: list[str] = [str(n) for n in names]
        self.multi_label = bool(meta.get("multi_label", False))
        self.outputs = output_activation(meta)  # the model's task says how logits become probabilities

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    def pixels(self, image: str | os.PathLike) -> torch.Tensor:
        """One image file as float [3, S, S] in [0, 1] (RGB, resized and centre-cropped); for a video
        model one video file or frame folder as its centre clip, float [3, T, S, S]."""
        from .data.image_folder import load_rgb

        if self.clip_len:
            return self.clip_pixels(image)
        path = Path(image)
        if not path.is_file():
            raise UserInputError(f"image {path} does not exist" if not path.exists() else f"{path} is not a file")
        try:
            rgb = load_rgb(str(path), self.input_size)
            array = np.asarray(rgb, dtype=np.uint8).copy()
        except Exception as exc:  # noqa: BLE001 - any decoder failure on a user's file means "unreadable"
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise UserInputError(f"image {path.name} cannot be read as an image ({reason})") from None
        return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0

    def clip_pixels(self, video: str | os.PathLike) -> torch.Tensor:
        """The centre clip of a video file or frame folder, float [3, T, S, S] in [0, 1]."""
        from .data.video_decoding import read_prediction_clip
        from .errors import DataError

        try:
            clip = read_prediction_clip(os.fspath(video), self.clip_len, self.input_size)
        except DataError as exc:
            raise UserInputError(str(exc)) from None
        return clip.float() / 255.0

    def preprocess(self, images: Sequence[str | os.PathLike]) -> torch.Tensor:
        """Image files to the normalized batch the network expects, [N, 3, S, S]."""
        batch = torch.stack([self.pixels(p) for p in images])
        return (batch - self.mean) / self.std

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        logits = self.model.logits(batch).float()
        return self.outputs(logits)

    def predict(self, images: Sequence[str | os.PathLike], top_k: int = 5,
                batch_size: int = 64, threshold: float = 0.5) -> list[Prediction]:
        """The ``top_k`` classes of each image with probabilities; for a multi-label model every
        class whose probability is at least ``threshold`` instead (most probable first, maybe
        none). Every image is read before any is classified, so an unreadable one fails the
        call at once."""
        if top_k < 1:
            raise UserInputError("--top-k must be at least 1")
        if not 0.0 <= threshold <= 1.0:
            raise UserInputError(f"--threshold must be between 0 and 1, not {threshold}")
        if not images:
            raise UserInputError("no images given")
        k = min(top_k, self.num_classes)
        paths = [Path(p) for p in images]
        pixels = [self.pixels(p) for p in paths]
        results: list[Prediction] = []
        for start in range(0, len(paths), batch_size):
            batch = (torch.stack(pixels[start:start + batch_size]) - self.mean) / self.std
            probs = self.probabilities(batch)
            values, indices = probs.topk(k, dim=1)
            if self.multi_label:  # every label at or above the threshold, not a fixed number
                values, indices = probs.sort(dim=1, descending=True)
            for row, path in enumerate(paths[start:start + batch_size]):
                top = tuple((self.class_names[int(i)], float(v)) for v, i in zip(values[row], indices[row])
                            if not self.multi_label or float(v) >= threshold)
                results.append(Prediction(path, top))
        return results
