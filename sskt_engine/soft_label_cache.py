"""The sources' outputs per training image, computed once and kept: the soft-label cache.

When the sources see every image the same way in every epoch (``train.source_view: clean``, or
augmentation off) their logits are a pure function of the image, so they are computed once and
read back by dataset index from then on. This module owns the table and its files; the seam the
methods call, and the pass that fills the table, are in ``soft_labels``.

The table is float16 ``[images, sum of the sources' class counts]``: **2 bytes per class per
image**, e.g. 2,000 bytes per image for one ImageNet source (100 MB for CIFAR's 50,000 training
images), 24 bytes for the demo's 12-class source. It lives on the training device while it fits
the memory budget, and is otherwise a memory-mapped file read per batch.

A run keeps its table in ``checkpoints/soft_labels.f16`` with ``checkpoints/soft_labels.json``
beside it, written last: the table is valid only while that description exists and its
fingerprint matches. The fingerprint covers what decides a source's outputs: each source's
weights (a hash of its tensors, so a replaced file is seen whatever its name), input size,
normalisation and precision, and the training images themselves (their bytes, or for a set left
on disk the paths, sizes and modification times): another dataset, subset, split or image size
changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .atomic import atomic_write_text
from .data.sets import FileImageSet, ImageSet
from .frozen_source import FrozenSource

CACHE_FORMAT = 1
TABLE_NAME = "soft_labels.f16"
DESCRIPTION_NAME = "soft_labels.json"
FLOAT16_MAX = 65504.0  # larger logits would become inf; a logit that large is saturated anyway
CPU_BUDGET_BYTES = 1024**3
DEVICE_BUDGET_FRACTION = 0.1  # of the accelerator's free memory: the batches need the rest


# ----------------------------------------------------------------------------- fingerprint

def _hash_tensor(digest: "hashlib._Hash", tensor: torch.Tensor) -> None:
    flat = tensor.detach().reshape(-1).contiguous().cpu()
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")


def weights_digest(module: torch.nn.Module) -> str:
    """A hash of every tensor a network holds (parameters and buffers, by name)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        if isinstance(tensor, torch.Tensor):
            digest.update(name.encode())
            _hash_tensor(digest, tensor)
    return digest.hexdigest()


def dataset_digest(dataset: Any) -> str:
    """A hash of what the sources would see: the images' (or clips') bytes when the set is in
    memory, or for files their paths, sizes and modification times (and the side they are
    decoded at)."""
    digest = hashlib.blake2b(digest_size=16)
    pixels = getattr(dataset, "images", getattr(dataset, "clips", None))
    if isinstance(pixels, torch.Tensor):
        _hash_tensor(digest, pixels)
        return digest.hexdigest()
    digest.update(f"files {dataset.image_size} {len(dataset.paths)}".encode())
    for path in dataset.paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def source_fingerprint(source: FrozenSource, precision: str) -> dict[str, Any]:
    size, multiplier, shift, divisor = source.preprocessing()
    return {"weights": weights_digest(source.module), "input_size": size, "multiplier": multiplier,
            "shift": list(shift), "divisor": list(divisor), "precision": precision,
            "classes": source.num_classes}


def fingerprint(sources: Sequence[FrozenSource], precision: str, dataset: ImageSet | FileImageSet,
                context: str = "") -> str:
    """One string that changes whenever a cached output could differ. ``context``: anything
    else that decides what the sources see (for clips: their length and frame stride)."""
    body = {"format": CACHE_FORMAT, "sources": [source_fingerprint(s, precision) for s in sources],
            "dataset": dataset_digest(dataset), "images": len(dataset), "context": context}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- the table

