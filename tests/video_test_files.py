"""Small real video files and frame folders for the video tests, written with PyAV.

Every frame is one flat colour whose red channel encodes the frame's index (``RED_STEP`` per
frame), so a test reads back which frames a clip took, whatever the codec's small losses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

RED_STEP = 18  # red value per frame index: frames 0..13 stay apart after lossy coding


def frames_of(count: int, height: int = 24, width: int = 32, green: int = 90) -> np.ndarray:
    """uint8 [count, H, W, 3]: frame t is flat (t * RED_STEP, green, 200)."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    frames[..., 0] = (np.arange(count) * RED_STEP)[:, None, None]
    frames[..., 1] = green
    frames[..., 2] = 200
    return frames


def frame_index(red: float) -> int:
    """The frame index a decoded red value stands for."""
    return int(round(float(red) / RED_STEP))


def write_video(path: str | os.PathLike, frames: np.ndarray, codec: str = "mpeg4", fps: int = 25) -> Path:
    """Encode ``frames`` (uint8 [T, H, W, 3]) into ``path``; the container follows the extension."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: str | os.PathLike, seconds: float = 0.2) -> Path:
    """A valid media file with an audio stream and no video stream."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        samples = np.zeros((1, int(rate * seconds)), np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: str | os.PathLike, keep: float) -> Path:
    """Cut the file to ``keep`` of its bytes (a download or copy that stopped)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_frame_folder(folder: str | os.PathLike, frames: np.ndarray, pattern: str = "image_{:05d}.jpg",
                       start: int = 1) -> Path:
    """One image file per frame (PNG when the pattern says so, lossless; JPEG otherwise)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / pattern.format(t + start), quality=95)
    return folder


UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")


def ucf_name(cls: str, group: int, clip: int) -> str:
    spelled = "HandStandPushups" if cls == "HandstandPushups" else cls  # the archive's own inconsistency
    return f"{cls}/v_{spelled}_g{group:02d}_c{clip:02d}.avi"


def make_ucf101(root, frame_folders: bool = False, missing: str | None = None):
    """A tiny UCF101: 3 classes, groups 1-4, two clips each; split 1 tests on group 1, split 2 on group 2."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    for split in (1, 2):
        train, test = [], []
        for ci, cls in enumerate(UCF_CLASSES):
            for group in (1, 2, 3, 4):
                for clip in (1, 2):
                    name = ucf_name(cls, group, clip)
                    (test if group == split else train).append(name)
        (lists / f"trainlist0{split}.txt").write_text(
            "".join(f"{n} {UCF_CLASSES.index(n.split('/')[0]) + 1}\r\n" for n in train))
        (lists / f"testlist0{split}.txt").write_text("".join(f"{n}\r\n" for n in test))
    for ci, cls in enumerate(UCF_CLASSES):
        for group in (1, 2, 3, 4):
            for clip in (1, 2):
                name = ucf_name(cls, group, clip)
                if name == missing:
                    continue
                frames = frames_of(5 + group, green=40 * ci + 20)
                if frame_folders:
                    write_frame_folder(root / "UCF-101" / name[:-4], frames)
                else:
                    write_video(root / "UCF-101" / name, frames)
    return root
