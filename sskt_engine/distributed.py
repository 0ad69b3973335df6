"""Data-parallel training across processes started by ``torchrun``.

Every rank builds the same networks from the same seed, trains on its share of each
epoch (``BatchStream(shard=...)``) and averages gradients before each optimizer step,
which is the arithmetic of DistributedDataParallel. Doing it at the optimizer step
instead of wrapping modules keeps every method (DML's several networks, MAXL's meta
step) working unchanged. Metrics are summed across ranks (or, for average precision, their
scores gathered: ``gather_rows``); only rank 0 writes files.
Backend ``nccl`` on CUDA, ``gloo`` on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistContext":
        """Read torchrun's environment; a single process when it is absent."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    def init(self, device: torch.device) -> None:
        if not self.active or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)

    def device_for(self, device: torch.device) -> torch.device:
        """On CUDA each rank takes the GPU of its local rank."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    # -- collectives (no-ops in a single process) ------------------------------------------
    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's rows of ``tensor`` ([n_rank, ...], n_rank may differ), concatenated in
        rank order on every rank: for metrics whose state cannot be summed (average precision
        keeps every score). all_gather needs equal shapes, so rows are padded to the longest."""
        if not self.active:
            return tensor
        count = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
        counts = [torch.zeros_like(count) for _ in range(self.world)]
        dist.all_gather(counts, count)
        sizes = [int(c.item()) for c in counts]
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    def any(self, flag: bool, device: torch.device) -> bool:
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average gradients over ranks in one flat buffer per dtype (one collective each)."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for g in grads:
            by_dtype.setdefault(g.dtype, []).append(g)
        for group in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat.div_(self.world)
            offset = 0
            for g in group:
                g.copy_(flat[offset: offset + g.numel()].view_as(g))
                offset += g.numel()

    def broadcast_parameters(self, modules: Iterable[torch.nn.Module]) -> None:
        """Start every rank from rank 0's weights (the seed already makes them equal;
        this guards against nondeterministic initialisation)."""
        if not self.active:
            return
        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def shutdown(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