def memory_budget(device: torch.device) -> int:
    """Bytes the table may take on ``device`` before it goes to a memory-mapped file."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(DEVICE_BUDGET_FRACTION * free)
    return CPU_BUDGET_BYTES


@dataclass
class SoftLabelTable:
    """float16 ``[rows, columns]``: per dataset index, the sources' logits side by side.

    ``values`` is a tensor on the training device, or (``mapped``) a CPU tensor over a
    memory-mapped file, read per batch and moved to the device."""

    values: torch.Tensor
    widths: tuple[int, ...]  # the class count of each source, in column order
    device: torch.device
    mapping: np.memmap | None = None  # the file's mapping behind a mapped table
    path: Path | None = None  # the file behind a mapped table, or the run's copy of an in-memory one

    @property
    def mapped(self) -> bool:
        return self.mapping is not None

    @property
    def bytes_per_image(self) -> int:
        return 2 * sum(self.widths)

    @property
    def nbytes(self) -> int:
        return self.values.shape[0] * self.bytes_per_image

    def write_rows(self, indices: torch.Tensor, logits: Sequence[torch.Tensor]) -> None:
        """Store the sources' logits (one tensor per source, [B, classes]) at dataset ``indices``."""
        row = torch.cat([o.float().clamp(-FLOAT16_MAX, FLOAT16_MAX) for o in logits], dim=1).half()
        if self.mapped:
            self.values[indices.cpu()] = row.cpu()
        else:
            self.values[indices.to(self.values.device)] = row.to(self.values.device)

    def read(self, indices: torch.Tensor, sources: Sequence[int]) -> list[torch.Tensor]:
        """The cached logits of ``sources`` for dataset ``indices``, float32 on the device."""
        if self.mapped:
            rows = self.values[indices.cpu()].to(self.device, non_blocking=True)
        else:
            rows = self.values.index_select(0, indices)
        starts = np.cumsum((0, *self.widths))
        return [rows[:, starts[i]:starts[i + 1]].float() for i in sources]

    def flush(self) -> None:
        if self.mapping is not None:
            self.mapping.flush()


def _mapped_table(handle_or_path: Any, rows: int, widths: Sequence[int], device: torch.device, mode: str,
                  path: Path | None) -> SoftLabelTable:
    """``mode`` r+ writes through to the file; c (copy-on-write) reads it and never writes."""
    mapping = np.memmap(handle_or_path, dtype=np.float16, mode=mode, shape=(rows, sum(widths)))
    return SoftLabelTable(torch.from_numpy(mapping), tuple(widths), device, mapping=mapping, path=path)


def new_table(rows: int, widths: Sequence[int], device: torch.device, budget: int,
              folder: Path | None) -> SoftLabelTable:
    """An empty table: on ``device`` within ``budget`` bytes, else a memory-mapped file (a
    temporary in ``folder``, the run's checkpoints folder, renamed when complete; without a
    folder an anonymous temporary file)."""
    columns = sum(widths)
    if rows * columns * 2 <= budget:
        return SoftLabelTable(torch.zeros(rows, columns, dtype=torch.float16, device=device), tuple(widths), device)
    if folder is not None:
        fd, tmp = tempfile.mkstemp(prefix=f".{TABLE_NAME}.", suffix=".tmp", dir=folder)
        os.ftruncate(fd, rows * columns * 2)
        os.close(fd)
        return _mapped_table(tmp, rows, widths, device, "r+", Path(tmp))
    handle = tempfile.TemporaryFile(prefix="sskt-soft-labels-")  # gone when the process ends
    handle.truncate(rows * columns * 2)
    return _mapped_table(handle, rows, widths, device, "r+", None)


def save_table(table: SoftLabelTable, folder: Path, key: str) -> None:
    """Make the table the run's valid cache: the values in ``TABLE_NAME``, then the
    description naming ``key`` (a crash between the two leaves no valid cache)."""
    (folder / DESCRIPTION_NAME).unlink(missing_ok=True)
    target = folder / TABLE_NAME
    if table.mapped and table.path is not None:
        table.flush()
        os.replace(table.path, target)
        table.path = target
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{TABLE_NAME}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(table.values.cpu().numpy().tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    atomic_write_text(folder / DESCRIPTION_NAME, json.dumps(
        {"format": CACHE_FORMAT, "fingerprint": key, "rows": table.values.shape[0], "widths": list(table.widths)}))


def load_table(folder: Path, key: str, rows: int, widths: Sequence[int], device: torch.device,
               budget: int) -> SoftLabelTable | None:
    """The run's cache when it is complete and its fingerprint is ``key``; None otherwise."""
    try:
        description = json.loads((folder / DESCRIPTION_NAME).read_text())
        size = (folder / TABLE_NAME).stat().st_size
    except (OSError, ValueError):
        return None
    if (not isinstance(description, dict) or description.get("format") != CACHE_FORMAT
            or description.get("fingerprint") != key or description.get("rows") != rows
            or description.get("widths") != list(widths) or size != rows * sum(widths) * 2):
        return None
    path = folder / TABLE_NAME
    if size <= budget:
        values = torch.from_numpy(np.fromfile(path, dtype=np.float16).reshape(rows, sum(widths)))
        return SoftLabelTable(values.to(device), tuple(widths), device, path=path)
    return _mapped_table(path, rows, widths, device, "c", path)


def remove_cache(folder: Path) -> None:
    """Drop a run's cache (the run finished: nothing will resume it)."""
    for name in (DESCRIPTION_NAME, TABLE_NAME):
        try:
            (folder / name).unlink()
        except OSError:
            pass
