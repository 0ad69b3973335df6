"""Turn an image set into a stream of augmented, normalized batches on the training device.

Two paths give the same batches for the same (seed, epoch):

* device-resident: the whole uint8 set lives on the device; each batch is one gather
  that does pad-4 + random crop + horizontal flip for every sample at once. For
  CIFAR-sized data this removes the input pipeline from the profile.
* DataLoader: per-sample PIL images through torchvision's functional transforms,
  for sets left on disk (``FileImageSet``) or when residency is switched off.

Both read one *epoch plan* drawn from a generator seeded with (seed, epoch): the
visiting order and, per dataset index, the crop offset and the flip. Nothing reads
global RNG, so a run resumed at epoch k sees exactly the batches an uninterrupted
run would have seen, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..config import DataConfig
from ..errors import DataError
from .sets import DatasetSplits, FileImageSet, ImageSet
from .splits import seeded_generator

PAD = 4
CPU_RESIDENT_LIMIT_BYTES = 4 * 1024**3
DEVICE_RESIDENT_FRACTION = 0.25


@dataclass(frozen=True)
class Batch:
    """One training or validation batch, already on the device; what a method's
    ``train_step`` receives whole, so a method that needs more than images and labels
    (per-sample state keyed by dataset index, the raw pixels) needs no trainer change.

    ``pixels``: float [B, 3, H, W] in [0, 1] after augmentation (what sources that
    re-normalize, and previews, need); ``images``: the same normalized with the
    dataset's mean/std (what the target network sees); ``labels``: int64 [B] (or
    float [B, C] for multi-label data); ``indices``: int64 [B], the dataset index of
    each sample, on the same device (gathered there, so reading them costs no sync).

    Clips (``clip_batches.py``): ``pixels``/``images`` are [B, 3, T, H, W]. A validation batch of
    several clips per video has ``views`` = k > 1: rows i*k..i*k+k-1 of ``pixels``/``images`` are
    the k clips of sample i, while ``labels``/``indices`` stay [B] (``clip_batches.average_views``).
    """

    pixels: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    views: int = 1

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class EpochPlan:
    """Visiting order, and crop offsets (in the padded image) and flips per dataset index."""

    order: torch.Tensor
    tops: torch.Tensor
    lefts: torch.Tensor
    flips: torch.Tensor


def epoch_plan(n: int, *, seed: int, epoch: int, shuffle: bool, augment: bool) -> EpochPlan:
    """Every random choice of one epoch, drawn on the CPU so all devices agree."""
    generator = seeded_generator(seed, "epoch", epoch)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if augment:
        offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
    else:  # offset PAD on a PAD-padded image is the identity crop
        offsets = torch.full((n, 2), PAD, dtype=torch.long)
        flips = torch.zeros(n, dtype=torch.bool)
    return EpochPlan(order, offsets[:, 0].contiguous(), offsets[:, 1].contiguous(), flips)


def crop_flip_gather(images: torch.Tensor, indices: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor,
                     flips: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Zero-pad by ``pad``, crop H x W at (top, left) of the padded image, and flip, for
    every sample of a batch in one gather from the whole uint8 set [N, C, H, W].

    Builds per-sample row and column source indices (the flip reverses the column
    index) into the unpadded image; positions that fall in the padding are zeroed.
    """
    _, channels, height, width = images.shape
    device = images.device
    rows = tops[:, None] + torch.arange(height, device=device) - pad  # [B, H]
    base = torch.arange(width, device=device)
    cols = lefts[:, None] + torch.where(flips[:, None], width - 1 - base, base) - pad  # [B, W]
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    rows, cols = rows.clamp(0, height - 1), cols.clamp(0, width - 1)
    channel = torch.arange(channels, device=device)[None, :, None, None]
    flat = ((indices[:, None, None, None] * channels + channel) * height + rows[:, None, :, None]) * width \
        + cols[:, None, None, :]
    out = images.reshape(-1).take(flat)
    return out.masked_fill_(~inside[:, None], 0)


# ----------------------------------------------------------------------------- residency

