"""How long one training epoch of input pipeline takes, per path.

Compares the device-resident path (whole uint8 set on the device, one gather per
batch for crop + flip) with the DataLoader path (per-sample PIL images through
torchvision transforms) at 0 and 2 workers, on synthetic CIFAR-sized data, so the
choice made by ``data.device_resident: auto`` can be checked on a given machine.

    python benchmarks/data_pipeline.py [--size 50000] [--batch-size 128] [--device auto] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from sskt_engine.data import ImageSet
from sskt_engine.data.batches import BatchStream

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def synthetic_cifar(size: int) -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (size, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return ImageSet(images, torch.randint(0, 10, (size,), generator=generator))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epoch(stream: BatchStream, device: torch.device) -> float:
    """Seconds to produce every batch of one epoch, touching each so nothing is lazy."""
    _sync(device)
    start = time.perf_counter()
    checksum = torch.zeros((), device=device)
    for batch in stream.epoch(1):
        checksum += batch.images[:, 0, 0, 0].sum()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50_000, help="number of 3x32x32 images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts to time, comma-separated")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 gives "
                        "steadier numbers on a busy machine, where spinning OpenMP threads slow small ops")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    data = synthetic_cifar(args.size)
    common = dict(batch_size=args.batch_size, shuffle=True, augment=True, mean=CIFAR_MEAN, std=CIFAR_STD,
                  device=device, seed=0)
    print(f"{args.size} images 3x32x32, batch {args.batch_size}, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    start = time.perf_counter()
    resident = BatchStream(data, resident="on", **common)
    _sync(device)
    print(f"  moving the set to the device once: {time.perf_counter() - start:.3f} s")
    list(zip(range(3), resident.epoch(0)))  # warm-up: kernels, allocator
    results = [("device-resident (one gather)", time_epoch(resident, device))]
    for workers in (int(w) for w in args.workers.split(",") if w.strip()):
        stream = BatchStream(data, resident="off", num_workers=workers, **common)
        results.append((f"DataLoader + PIL, {workers} workers", time_epoch(stream, device)))

    base = results[0][1]
    print(f"  {'path':34s} {'epoch s':>9s} {'images/s':>10s} {'x resident':>11s}")
    for name, seconds in results:
        print(f"  {name:34s} {seconds:9.3f} {args.size / seconds:10.0f} {seconds / base:11.1f}")


if __name__ == "__main__":
    main()
