"""What the sources say about a batch: the one seam between the methods and the sources' outputs.

A method asks for the logits of the sources it needs once, when it is built
(``ctx.soft_labels.request()``, or ``request([teacher])`` for KD), and calls what it gets
with the whole ``Batch`` at every step. Behind that call the sources either run on the batch
(``Batch.pixels``, the augmented images the target sees) or their outputs are read from the
soft-label cache by ``Batch.indices``; the method cannot tell.

``train.source_view`` says what the sources see:

* ``augmented`` (default, the paper's way): the same augmented batch as the target; the
  sources run at every step;
* ``clean``: each training image un-augmented, resized for each source. That is the same in
  every epoch, so the trainer computes it once before the first epoch (``fill``) and every
  step reads it (``soft_label_cache``).

With augmentation off the augmented batch *is* the clean image, so the cache is used for both
views (not for clips, whose training position in time is random whatever ``data.augment``
says). A method that reads the sources' features rather than their logits (FitNets) runs them
on the augmented batch whatever the view: its hints are maps aligned with the target's crop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from .data.batches import Batch
from .data.sets import FileImageSet, ImageSet
from .distributed import DistContext
from .soft_label_cache import (SoftLabelTable, fingerprint, load_table, memory_budget, new_table, remove_cache,
                               save_table)
from .sources import SourceEnsemble

SOURCE_VIEWS = ("augmented", "clean")
GATHER_ROWS = 4096  # rows exchanged per collective when ranks share what they computed
REPORT_EVERY_S = 2.0


def precision_name(ensemble: SourceEnsemble) -> str:
    dtype = getattr(ensemble, "autocast_dtype", None)
    return {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtype, "float32")


def subset_ensemble(ensemble: SourceEnsemble, members: Sequence[int]) -> SourceEnsemble:
    """An ensemble of some of the sources, with the same precision and memory format, so that
    only the sources a method needs run per batch."""
    if list(members) == list(range(len(ensemble.sources))):
        return ensemble
    return SourceEnsemble([ensemble.sources[i] for i in members], precision=precision_name(ensemble),
                          channels_last=getattr(ensemble, "channels_last", False))


class SoftLabelReader:
    """The logits of some sources for a batch: one float32 tensor [B, classes] per source,
    from the cache when it is filled, else from running those sources on ``batch.pixels``."""

    def __init__(self, owner: "SoftLabels", members: Sequence[int]):
        self.owner = owner
        self.members = tuple(members)
        self.ensemble = subset_ensemble(owner.ensemble, self.members)

    def __call__(self, batch: Batch) -> list[torch.Tensor]:
        table = self.owner.table
        if table is not None:
            return table.read(batch.indices, [self.owner.table_members.index(m) for m in self.members])
        if self.owner.cached:
            raise RuntimeError("the soft-label cache is not filled yet: the trainer fills it before the first "
                               "epoch (SoftLabels.fill)")
        return self.ensemble(batch.pixels)

    def to(self, device: torch.device) -> "SoftLabelReader":
        self.ensemble.to(device)
        return self


class SoftLabels:
    """The sources' outputs for the methods (``MethodContext.soft_labels``)."""

    def __init__(self, ensemble: SourceEnsemble, view: str = "augmented", batches_vary: bool = True):
        """``batches_vary``: whether a training image looks different from epoch to epoch
        (augmentation; for clips also the random temporal position)."""
        if view not in SOURCE_VIEWS:
            raise ValueError(f"source view must be one of {', '.join(SOURCE_VIEWS)}, not {view!r}")
        self.ensemble = ensemble
        self.view = view
        # the sources see each image the same way in every epoch: their outputs can be kept
        self.cached = view == "clean" or not batches_vary
        self.wanted: list[int] = []  # the sources some method asked for
        self.table: SoftLabelTable | None = None
        self.table_members: tuple[int, ...] = ()  # the sources of the table's columns, in order

    @property
    def names(self) -> list[str]:
        return self.ensemble.names

    def request(self, members: Iterable[int] | None = None) -> SoftLabelReader:
        """What a method calls per batch for the logits of ``members`` (default: every source)."""
        members = list(range(len(self.ensemble.sources)) if members is None else members)
        for index in members:
            if index not in self.wanted:
                self.wanted.append(index)
        return SoftLabelReader(self, members)

    @property
    def needs_fill(self) -> bool:
        return self.cached and bool(self.wanted) and self.table is None

    def fill(self, stream: Iterable[Batch], dataset: ImageSet | FileImageSet, device: torch.device, *,
             folder: Path | None = None, dist: DistContext | None = None, budget: int | None = None,
             report: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None,
             context: str = "") -> bool:
        """Load the run's cache from ``folder`` if it is valid, else compute it from ``stream``
        (the un-augmented images of ``dataset`` in order; in a distributed run this rank's
        share of them, exchanged with the other ranks at the end) and save it there. Only the
        requested sources are computed and kept; ``context`` joins the fingerprint (what else
        decides what the sources see). Returns False when ``should_stop`` stopped the pass."""
        dist = dist or DistContext()
        budget = memory_budget(device) if budget is None else budget
        self.table_members = tuple(sorted(self.wanted))
        ensemble = subset_ensemble(self.ensemble, self.table_members)
        widths = [s.num_classes for s in ensemble.sources]
        rows = len(dataset)
        key = fingerprint(ensemble.sources, precision_name(ensemble), dataset, context)
        say = report or (lambda message: None)
        if folder is not None:
            loaded = load_table(folder, key, rows, widths, device, budget)
            if loaded is not None:
                self.table = loaded
                say(f"soft labels: reusing the sources' outputs computed earlier ({_describe(loaded)})")
                return True
        table = new_table(rows, widths, device, budget, folder if dist.is_main else None)
        say(f"soft labels: computing the sources' outputs once on the {rows:,} un-augmented training images "
            f"({_describe(table)}); every epoch then reads them instead of running the sources")
        started = last = time.perf_counter()
        done = 0
        local_indices: list[torch.Tensor] = []
        local_rows: list[torch.Tensor] = []
        for batch in stream:
            if should_stop is not None and should_stop():
                return False
            logits = ensemble(batch.pixels)
            if dist.active:  # kept until every rank has computed its share
                local_indices.append(batch.indices.cpu())
                local_rows.append(torch.cat([o.float() for o in logits], dim=1).cpu())
            else:
                table.write_rows(batch.indices, logits)
            done += len(batch)
            now = time.perf_counter()
            if now - last >= REPORT_EVERY_S:
                last = now
                seen = min(done * dist.world, rows)
                say(f"soft labels: {seen:,} of {rows:,} images ({100 * seen / rows:.0f} %)")
        if dist.active:
            self._exchange(table, local_indices, local_rows, rows, dist)
        if folder is not None and dist.is_main:
            save_table(table, folder, key)
        self.table = table
        say(f"soft labels: computed in {time.perf_counter() - started:.1f} s")
        return True

    @staticmethod
    def _exchange(table: SoftLabelTable, indices: list[torch.Tensor], rows_: list[torch.Tensor], total: int,
                  dist: DistContext) -> None:
        """Every rank computed its share (every world-th image); all_gather it in chunks of
        equal count on every rank, so each rank ends with the whole table."""
        columns = sum(table.widths)
        mine_idx = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long)
        mine = torch.cat(rows_) if rows_ else torch.zeros(0, columns)
        share = -(-total // dist.world)  # the largest share of any rank
        device = table.device if table.device.type == "cuda" else torch.device("cpu")  # nccl needs CUDA tensors
        for start in range(0, share, GATHER_ROWS):
            part_idx = mine_idx[start:start + GATHER_ROWS].to(device)
            part = mine[start:start + GATHER_ROWS].to(device)
            all_idx = dist.gather_rows(part_idx)
            all_rows = dist.gather_rows(part)
            if len(all_idx):
                table.write_rows(all_idx, torch.split(all_rows, list(table.widths), dim=1))

    def finish(self, folder: Path | None) -> None:
        """The run finished: nothing resumes it, so its cache files go."""
        if folder is not None:
            remove_cache(folder)


def _describe(table: SoftLabelTable) -> str:
    where = f"memory-mapped file {table.path}" if table.mapped and table.path else \
        "memory-mapped temporary file" if table.mapped else f"on {table.device.type}"
    return f"{table.bytes_per_image:,} bytes per image, {table.nbytes / 1024**2:.1f} MiB, {where}"
