"""How epoch time grows with the work: dataset size 1x/2x/4x and 0/1/2/4 sources.

    python benchmarks/scaling.py [--base 512] [--batch 64] [--threads N]

Uses the trainer's own epoch loop on synthetic in-memory data (device-resident path),
SSKT with tiny_cnn sources at 32 px (supervised for 0 sources). Linear growth means
time / (size x per-step cost) stays flat; the table prints each ratio to the 1x case.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import torch

from sskt_engine.config import loads_preset
from sskt_engine.data import DatasetSplits, ImageSet
from sskt_engine.data.batches import BatchStream
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.models import build_architecture
from sskt_engine.runs import RunFolder
from sskt_engine.sources import FrozenSource, SourceEnsemble
from sskt_engine.trainer import Trainer, _Setup

PRESET = "name: scaling\ntarget: {arch: tiny_cnn}\nmethod: {name: supervised}\n" \
         "train: {epochs: 10, batch_size: 64, lr: 0.01, schedule: constant, device: cpu, log_every: 20}\n"


def epoch_seconds(size: int, sources: int, batch: int) -> float:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (size, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (size,), generator=generator)
    train = ImageSet(images, labels)
    data = DatasetSplits(train, train, tuple(map(str, range(10))), (0.5,) * 3, (0.25,) * 3, 32)
    method_name = "sskt" if sources else "supervised"
    # the preset only records the sources; the benchmark builds them in memory below
    listed = ", ".join(["{kind: checkpoint, path: x, arch: tiny_cnn}"] * sources)
    cfg = loads_preset(PRESET, overrides=[f"method.name={method_name}", f"train.batch_size={batch}",
                                          f"sources=[{listed}]"])
    torch.manual_seed(1)
    ensemble = SourceEnsemble([
        FrozenSource(f"s{i}", build_architecture("tiny_cnn", 20).eval().requires_grad_(False), 20, 32,
                     (0.5,) * 3, (0.25,) * 3, None, "benchmark") for i in range(sources)]) if sources else None
    ctx = MethodContext(cfg, 10, data.class_names, 32, torch.device("cpu"), ensemble)
    method = METHODS.get(method_name).build(ctx)
    stream = BatchStream(train, batch_size=batch, shuffle=True, augment=True, mean=data.mean, std=data.std,
                         device="cpu", seed=0, drop_last=True)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, on_event=lambda e: None, stop_event=threading.Event())
        trainer.run_folder = RunFolder(Path(tmp))
        setup = _Setup(torch.device("cpu"), data, method.ctx.task, method, stream, stream)
        trainer._train_epoch(setup, 0, 0)  # warm-up epoch
        start = time.perf_counter()
        trainer._train_epoch(setup, 1, 0)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=int, default=512, help="images at 1x")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("| sources | 1x s | 2x s (ratio) | 4x s (ratio) | per-image ms at 4x |")
    print("|---|---|---|---|---|")
    for sources in (0, 1, 2, 4):
        times = [epoch_seconds(args.base * k, sources, args.batch) for k in (1, 2, 4)]
        print(f"| {sources} | {times[0]:.2f} | {times[1]:.2f} ({times[1] / times[0]:.2f}) | "
              f"{times[2]:.2f} ({times[2] / times[0]:.2f}) | {1000 * times[2] / (4 * args.base):.2f} |", flush=True)


if __name__ == "__main__":
    main()
