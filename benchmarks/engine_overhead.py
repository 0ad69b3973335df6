"""Engine overhead: the trainer's SSKT step loop against a minimal hand-written loop doing the
identical math (same modules, same losses, same optimizer) on the same fixed batches.

    python benchmarks/engine_overhead.py [--steps 60] [--rounds 5] [--batch 64] [--threads N]

Prints steps/s of both and their ratio (goal >= 0.97), the median over interleaved rounds,
and the share of step time spent in the sources.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.data import DatasetSplits, ImageSet
from sskt_engine.data.batches import Batch
from sskt_engine.losses import cross_entropy, soft_cross_entropy
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.models import build_architecture
from sskt_engine.runs import RunFolder
from sskt_engine.sources import FrozenSource, SourceEnsemble
from sskt_engine.trainer import Trainer, _Setup

PRESET = """\
name: overhead
target: {arch: tiny_cnn}
sources:
  - {kind: checkpoint, path: unused, arch: small_cnn, num_classes: 12}
  - {kind: checkpoint, path: unused, arch: tiny_cnn, num_classes: 20}
method: {name: sskt, alpha: 0.1, temperature: 3.0}
train: {epochs: 1000, batch_size: 64, lr: 0.01, schedule: constant, device: cpu, log_every: 10}
"""


class FixedStream:
    """The same pre-built batches every epoch: no data pipeline in the measurement."""

    def __init__(self, batches: list[Batch]):
        self.batches = batches
        self.resident = True

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int):
        return iter(self.batches)


def make_sources() -> SourceEnsemble:
    torch.manual_seed(1)
    specs = [("small", "small_cnn", 12, 32), ("tiny", "tiny_cnn", 20, 48)]
    sources = [FrozenSource(name, build_architecture(arch, classes).eval().requires_grad_(False), classes, size,
                            (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), None, "benchmark")
               for name, arch, classes, size in specs]
    return SourceEnsemble(sources)


def make_batches(steps: int, batch: int) -> list[Batch]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for index in range(steps):
        pixels = torch.rand(batch, 3, 32, 32, generator=generator)
        batches.append(Batch(pixels, (pixels - 0.5) / 0.25, torch.randint(0, 10, (batch,), generator=generator),
                             torch.arange(index * batch, (index + 1) * batch)))
    return batches


def build_method(cfg, ensemble):
    torch.manual_seed(0)
    ctx = MethodContext(cfg, 10, tuple(str(i) for i in range(10)), 32, torch.device("cpu"), ensemble)
    return METHODS.get("sskt").build(ctx)


def trainer_round(cfg, ensemble, batches, run_dir: Path) -> float:
    method = build_method(cfg, ensemble)
    stream = FixedStream(batches)
    data = DatasetSplits(ImageSet(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.zeros(1, dtype=torch.long)),
                         ImageSet(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.zeros(1, dtype=torch.long)),
                         tuple(str(i) for i in range(10)), (0.5,) * 3, (0.25,) * 3, 32)
    setup = _Setup(torch.device("cpu"), data, method.ctx.task, method, stream, stream)
    trainer = Trainer(cfg, run_dir, on_event=lambda e: None, stop_event=threading.Event())
    trainer.run_folder = RunFolder(run_dir)
    start = time.perf_counter()
    trainer._train_epoch(setup, 0, 0)
    return len(batches) / (time.perf_counter() - start)


def hand_round(cfg, ensemble, batches) -> float:
    method = build_method(cfg, ensemble)  # same modules and optimizer, built identically
    net, opt = method.networks["target"], method.optimizers["target"]
    alpha, t = cfg.method.alpha, cfg.method.temperature
    net.train()
    start = time.perf_counter()
    for batch in batches:
        out = net(batch.images)
        soft = ensemble(batch.pixels)
        loss = cross_entropy(out.logits, batch.labels)
        for z, s in zip(out.aux_logits, soft):
            loss = loss + alpha * soft_cross_entropy(z, s, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(batches) / (time.perf_counter() - start)


def source_share(cfg, ensemble, batches) -> float:
    method = build_method(cfg, ensemble)
    in_sources = 0.0
    start = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        ensemble(batch.pixels)
        in_sources += time.perf_counter() - t0
        method.train_step(batch, 0)
    total = time.perf_counter() - start
    # train_step runs the sources too; the extra call above is subtracted from the total
    return in_sources / (total - in_sources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = loads_preset(PRESET, overrides=[f"train.batch_size={args.batch}"])
    cfg = cfg.replace(sources=(SourceConfig(kind="checkpoint", path="x", arch="small_cnn"),) * 2)
    ensemble = make_sources()
    batches = make_batches(args.steps, args.batch)
    hand_round(cfg, ensemble, batches[:5])  # warm-up of both paths
    ratios, trainer_rates, hand_rates = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            hand = hand_round(cfg, ensemble, batches)
            ours = trainer_round(cfg, ensemble, batches, Path(tmp))
            trainer_rates.append(ours)
            hand_rates.append(hand)
            ratios.append(ours / hand)
            print(f"round {r + 1}: trainer {ours:.2f} steps/s, hand-written {hand:.2f} steps/s, "
                  f"ratio {ours / hand:.3f}", flush=True)
    print(f"\ntorch threads: {torch.get_num_threads()}, batch {args.batch}, {args.steps} steps x {args.rounds} rounds")
    print(f"trainer      {statistics.median(trainer_rates):.2f} steps/s (median)")
    print(f"hand-written {statistics.median(hand_rates):.2f} steps/s (median)")
    print(f"ratio        {statistics.median(ratios):.3f} (median; goal >= 0.97)")
    print(f"sources' share of step time: {100 * source_share(cfg, ensemble, batches[:20]):.1f}%")


if __name__ == "__main__":
    main()