def _free_device_bytes(device: torch.device) -> int | None:
    """Free memory of an accelerator, or None for the CPU (which uses a fixed limit)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "mps":
        mps = getattr(torch, "mps", None)
        try:
            return int(mps.recommended_max_memory() - mps.driver_allocated_memory())  # type: ignore[union-attr]
        except (AttributeError, RuntimeError):
            return None
    return None


def choose_resident(dataset: ImageSet | FileImageSet, device: torch.device, resident: str) -> bool:
    """``on`` insists (a set left on disk cannot be), ``off`` refuses, ``auto`` keeps an
    in-memory set on the device when it takes under a quarter of the free memory."""
    if resident not in ("auto", "on", "off"):
        raise ValueError(f"resident must be auto, on or off, not {resident!r}")
    if resident == "off":
        return False
    if not isinstance(dataset, ImageSet):
        if resident == "on":
            raise DataError("data.device_resident is on, but this dataset is too large to decode into memory "
                            "and is read from files; set data.device_resident to auto or off.")
        return False
    if resident == "on":
        return True
    size = dataset.images.numel() * dataset.images.element_size()
    if device.type == "cpu":
        return size < CPU_RESIDENT_LIMIT_BYTES
    free = _free_device_bytes(device)
    return free is not None and size < DEVICE_RESIDENT_FRACTION * free


# ----------------------------------------------------------------------------- DataLoader path

class SampleDataset(Dataset):
    """Per-sample PIL images. Items are (index, top, left, flip) tuples from the epoch
    plan, so the transforms need no RNG of their own and workers stay deterministic."""

    def __init__(self, source: ImageSet | FileImageSet, augment: bool):
        self.source = source
        self.augment = augment

    def __len__(self) -> int:
        return len(self.source)

    def _pil(self, index: int) -> Image.Image:
        if isinstance(self.source, FileImageSet):
            from .image_folder import load_rgb

            return load_rgb(self.source.paths[index], self.source.image_size)
        return Image.fromarray(self.source.images[index].permute(1, 2, 0).contiguous().numpy())

    def __getitem__(self, item: tuple[int, int, int, bool]) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        from torchvision.transforms import functional as F

        index, top, left, flip = item
        try:
            img = self._pil(index)
        except Exception:  # noqa: BLE001 - reported by the main process with the file's name
            size = self.source.image_size if isinstance(self.source, FileImageSet) else 1
            return torch.zeros(3, size, size), self.source.labels[index], index, False
        if self.augment:
            width, height = img.size
            img = F.crop(F.pad(img, [PAD], fill=0), top, left, height, width)
            if flip:
                img = F.hflip(img)
        return F.to_tensor(img), self.source.labels[index], index, True


def _seed_worker(worker_id: int) -> None:
    """numpy is not seeded by the DataLoader; derive it from the worker's torch seed."""
    np.random.seed(torch.initial_seed() % 2**32)


# ----------------------------------------------------------------------------- the stream

