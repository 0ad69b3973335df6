"""Turn a clip set into a stream of batches [B, 3, T, H, W] on the training device.

The clip counterpart of ``batches.BatchStream``, with the same two paths and the same promise:
``epoch(k)`` depends only on (seed, k), whatever the path or the number of workers.

* Temporal sampling: a training clip takes ``clip_len`` frames at ``frame_stride`` from a random
  position of its sample (one uniform draw per sample and epoch, from a generator seeded with
  (seed, "clip_time", epoch), never global RNG); a validation clip is the centre one, or ``views``
  evenly spaced clips whose scores ``average_views`` averages. A sample shorter than the clip is
  looped (``clips.clip_frame_indices``).
* Spatial augmentation is the image pipeline's (``batches.epoch_plan``: pad 4, random crop,
  horizontal flip), drawn once per sample, so every frame of a clip is cropped and flipped alike.
* device-resident (``ClipSet``, the video demo): the uint8 clips live on the device and one gather
  picks, crops and flips every frame of a batch (``batches.crop_flip_gather`` over the frames).
* DataLoader (``FileClipSet``: video files decoded with PyAV, or frame folders; or residency off):
  worker processes decode only the frames a clip takes and return uint8, so little crosses the
  process boundary. A file that stopped decoding is skipped and counted in ``unreadable``.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..config import DataConfig
from ..errors import DataError
from .batches import (CPU_RESIDENT_LIMIT_BYTES, DEVICE_RESIDENT_FRACTION, PAD, Batch, BatchStream, EpochPlan,
                      _free_device_bytes, _seed_worker, crop_flip_gather, epoch_plan)
from .clips import ClipSet, FileClipSet, clip_frame_indices, clip_span, is_clip_set, view_positions
from .sets import DatasetSplits
from .splits import seeded_generator


def average_views(logits: torch.Tensor, views: int) -> torch.Tensor:
    """Scores of ``views`` clips per sample ([B * views, C], a sample's clips adjacent) as one row
    per sample: the log of the mean softmax probability (the 3D-ResNet reference code averages the
    clips' probabilities). Log-probabilities are logits again, so losses and argmax work on them."""
    if views == 1:
        return logits
    probs = torch.softmax(logits.float(), dim=1).view(-1, views, logits.shape[1]).mean(dim=1)
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def time_positions(n: int, *, seed: int, epoch: int, random: bool) -> torch.Tensor:
    """Where each sample's training clip starts, as a fraction of the starts that fit: uniform per
    (seed, epoch) when ``random``, else the centre (0.5)."""
    if not random:
        return torch.full((n,), 0.5)
    return torch.rand(n, generator=seeded_generator(seed, "clip_time", epoch))


def resident_frame_indices(positions: torch.Tensor, frames: int, clip_len: int, stride: int) -> torch.Tensor:
    """``clips.clip_frame_indices`` for every row of ``positions`` [B, V] at once: int64 [B, V, clip_len]."""
    step = torch.arange(clip_len, device=positions.device) * stride
    span = clip_span(clip_len, stride)
    if frames < span:
        return (step % frames).expand(*positions.shape, clip_len).contiguous()
    starts = frames - span + 1
    start = (positions * starts).long().clamp_(max=starts - 1)
    return start[..., None] + step


def choose_clip_resident(dataset: ClipSet | FileClipSet, device: torch.device, resident: str) -> bool:
    """As ``batches.choose_resident`` for clip sets: only an in-memory ``ClipSet`` can be resident."""
    if resident not in ("auto", "on", "off"):
        raise ValueError(f"resident must be auto, on or off, not {resident!r}")
    if resident == "off":
        return False
    if not isinstance(dataset, ClipSet):
        if resident == "on":
            raise DataError("data.device_resident is on, but this video dataset is read from files; set "
                            "data.device_resident to auto or off.")
        return False
    if resident == "on":
        return True
    size = dataset.clips.numel() * dataset.clips.element_size()
    if device.type == "cpu":
        return size < CPU_RESIDENT_LIMIT_BYTES
    free = _free_device_bytes(device)
    return free is not None and size < DEVICE_RESIDENT_FRACTION * free


# ----------------------------------------------------------------------------- DataLoader path

def pad_crop_flip(frames: torch.Tensor, top: int, left: int, flip: bool, pad: int = PAD) -> torch.Tensor:
    """``crop_flip_gather``'s augmentation on the frames of one clip, uint8 [K, 3, H, W]: zero-pad by
    ``pad``, crop H x W at (top, left) of the padded frame, flip; the same for every frame."""
    height, width = frames.shape[-2:]
    padded = F.pad(frames, (pad, pad, pad, pad))
    out = padded[..., top:top + height, left:left + width]
    return out.flip(-1) if flip else out


class ClipSampleDataset(Dataset):
    """Items are (index, positions, top, left, flip) from the epoch plan; returns the sample's
    ``len(positions)`` clips as uint8 [V * clip_len, 3, S, S], its label, index and whether it read."""

    def __init__(self, source: ClipSet | FileClipSet, clip_len: int, stride: int, augment: bool):
        self.source, self.clip_len, self.stride, self.augment = source, clip_len, stride, augment

    def __len__(self) -> int:
        return len(self.source)

    def _frames(self, index: int, positions: Sequence[float]) -> torch.Tensor:
        if isinstance(self.source, ClipSet):
            picked = [i for p in positions for i in clip_frame_indices(self.source.frames, self.clip_len, self.stride, p)]
            return self.source.clips[index, picked]
        from .video_decoding import clip_picker, read_frames

        frames = read_frames(self.source.paths[index], clip_picker(self.clip_len, self.stride, positions),
                             self.source.image_size)
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)

    def _side(self) -> int:
        return self.source.image_size if isinstance(self.source, FileClipSet) else self.source.clips.shape[-1]

    def __getitem__(self, item):
        index, positions, top, left, flip = item
        try:
            frames = self._frames(index, positions)
        except Exception:  # noqa: BLE001 - reported by the main process with the file's name
            side = self._side()
            blank = torch.zeros(len(positions) * self.clip_len, 3, side, side, dtype=torch.uint8)
            return blank, self.source.labels[index], index, False
        if self.augment:
            frames = pad_crop_flip(frames, top, left, flip)
        return frames.contiguous(), self.source.labels[index], index, True


# ----------------------------------------------------------------------------- the stream

class ClipBatchStream:
    """Batches of one clip set, epoch by epoch; ``epoch(k)`` depends only on (seed, k). The same
    interface as ``batches.BatchStream`` (``epoch``, ``len``, ``resident``, ``unreadable``)."""

    def __init__(self, dataset: ClipSet | FileClipSet, *, clip_len: int, frame_stride: int = 1, views: int = 1,
                 batch_size: int, shuffle: bool, augment: bool, mean: Sequence[float], std: Sequence[float],
                 device: torch.device | str, seed: int, drop_last: bool = False, resident: str = "auto",
                 num_workers: int = 0, shard: tuple[int, int] = (0, 1), random_clips: bool | None = None):
        """``views``: clips per sample (validation; evenly spaced); ``random_clips``: random temporal
        positions (default: when shuffling, i.e. for training); else the centre clip(s)."""
        if batch_size < 1 or clip_len < 1 or frame_stride < 1 or views < 1:
            raise ValueError("batch_size, clip_len, frame_stride and views must be at least 1")
        self.dataset = dataset
        self.clip_len, self.frame_stride, self.views = clip_len, frame_stride, views
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.random_clips = shuffle if random_clips is None else random_clips
        if self.random_clips and views > 1:
            raise ValueError("several views per sample are for validation (centred clips), not random clips")
        self.device = torch.device(device)
        self.seed, self.drop_last, self.num_workers = seed, drop_last, num_workers
        self.rank, self.world = shard
        self.unreadable: set[str] = set()  # files skipped because they do not decode
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1, 1)
        self._resident = choose_clip_resident(dataset, self.device, resident)
        if self._resident:
            assert isinstance(dataset, ClipSet)
            try:
                self._clips = dataset.clips.to(self.device).contiguous()
            except torch.cuda.OutOfMemoryError:
                gib = dataset.clips.numel() / 1024**3
                raise DataError(f"the clips ({gib:.1f} GiB) do not fit in the memory of {self.device}; set "
                                "data.device_resident to auto or off.") from None
            self._labels = dataset.labels.to(self.device)

    @property
    def resident(self) -> bool:
        return self._resident

    def unaugmented(self) -> "ClipBatchStream":
        """The same clips (this rank's share) once each, in dataset order, centred, without spatial
        augmentation or drop_last (as ``BatchStream.unaugmented``); shares the device copy."""
        plain = copy.copy(self)
        plain.shuffle, plain.augment, plain.drop_last, plain.random_clips = False, False, False, False
        plain.views = 1
        return plain

    def _shard_size(self) -> int:
        n = len(self.dataset)
        if self.world == 1:
            return n
        if self.drop_last:
            return n // self.world
        return len(range(self.rank, n, self.world))

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _positions(self, epoch: int) -> torch.Tensor:
        """[N, views] temporal positions of every sample's clips in this epoch."""
        n = len(self.dataset)
        if self.random_clips:
            return time_positions(n, seed=self.seed, epoch=epoch, random=True)[:, None]
        return torch.tensor(view_positions(self.views)).expand(n, self.views)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        plan = epoch_plan(len(self.dataset), seed=self.seed, epoch=epoch, shuffle=self.shuffle, augment=self.augment)
        if self.world > 1:
            order = plan.order[: self.world * self._shard_size()] if self.drop_last else plan.order
            plan = EpochPlan(order[self.rank::self.world].contiguous(), plan.tops, plan.lefts, plan.flips)
        positions = self._positions(epoch)
        if self._resident:
            return self._resident_batches(plan, positions)
        return self._loader_batches(plan, positions, epoch)

    def _finish(self, raw: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> Batch:
        """uint8 [B, V * T, 3, H, W] -> Batch with pixels/images [B * V, 3, T, H, W]."""
        b, _, channels, height, width = raw.shape
        clips = raw.view(b * self.views, self.clip_len, channels, height, width).permute(0, 2, 1, 3, 4)
        pixels = clips.float().div_(255).contiguous()
        return Batch(pixels=pixels, images=(pixels - self._mean) / self._std, labels=labels, indices=indices,
                     views=self.views)

    def _resident_batches(self, plan: EpochPlan, positions: torch.Tensor) -> Iterator[Batch]:
        order = plan.order.to(self.device)
        tops, lefts, flips = (t.to(self.device) for t in (plan.tops, plan.lefts, plan.flips))
        positions = positions.to(self.device)
        stored = self._clips.shape[1]
        frames = self._clips.view(-1, *self._clips.shape[2:])  # [N * F, 3, H, W]
        per_sample = self.views * self.clip_len
        for step in range(len(self)):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            picked = resident_frame_indices(positions[idx], stored, self.clip_len, self.frame_stride)
            flat = (idx[:, None] * stored + picked.view(len(idx), -1)).view(-1)  # [B * V * T]
            if self.augment:  # one crop and flip per clip, repeated for each of its frames
                per_frame = [t[idx].repeat_interleave(per_sample) for t in (tops, lefts, flips)]
                raw = crop_flip_gather(frames, flat, *per_frame)
            else:
                raw = frames.index_select(0, flat)
            yield self._finish(raw.view(len(idx), per_sample, *raw.shape[1:]), self._labels[idx], idx)

    def _loader_batches(self, plan: EpochPlan, positions: torch.Tensor, epoch: int) -> Iterator[Batch]:
        order = plan.order.tolist()
        rows = positions.tolist()
        items = [(i, tuple(rows[i]), top, left, flip) for i, top, left, flip in
                 zip(order, plan.tops[order].tolist(), plan.lefts[order].tolist(), plan.flips[order].tolist())]
        dataset = ClipSampleDataset(self.dataset, self.clip_len, self.frame_stride, self.augment)
        loader = DataLoader(dataset, batch_size=self.batch_size, sampler=items, drop_last=self.drop_last,
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                            worker_init_fn=_seed_worker, generator=seeded_generator(self.seed, "loader", epoch),
                            persistent_workers=False)
        for raw, labels, indices, ok in loader:
            if not bool(ok.all()):
                for index in indices[~ok].tolist():
                    self._skip_or_raise(index)
                raw, labels, indices = raw[ok], labels[ok], indices[ok]
                if len(labels) == 0:
                    continue
            yield self._finish(raw.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True),
                               indices.to(self.device, non_blocking=True))

    def _skip_or_raise(self, index: int) -> None:
        """A file still there that does not decode is skipped and counted, as corrupt images are;
        a file that vanished fails the run."""
        if isinstance(self.dataset, FileClipSet) and os.path.exists(self.dataset.paths[index]):
            self.unreadable.add(self.dataset.paths[index])
            return
        where = self.dataset.paths[index] if isinstance(self.dataset, FileClipSet) else f"clip {index}"
        raise DataError(f"video {where} could not be read any more; was it changed or removed after the "
                        "dataset was loaded?")


def batch_stream(splits: DatasetSplits, dataset, cfg: DataConfig, *, views: int = 1, **common):
    """The stream for one split: ``ClipBatchStream`` for clip sets (``views`` clips per sample,
    validation only), ``BatchStream`` for images; ``common`` are ``BatchStream``'s arguments."""
    if is_clip_set(dataset):
        clip_len = splits.clip_len or cfg.clip_len or 1
        return ClipBatchStream(dataset, clip_len=clip_len, frame_stride=cfg.frame_stride, views=views, **common)
    return BatchStream(dataset, **common)
