"""What a source network sees on the target's images, before any training: its soft labels'
confidence and spread at several input sizes, its most frequent classes, and warnings.

SSKT's auxiliary heads learn ``softmax(s(x) / T)``. When that distribution is close to uniform
(a source fed images far smaller than it was trained on, a network of an unrelated task, a
wrong normalization) the auxiliary task carries almost nothing and only costs time; a user
should hear so before training. ``SourceReader`` runs one frozen source on batches of pixels in
[0, 1] exactly as training does (``SourceEnsemble``: bilinear resize to the side asked for, the
source's own normalization) and returns its logits and, when asked, its penultimate feature
(the input of its last ``nn.Linear``, found generically by ``models.introspect``), which
LogME reads. ``size_reading`` summarizes one size's logits; ``source_warnings`` says what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
import torch.nn as nn

from .feature_taps import untappable_reason
from .frozen_source import FrozenSource
from .sources import SourceEnsemble

__all__ = ["SizeReading", "SourceReader", "size_reading", "source_warnings", "inspection_sizes",
           "FLAT_ENTROPY_RATIO", "SMALL_SIZE_RATIO"]

# Soft labels whose mean entropy is at least this fraction of log(classes) are "close to
# uniform": at 0.9 the typical image's distribution is as spread as a uniform one over about
# classes^0.9 classes (a 1000-class source: ~500), too flat for an auxiliary head to learn much.
FLAT_ENTROPY_RATIO = 0.9
# A source fed images smaller than this fraction of its native side sees them "much smaller".
SMALL_SIZE_RATIO = 0.5
TOP_CLASSES = 5


@dataclass(frozen=True)
class SizeReading:
    """A source's soft labels on the sample at one input side."""

    size: int
    roles: tuple[str, ...]  # why this side was read: "preset", "native", "2x native", "target"
    images: int
    temperature: float
    max_prob_mean: float  # mean over images of the largest probability of softmax(logits / T)
    entropy_mean: float  # mean entropy in nats of softmax(logits / T)
    entropy_ratio: float  # entropy_mean / log(classes): 0 one-hot, 1 uniform
    top_classes: tuple[tuple[str, float], ...]  # most frequent arg-max classes and their share of the images

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["roles"] = list(self.roles)
        out["top_classes"] = [{"name": name, "share": share} for name, share in self.top_classes]
        return out


def class_name(source: FrozenSource, index: int) -> str:
    names = source.class_names
    return names[index] if names and 0 <= index < len(names) else f"class {index}"


def size_reading(logits: torch.Tensor, temperature: float, size: int, roles: Sequence[str],
                 names: Sequence[str] | None = None) -> SizeReading:
    """Summarize logits [n, Z] read at side ``size``."""
    logits = logits.detach().to(torch.float64)
    probs = torch.softmax(logits / temperature, dim=1)
    log_probs = torch.log_softmax(logits / temperature, dim=1)
    entropy = -(probs * log_probs).sum(dim=1)
    classes = logits.shape[1]
    ratio = float(entropy.mean()) / math.log(classes) if classes > 1 else 0.0
    counts = torch.bincount(logits.argmax(dim=1), minlength=classes)
    shares = counts.double() / max(logits.shape[0], 1)
    order = torch.argsort(counts, descending=True, stable=True)[:TOP_CLASSES]
    top = tuple(((names[i] if names and i < len(names) else f"class {i}"), float(shares[i]))
                for i in order.tolist() if counts[i] > 0)
    return SizeReading(size=size, roles=tuple(roles), images=int(logits.shape[0]), temperature=temperature,
                       max_prob_mean=float(probs.max(dim=1).values.mean()), entropy_mean=float(entropy.mean()),
                       entropy_ratio=ratio, top_classes=top)


def inspection_sizes(preset_size: int, native_size: int, target_size: int | None) -> list[tuple[int, list[str]]]:
    """The sides to read a source at, the preset's first, each once with every role it plays."""
    sides: dict[int, list[str]] = {}
    for side, role in ((preset_size, "preset"), (native_size, "native"), (2 * native_size, "2x native"),
                       (target_size, "target")):
        if side:
            sides.setdefault(int(side), []).append(role)
    return list(sides.items())


def source_warnings(name: str, at_preset: SizeReading, native_size: int, num_classes: int) -> list[str]:
    """One sentence per problem with what the source would hand the target at the preset's settings."""
    out = []
    if num_classes > 1 and at_preset.entropy_ratio >= FLAT_ENTROPY_RATIO:
        out.append(f"{name}: its soft labels are close to uniform at {at_preset.size} px and temperature "
                   f"{at_preset.temperature:g} (mean max probability {at_preset.max_prob_mean:.4f} over "
                   f"{num_classes} classes, uniform would be {1 / num_classes:.4f}; entropy "
                   f"{100 * at_preset.entropy_ratio:.0f}% of the maximum): the auxiliary task carries little")
    if at_preset.size < SMALL_SIZE_RATIO * native_size:
        out.append(f"{name}: it sees the images at {at_preset.size} px, much smaller than its native "
                   f"{native_size} px; set the source's input_size to {native_size} (images are upsampled)")
    return out


class SourceReader:
    """Runs one frozen source on pixel batches at any side, as training would (see module doc)."""

    def __init__(self, source: FrozenSource, device: torch.device | str = "cpu"):
        self.source = source
        self.device = torch.device(device)
        self.module: nn.Module = source.module
        self.feature_note = ""
        self._classifier: nn.Module | None = None
        reason = untappable_reason(self.module)
        if reason is not None:
            self.feature_note = f"{source.name}: LogME reads its logits, since {reason}"
        else:
            self._classifier = self._find_classifier()

    def _find_classifier(self) -> nn.Module | None:
        from .models.introspect import probe_layout

        try:
            layout = probe_layout(self.module, self.source.input_size)
        except (ValueError, RuntimeError) as exc:  # no 4-D features: no stages, but maybe a classifier
            self.feature_note = f"{self.source.name}: LogME reads its logits ({str(exc).splitlines()[0][:120]})"
            return None
        if layout.classifier is None:
            self.feature_note = f"{self.source.name}: LogME reads its logits (no final nn.Linear found)"
            return None
        return dict(self.module.named_modules())[layout.classifier]

    @torch.inference_mode()
    def read(self, batches: Iterable[torch.Tensor], size: int, features: bool = False,
             limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits [n, Z] (float32, CPU) of the source fed the pixel batches resized to ``size``, and
        its penultimate features [n, D] when asked (its logits when they cannot be hooked).
        ``limit``: stop after this many images."""
        ensemble = SourceEnsemble([dataclasses.replace(self.source, input_size=size)]).to(self.device)
        captured: list[torch.Tensor] = []
        handle = None
        if features and self._classifier is not None:
            handle = self._classifier.register_forward_pre_hook(
                lambda module, args: captured.append(torch.flatten(args[0], 1).float().cpu()))
        logits: list[torch.Tensor] = []
        seen = 0
        try:
            for pixels in batches:
                if limit is not None and seen >= limit:
                    break
                if limit is not None:
                    pixels = pixels[: limit - seen]
                logits.append(ensemble(pixels.to(self.device))[0].float().cpu())
                seen += pixels.shape[0]
        finally:
            if handle is not None:
                handle.remove()
        all_logits = torch.cat(logits) if logits else torch.empty(0, self.source.num_classes)
        if not features:
            return all_logits, None
        return all_logits, (torch.cat(captured) if captured else all_logits.clone())