class BatchStream:
    """Batches of one image set, epoch by epoch; ``epoch(k)`` depends only on (seed, k)."""

    def __init__(self, dataset: ImageSet | FileImageSet, *, batch_size: int, shuffle: bool, augment: bool,
                 mean: Sequence[float], std: Sequence[float], device: torch.device | str, seed: int,
                 drop_last: bool = False, resident: str = "auto", num_workers: int = 0,
                 shard: tuple[int, int] = (0, 1)):
        """``shard=(rank, world)``: this process's share of every epoch in distributed
        training; all ranks draw the same plan and take every world-th sample of it."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.device = torch.device(device)
        self.seed = seed
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.rank, self.world = shard
        self.unreadable: set[str] = set()  # files skipped because they no longer decode
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._resident = choose_resident(dataset, self.device, resident)
        if self._resident:
            self._images, self._labels = self._move_to_device(dataset)

    def _move_to_device(self, dataset: ImageSet | FileImageSet) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(dataset, ImageSet)
        try:
            return dataset.images.to(self.device).contiguous(), dataset.labels.to(self.device)
        except torch.cuda.OutOfMemoryError:  # the same class as torch.OutOfMemoryError in torch >= 2.5
            gib = dataset.images.numel() / 1024**3
            raise DataError(f"the dataset ({gib:.1f} GiB) does not fit in the memory of {self.device}; set "
                            "data.device_resident to auto or off.") from None

    def unaugmented(self) -> "BatchStream":
        """The same images (this rank's share of them) once each, in dataset order, without
        augmentation or drop_last: what the soft-label cache is filled from. Shares the device
        copy of the set."""
        plain = copy.copy(self)
        plain.shuffle, plain.augment, plain.drop_last = False, False, False
        return plain

    @property
    def resident(self) -> bool:
        """True when batches are gathered from a copy of the set on the device."""
        return self._resident

    def _shard_size(self) -> int:
        n = len(self.dataset)
        if self.world == 1:
            return n
        if self.drop_last:  # equal shares, so every rank takes the same number of steps
            return n // self.world
        return len(range(self.rank, n, self.world))

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of epoch ``epoch``: the same for the same (seed, epoch), always."""
        plan = epoch_plan(len(self.dataset), seed=self.seed, epoch=epoch, shuffle=self.shuffle,
                          augment=self.augment)
        if self.world > 1:
            order = plan.order[: self.world * self._shard_size()] if self.drop_last else plan.order
            plan = EpochPlan(order[self.rank::self.world].contiguous(), plan.tops, plan.lefts, plan.flips)
        if self._resident:
            return self._resident_batches(plan)
        return self._loader_batches(plan, epoch)

    def _finish(self, pixels: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> Batch:
        return Batch(pixels=pixels, images=(pixels - self._mean) / self._std, labels=labels, indices=indices)

    def _resident_batches(self, plan: EpochPlan) -> Iterator[Batch]:
        order = plan.order.to(self.device)
        tops, lefts, flips = (t.to(self.device) for t in (plan.tops, plan.lefts, plan.flips))
        for step in range(len(self)):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            if self.augment:
                raw = crop_flip_gather(self._images, idx, tops[idx], lefts[idx], flips[idx])
            else:
                raw = self._images.index_select(0, idx)
            yield self._finish(raw.float().div_(255), self._labels[idx], idx)

    def _loader_batches(self, plan: EpochPlan, epoch: int) -> Iterator[Batch]:
        order = plan.order.tolist()
        items = list(zip(order, plan.tops[order].tolist(), plan.lefts[order].tolist(), plan.flips[order].tolist()))
        loader = DataLoader(SampleDataset(self.dataset, self.augment), batch_size=self.batch_size, sampler=items,
                            drop_last=self.drop_last, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda", worker_init_fn=_seed_worker,
                            generator=seeded_generator(self.seed, "loader", epoch))
        for pixels, labels, indices, ok in loader:
            if not bool(ok.all()):
                for index in indices[~ok].tolist():
                    self._skip_or_raise(index)
                pixels, labels, indices = pixels[ok], labels[ok], indices[ok]
                if len(labels) == 0:
                    continue
            yield self._finish(pixels.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True),
                               indices.to(self.device, non_blocking=True))

    def _skip_or_raise(self, index: int) -> None:
        """A file that is still there but does not decode is skipped and counted, as corrupt
        images are when a dataset is loaded into memory; a file that vanished fails the run."""
        if isinstance(self.dataset, FileImageSet) and os.path.isfile(self.dataset.paths[index]):
            self.unreadable.add(self.dataset.paths[index])
            return
        where = self.dataset.paths[index] if isinstance(self.dataset, FileImageSet) else f"sample {index}"
        raise DataError(f"image {where} could not be read any more; was it changed or removed after the "
                        "dataset was loaded?")


def make_streams(splits: DatasetSplits, cfg: DataConfig, *, batch_size: int, device: torch.device | str,
                 seed: int) -> tuple[BatchStream, BatchStream]:
    """The usual pair: shuffled, augmented (if ``cfg.augment``) training batches, and
    validation batches in order without augmentation."""
    common = dict(batch_size=batch_size, mean=splits.mean, std=splits.std, device=device,
                  resident=cfg.device_resident, num_workers=cfg.num_workers)
    train = BatchStream(splits.train, shuffle=True, augment=cfg.augment, seed=seed, **common)
    val = BatchStream(splits.val, shuffle=False, augment=False, seed=seed, **common)
    return train, val
