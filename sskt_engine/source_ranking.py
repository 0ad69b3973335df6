"""Rank and inspect a preset's candidate sources before training, in one pass over the
target's labelled images (``sskt rank-sources``, ``sskt sources`` and the GUI's Rank action).

For each source: LEEP on its soft labels at the preset's temperature, NCE on its arg-max
labels, LogME on its penultimate features (``transferability``), all at the side the preset
feeds it; and what its soft labels look like there and at other sides (``source_inspection``),
with warnings. The images are the run's labelled training subset for the preset's seed
(``data.labels_per_class`` and ``data.val_split`` applied as training applies them), without
augmentation; more than ``max_images`` of them are sampled with a generator seeded by
``train.seed``, so the same preset and seed always give the same scores.

A source that cannot be built (a missing file, a wrong architecture) becomes an entry with its
one-sentence error instead of ending the ranking. ``write_ranking`` stores the result as JSON
under ``<runs root>/source-rankings/``, next to the run folders.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .atomic import atomic_write_text
from .config import ExperimentConfig, SourceConfig, to_dict
from .errors import UserInputError
from .source_inspection import SizeReading, SourceReader, inspection_sizes, size_reading, source_warnings
from .transferability import SCORES, leep, logme, logme_multi_label, multi_label_mean, nce

__all__ = ["RankedSource", "SourceRanking", "rank_sources", "write_ranking", "ranking_table", "inspection_text",
           "RANKING_FORMAT", "SORT_KEYS"]

RANKING_FORMAT = "sskt-studio-source-ranking"
SORT_KEYS = tuple(s.key for s in SCORES)
DEFAULT_MAX_IMAGES = 2000
DEFAULT_INSPECT_IMAGES = 128
BATCH = 128


@dataclass(frozen=True)
class RankedSource:
    """One source: its scores and what it sees, or why it could not be read."""

    name: str
    index: int  # position among the sources ranked (the preset's first, then --source ones)
    origin: str = ""
    num_classes: int = 0
    native_size: int = 0
    preset_size: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    readings: tuple[SizeReading, ...] = ()  # the first is at the preset's side
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str = ""
    seconds: float = 0.0

    @property
    def inspection(self) -> SizeReading:
        return self.readings[0]

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("name", "index", "origin", "num_classes", "native_size", "preset_size",
                                              "error", "seconds")}
        out["scores"] = {k: (v if math.isfinite(v) else None) for k, v in self.scores.items()}
        out["readings"] = [r.to_json() for r in self.readings]
        out["warnings"] = list(self.warnings)
        out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class SourceRanking:
    preset_name: str
    dataset: str
    num_images: int  # labelled images scored
    num_classes: int
    target_size: int
    temperature: float
    seed: int
    sort_key: str
    entries: tuple[RankedSource, ...]  # best first by sort_key; failed sources last
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"format": RANKING_FORMAT, "version": 1, "preset": self.preset_name, "dataset": self.dataset,
                "images": self.num_images, "classes": self.num_classes, "target_size": self.target_size,
                "temperature": self.temperature, "seed": self.seed, "sort_key": self.sort_key,
                "seconds": self.seconds, "scores": {s.key: {"title": s.title, "reads": s.what} for s in SCORES},
                "sources": [e.to_json() for e in self.entries]}


ProgressCallback = Callable[[str, float], None]


def _sample(count: int, limit: int, seed: int) -> torch.Tensor:
    if count <= limit:
        return torch.arange(count)
    from .data.splits import seeded_generator

    chosen = torch.randperm(count, generator=seeded_generator(seed, "source_ranking"))[:limit]
    return torch.sort(chosen).values


def _pixel_batches(dataset: Any, mean: Sequence[float], std: Sequence[float], seed: int) -> list[torch.Tensor]:
    """The images as float pixels in [0, 1], in order, no augmentation (the trainer's own reader)."""
    from .data.batches import BatchStream

    stream = BatchStream(dataset, batch_size=BATCH, shuffle=False, augment=False, mean=mean, std=std,
                         device="cpu", seed=seed, resident="auto")
    return [batch.pixels for batch in stream.epoch(0)]


def method_temperature(config: ExperimentConfig) -> float:
    """The temperature the preset's method softens soft labels with (1 when it has none)."""
    value = getattr(config.method, "temperature", None)
    return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0


def _score(key: str, labels: torch.Tensor, logits: torch.Tensor, features: torch.Tensor,
           temperature: float, num_classes: int) -> float:
    multi = labels.ndim == 2
    if key == "leep":
        probs = torch.softmax(logits.double() / temperature, dim=1)
        return multi_label_mean(leep, probs, labels) if multi else leep(probs, labels, num_classes)
    if key == "nce":
        hard = logits.argmax(dim=1)
        return multi_label_mean(nce, hard, labels) if multi else nce(hard, labels)
    return logme_multi_label(features, labels) if multi else logme(features, labels, num_classes)


# LEEP of a source whose outputs are independent of the target labels is -H(Y), the labels' own
# entropy (log 1/C when balanced). Within this fraction of it the source tells the target almost
# nothing. Set from benchmarks/source_ranking.py on the demo (one dataset, so a rule of thumb): over
# 3 seeds the three sources within 2 % gained +0.64, -0.89 and -25.9 points, the three above it +2.67
# to +6.89 (the margin was chosen on seed 0 alone; seeds 1-2 kept the split).
UNINFORMATIVE_LEEP_MARGIN = 0.02


def label_entropy(labels: torch.Tensor) -> float:
    """H(Y) in nats of single-label targets [n]."""
    counts = torch.bincount(labels.cpu().long()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


def uninformative_warning(name: str, leep_score: float, labels: torch.Tensor) -> str | None:
    """A sentence when the source's soft labels say almost nothing about the target's classes."""
    if labels.ndim != 1 or labels.numel() == 0:
        return None  # multi-label: LEEP is a mean over classes, with no single floor
    floor = -label_entropy(labels)
    if floor >= 0 or leep_score - floor > UNINFORMATIVE_LEEP_MARGIN * -floor:
        return None
    return (f"{name}: its soft labels say almost nothing about the target's classes (LEEP {leep_score:.3f}, "
            f"within {100 * UNINFORMATIVE_LEEP_MARGIN:.0f}% of {floor:.3f}, what a source unrelated to the labels "
            "scores): SSKT cannot gain from it and may lose; on the demo such a source with confident soft "
            "labels cost 26 points at alpha 1 (README: Which source will help?)")


def _rank_one(cfg: SourceConfig, index: int, batches: list[torch.Tensor], labels: torch.Tensor,
              num_classes: int, target_size: int, temperature: float, inspect_images: int,
              device: torch.device) -> RankedSource:
    from .sources import build_source

    start = time.perf_counter()
    name = cfg.display_name()
    # Built without the preset's input_size, to learn the source's native side; fed the preset's after.
    try:
        source = build_source(dataclasses.replace(cfg, input_size=None), device)
    except UserInputError as exc:
        return RankedSource(name=name, index=index, error=str(exc), seconds=time.perf_counter() - start)
    native = source.input_size
    preset_side = cfg.input_size or native
    reader = SourceReader(source, device)
    try:
        logits, features = reader.read(batches, preset_side, features=True)
    except RuntimeError as exc:  # e.g. a compiled program that only takes another side
        return RankedSource(name=name, index=index, error=f"it cannot be run at {preset_side} px ({_first(exc)})",
                            seconds=time.perf_counter() - start)
    names = source.class_names
    scores = {key: _score(key, labels, logits, features, temperature, num_classes) for key in SORT_KEYS}
    readings = []
    notes = [reader.feature_note] if reader.feature_note else []
    for side, roles in inspection_sizes(preset_side, native, target_size):
        if side == preset_side:
            readings.append(size_reading(logits, temperature, side, roles, names))
            continue
        try:  # the other sides on a smaller sample: a large source at 2x its side is costly
            other, _ = reader.read(batches, side, limit=inspect_images)
        except RuntimeError as exc:
            notes.append(f"{name}: cannot be read at {side} px ({_first(exc)})")
            continue
        readings.append(size_reading(other, temperature, side, roles, names))
    warnings = source_warnings(name, readings[0], native, source.num_classes)
    unrelated = uninformative_warning(name, scores["leep"], labels)
    if unrelated:
        warnings.append(unrelated)
    return RankedSource(name=name, index=index, origin=source.origin, num_classes=source.num_classes,
                        native_size=native, preset_size=preset_side, scores=scores, readings=tuple(readings),
                        warnings=tuple(warnings), notes=tuple(notes), seconds=time.perf_counter() - start)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def rank_sources(config: ExperimentConfig, extra_sources: Sequence[SourceConfig] = (), *,
                 include_preset_sources: bool = True, sort_key: str = "leep",
                 max_images: int = DEFAULT_MAX_IMAGES, inspect_images: int = DEFAULT_INSPECT_IMAGES,
                 device: torch.device | str = "cpu", on_progress: ProgressCallback | None = None,
                 stop_event: threading.Event | None = None) -> SourceRanking:
    """Score and inspect the preset's sources (and ``extra_sources``); see the module doc.
    Raises ``UserInputError`` for no sources, an unknown sort key or unreadable data."""
    from .data import load_dataset

    if sort_key not in SORT_KEYS:
        raise UserInputError(f"unknown score {sort_key!r}; sort by one of {', '.join(SORT_KEYS)}")
    if max_images < 2:
        raise UserInputError(f"max_images must be at least 2, not {max_images}")
    candidates = (list(config.sources) if include_preset_sources else []) + list(extra_sources)
    if not candidates:
        raise UserInputError("there is no source to rank: add sources to the preset or give --source")
    progress = on_progress or (lambda text, fraction: None)
    stop_event = stop_event or threading.Event()
    start = time.perf_counter()
    progress("reading the labelled images", 0.0)
    seed = config.train.seed
    splits = load_dataset(config.data, seed)
    keep = _sample(len(splits.train), max_images, seed)
    dataset = splits.train.subset(keep) if len(keep) < len(splits.train) else splits.train
    if len(dataset) < 2:
        raise UserInputError("the labelled subset has fewer than 2 images; there is nothing to score")
    labels = dataset.labels
    batches = _pixel_batches(dataset, splits.mean, splits.std, seed)
    temperature = method_temperature(config)
    device = torch.device(device)
    entries = []
    for i, cfg in enumerate(candidates):
        if stop_event.is_set():
            break
        progress(f"source {i + 1}/{len(candidates)}: {cfg.display_name()}", i / len(candidates))
        entries.append(_rank_one(cfg, i, batches, labels, splits.num_classes, splits.image_size, temperature,
                                 inspect_images, device))
    progress("done", 1.0)

    def order(entry: RankedSource) -> tuple[int, float, int]:
        value = entry.scores.get(sort_key, float("nan"))
        return (1, 0.0, entry.index) if entry.error or not math.isfinite(value) else (0, -value, entry.index)

    return SourceRanking(preset_name=config.name, dataset=config.data.dataset, num_images=len(dataset),
                         num_classes=splits.num_classes, target_size=splits.image_size, temperature=temperature,
                         seed=seed, sort_key=sort_key, entries=tuple(sorted(entries, key=order)),
                         seconds=time.perf_counter() - start)


def write_ranking(ranking: SourceRanking, runs_root: str | os.PathLike | None = None,
                  config: ExperimentConfig | None = None) -> Path:
    """``<runs root>/source-rankings/<time>-<preset>.json``; returns its path."""
    from .runs import _slug, default_runs_root, ensure_folder

    root = Path(runs_root) if runs_root is not None else default_runs_root()
    folder = root / "source-rankings"
    ensure_folder(folder)
    body = ranking.to_json()
    if config is not None:
        body["sources_config"] = [to_dict(s) for s in config.sources]
    path = folder / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{_slug(ranking.preset_name)}.json"
    for attempt in range(2, 1000):
        if not path.exists():
            break
        path = path.with_name(f"{path.stem.rsplit('~', 1)[0]}~{attempt}.json")
    atomic_write_text(path, json.dumps(body, indent=2))
    return path


# ----------------------------------------------------------------------------- text for the terminal

def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def ranking_table(ranking: SourceRanking) -> str:
    """A markdown table, best source first by ``ranking.sort_key``, then warnings and notes."""
    titles = {s.key: s.title for s in SCORES}
    head = " | ".join(f"{titles[k]}{' ▼' if k == ranking.sort_key else ''}" for k in SORT_KEYS)
    lines = [f"{ranking.num_images} labelled images of {ranking.dataset} ({ranking.num_classes} classes, seed "
             f"{ranking.seed}), soft labels at temperature {ranking.temperature:g}; higher is better for every "
             f"score; {ranking.seconds:.1f} s", "",
             f"| rank | source | {head} | mean max prob | entropy / max | side (native) | classes |",
             "|---:|---|" + "---:|" * len(SORT_KEYS) + "---:|---:|---:|---:|"]
    for position, e in enumerate(ranking.entries, 1):
        if e.error:
            lines.append(f"| – | {e.name} | " + " | ".join("–" for _ in SORT_KEYS) + " | – | – | – | – |")
            continue
        scores = " | ".join(_num(e.scores.get(k)) for k in SORT_KEYS)
        r = e.inspection
        lines.append(f"| {position} | {e.name} | {scores} | {r.max_prob_mean:.3f} | {r.entropy_ratio:.2f} | "
                     f"{e.preset_size} ({e.native_size}) | {e.num_classes} |")
    extra = [f"error: {e.name}: {e.error}" for e in ranking.entries if e.error]
    extra += [f"WARNING: {w}" for e in ranking.entries for w in e.warnings]
    extra += [f"note: {n}" for e in ranking.entries for n in e.notes]
    return "\n".join(lines + ([""] + extra if extra else [])) + "\n"


def inspection_text(ranking: SourceRanking) -> str:
    """Per source: soft-label statistics at every side read, and its most frequent classes."""
    out = [f"{ranking.num_images} labelled images of {ranking.dataset} ({ranking.num_classes} classes, seed "
           f"{ranking.seed}); soft labels at temperature {ranking.temperature:g}"]
    for e in sorted(ranking.entries, key=lambda entry: entry.index):
        out.append("")
        if e.error:
            out.append(f"{e.name}: cannot be read: {e.error}")
            continue
        out.append(f"{e.name}: {e.num_classes} classes, native side {e.native_size} px, fed {e.preset_size} px "
                   f"({e.origin})")
        out.append(f"  {'side':>6}  {'read as':<22} {'images':>6}  {'mean max prob':>13}  {'entropy':>8}  "
                   f"{'/ max':>5}")
        for r in e.readings:
            out.append(f"  {r.size:>4}px  {', '.join(r.roles):<22} {r.images:>6}  {r.max_prob_mean:>13.4f}  "
                       f"{r.entropy_mean:>8.3f}  {r.entropy_ratio:>5.2f}")
        top = ", ".join(f"{name} {100 * share:.0f}%" for name, share in e.inspection.top_classes)
        out.append(f"  most frequent classes at {e.preset_size} px: {top}")
        out += [f"  WARNING: {w}" for w in e.warnings]
        out += [f"  note: {n}" for n in e.notes]
    return "\n".join(out) + "\n"
