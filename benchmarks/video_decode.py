"""Clips per second out of the clip batch stream, per way of storing the clips.

Writes a small set of synthetic videos the size of UCF101's (320x240, 25 fps, textured and moving,
MPEG-4 Part 2 in AVI as the archive ships them), extracts their frames with the same code as
``sskt frames`` (JPEG frame folders), and times one epoch of training clips (random temporal
position, crop and flip, ``clip_len`` frames at ``frame_side`` px) for:

* video files decoded with PyAV, at 0 and N DataLoader workers;
* frame folders read with PIL, at 0 and N workers;
* device-resident clips (an in-memory ``ClipSet`` of the same shape gathered on the device).

    python benchmarks/video_decode.py [--videos 24] [--frames 100] [--clip-len 16] [--frame-side 112]
                                      [--workers 2] [--device auto] [--threads 1]

``decode_throughput(...)`` returns the rows, for ``benchmarks/demo_video_transfer.py`` to print.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sskt_engine.data.clip_batches import ClipBatchStream
from sskt_engine.data.clips import ClipSet, FileClipSet
from sskt_engine.data.video_decoding import extract_frames, require_av

MEAN, STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class Throughput:
    storage: str
    workers: int
    clips_per_s: float
    frames_per_s: float


def write_synthetic_videos(folder: Path, count: int, frames: int, width: int = 320, height: int = 240) -> list[str]:
    """``count`` AVI (MPEG-4) videos of a drifting random texture: hard enough for the codec that
    decoding costs what a real video's does."""
    av = require_av()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        texture = rng.integers(0, 256, (height + frames, width + frames, 3), dtype=np.uint8)
        texture = np.repeat(np.repeat(texture[::4, ::4], 4, 0), 4, 1)[: height + frames, : width + frames]
        path = folder / f"video_{i:03d}.avi"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.bit_rate = 1_500_000
            for t in range(frames):
                picture = np.ascontiguousarray(texture[t:t + height, t:t + width])
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(str(path))
    return paths


def time_epoch(stream: ClipBatchStream, device: torch.device) -> tuple[float, int]:
    """Seconds for one epoch of batches (each touched, so nothing is lazy) and the clips it held."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    clips = 0
    checksum = torch.zeros((), device=device)
    for batch in stream.epoch(0):
        checksum += batch.images[:, 0, 0, 0, 0].sum()
        clips += len(batch)
    float(checksum)
    return time.perf_counter() - start, clips


def decode_throughput(videos: int = 24, frames: int = 100, clip_len: int = 16, frame_side: int = 112,
                      workers: int = 2, device: str = "cpu", batch_size: int = 8,
                      folder: Path | None = None) -> list[Throughput]:
    """Clips/s of video files, frame folders and device-resident clips (see the module's docstring)."""
    dev = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="sskt-video-bench-", dir=folder) as tmp:
        root = Path(tmp)
        paths = write_synthetic_videos(root, videos, frames)
        folders = []
        for path in paths:
            target = str(root / "frames" / Path(path).stem)
            extract_frames(path, target)
            folders.append(target)
        labels = torch.arange(videos) % 4
        common = dict(clip_len=clip_len, batch_size=batch_size, shuffle=True, augment=True, mean=MEAN, std=STD,
                      device=dev, seed=0, resident="off")
        rows = []
        for storage, sample_paths in (("video files (PyAV)", paths), ("frame folders (JPEG)", folders)):
            for n in sorted({0, workers}):
                stream = ClipBatchStream(FileClipSet(tuple(sample_paths), labels, frame_side), num_workers=n,
                                         **common)
                time_epoch(stream, dev)  # warm-up: imports, the page cache
                seconds, clips = time_epoch(stream, dev)
                rows.append(Throughput(storage, n, clips / seconds, clips * clip_len / seconds))
        resident_set = ClipSet(torch.randint(0, 256, (max(videos, 64), clip_len + 4, 3, frame_side, frame_side),
                                             dtype=torch.uint8), torch.arange(max(videos, 64)) % 4)
        stream = ClipBatchStream(resident_set, **{**common, "resident": "on"})
        time_epoch(stream, dev)  # warm-up (device copies, kernels)
        seconds, clips = time_epoch(stream, dev)
        rows.append(Throughput(f"device-resident ({dev.type})", 0, clips / seconds, clips * clip_len / seconds))
    return rows


def table(rows: list[Throughput], clip_len: int, frame_side: int) -> str:
    lines = [f"| storage ({clip_len} frames at {frame_side} px per clip) | workers | clips/s | frames/s |",
             "|---|---:|---:|---:|"]
    lines += [f"| {r.storage} | {r.workers} | {r.clips_per_s:,.1f} | {r.frames_per_s:,.0f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--frames", type=int, default=100, help="frames per video (UCF101 averages ~186)")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--frame-side", type=int, default=112)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rows = decode_throughput(args.videos, args.frames, args.clip_len, args.frame_side, args.workers, device)
    print(table(rows, args.clip_len, args.frame_side))


if __name__ == "__main__":
    main()
