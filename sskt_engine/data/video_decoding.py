"""Decode the frames of one clip from a video file (PyAV, which carries its own FFmpeg) or from a
frame folder, resized (shorter side) and centre-cropped to a square, RGB uint8.

A video is decoded from its start up to the last frame a clip needs (video codecs cannot jump to
a frame without decoding from a keyframe, and the short clips of action datasets make seeking
not worth its inexactness). The container's frame count, when it states one, picks the frames;
when it states none, or states more than the file holds (a truncated file), the frames are
counted by decoding. A file that yields no frame at all, or has no video stream, raises
``UnreadableVideo``; readers skip and count such files as they do corrupt images.

PyAV is an optional dependency (the ``video`` extra): importing this module does not need it,
decoding a video file does, and says so in one sentence.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import DataError
from .clips import clip_frame_indices
from .frame_folders import frame_files, is_frame_folder, probe_frame_folder, read_folder_frames

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv")

Pick = Callable[[int], Sequence[int]]


class UnreadableVideo(ValueError):
    """A video file without a decodable video stream."""


def require_av():
    """The ``av`` module, or a DataError saying how to install it."""
    try:
        import av
    except ImportError:
        raise DataError("reading video files needs PyAV: pip install 'sskt-studio[video]' (or pip install av); "
                        "frame folders need no decoder.") from None
    av.logging.set_level(None)  # FFmpeg's own warnings about damaged files would flood the log
    return av


def _scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``size`` and the aspect ratio kept."""
    if width <= height:
        return size, max(size, round(height * size / width))
    return max(size, round(width * size / height)), size


def _square(frame, size: int) -> np.ndarray:
    """One decoded ``av.VideoFrame`` as uint8 [size, size, 3]: scaled by FFmpeg (area filter), then
    centre-cropped."""
    width, height = _scaled_size(frame.width, frame.height, size)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
    top, left = (height - size) // 2, (width - size) // 2
    return rgb[top:top + size, left:left + size]


# What to keep of a video, once its stated frame count (0: not stated) is known: the frame indices
# to keep (None: all) and the last one needed (None: decode to the end).
Plan = Callable[[int], tuple["set[int] | None", "int | None"]]


@contextlib.contextmanager
def _video_stream(path: str) -> Iterator[tuple[Any, Any]]:
    """Open ``path`` and give (container, its first video stream): the one opener of clip reading
    and frame extraction. Any container or decoder error inside the block becomes one
    ``UnreadableVideo`` sentence naming the file."""
    av = require_av()
    try:
        with av.open(path, mode="r") as container:
            if not container.streams.video:
                raise UnreadableVideo(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield container, stream
    except UnreadableVideo:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise UnreadableVideo(f"{path} cannot be decoded ({exc})") from None


def _frames_until_damage(container: Any, stream: Any) -> Iterator[Any]:
    """The decoded frames in order; a decoding error after the first frame ends the video there
    (the damaged tail of a file), one before it is raised."""
    av = require_av()
    count = 0
    try:
        for frame in container.decode(stream):
            yield frame
            count += 1
    except (av.error.FFmpegError, ValueError):
        if count == 0:
            raise


def _decode(path: str, size: int, plan: Plan) -> tuple[dict[int, np.ndarray], int, int]:
    """Open the file once and decode what ``plan`` asks; returns the kept frames, how many frames
    were decoded and the stated frame count. A decoding error after some frames ends the video
    there (the damaged tail of a file); one before the first frame raises ``UnreadableVideo``."""
    kept: dict[int, np.ndarray] = {}
    count = 0
    with _video_stream(path) as (container, stream):
        stated = max(int(stream.frames or 0), 0)
        keep, last = plan(stated)
        # closed before the container: a clip ends early, mid-decode
        with contextlib.closing(_frames_until_damage(container, stream)) as frames:
            for frame in frames:
                if keep is None or count in keep:
                    kept[count] = _square(frame, size)
                count += 1
                if last is not None and count > last:
                    break
    if count == 0:
        raise UnreadableVideo(f"{path} holds no decodable video frame")
    return kept, count, stated


def _packet_count(path: str) -> int:
    """Frames of a video whose container states no count (Matroska, WebM): its video packets,
    counted by demuxing without decoding (cheap); 0 when the file does not open."""
    av = require_av()
    try:
        with av.open(path, mode="r") as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, OSError, ValueError, IndexError):
        return 0


def read_video_frames(path: str, pick: Pick, size: int) -> np.ndarray:
    """Frames of a video file as uint8 [k, size, size, 3]; ``pick(frames) -> indices`` chooses them
    once the frame count is known (the container's, or its packets counted), and decoding stops at
    the last frame needed. Only the chosen frames are ever kept, so a long video costs time, never
    memory. When the file holds fewer frames than it said (truncated), the frames are picked again
    among those that decode."""
    chosen: list[int] = []

    def plan(stated: int) -> tuple[set[int] | None, int | None]:
        frames = stated if stated > 0 else _packet_count(path)
        if frames <= 0:
            return set(), None  # count by decoding (below)
        chosen.extend(pick(frames))
        return set(chosen), max(chosen)

    kept, count, _ = _decode(path, size, plan)
    if chosen and set(chosen).issubset(kept):
        return np.stack([kept[i] for i in chosen])
    wanted = list(pick(count))
    if not set(wanted).issubset(kept):  # decode again, keeping exactly those
        kept, _, _ = _decode(path, size, lambda _: (set(wanted), max(wanted)))
        if not set(wanted).issubset(kept):
            raise UnreadableVideo(f"{path} decodes differently each time it is read")
    return np.stack([kept[i] for i in wanted])


def read_frames(path: str, pick: Pick, size: int) -> np.ndarray:
    """uint8 [k, size, size, 3] from a video file or a frame folder."""
    if os.path.isdir(path):
        return read_folder_frames(path, pick, size)
    return read_video_frames(path, pick, size)


def clip_picker(clip_len: int, stride: int, positions: Sequence[float]) -> Pick:
    """``pick`` for ``len(positions)`` clips of a sample, concatenated: [k * clip_len] indices."""
    def pick(frames: int) -> list[int]:
        return [i for p in positions for i in clip_frame_indices(frames, clip_len, stride, p)]
    return pick


def probe_video(path: str) -> bool:
    """Whether a sample can be read at all: a frame folder with a decodable first frame, or a video
    file with a video stream whose first frame decodes. Checked once when a dataset is listed, so a
    broken file is counted then rather than failing mid-epoch."""
    if os.path.isdir(path):
        return probe_frame_folder(path)
    try:
        _decode(path, 8, lambda _: ({0}, 0))
        return True
    except UnreadableVideo:
        return False


def read_prediction_clip(path: str, clip_len: int, image_size: int, frame_stride: int = 1) -> torch.Tensor:
    """The centre clip of a video file or a frame folder as uint8 [3, T, S, S] (``sskt predict``).
    A video shorter than the clip is looped. Raises ``DataError`` with one sentence when the path
    cannot be read."""
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist.")
    if os.path.isdir(path) and not is_frame_folder(path):
        raise DataError(f"folder {path} holds no frame images; give a video file or a folder of frames.")
    try:
        frames = read_frames(path, clip_picker(clip_len, frame_stride, [0.5]), image_size)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure on a user's file: one sentence
        raise DataError(f"{path} could not be read as a video ({exc}).") from None
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()


# ----------------------------------------------------------------------------- listing checks

def _parallel(fn: Callable[[str], bool], items: Sequence[str]) -> list[bool]:
    """FFmpeg and PIL release the GIL while they read, so a few threads check a long listing faster."""
    if len(items) < 16:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items, chunksize=16))


def _openable(path: str) -> bool:
    """A frame folder with frames, or a video file whose container opens and has a video stream
    (the header only: decoding the first frame of every file of a large dataset would take
    minutes; a file whose frames fail later is skipped and counted during training)."""
    if os.path.isdir(path):
        return bool(frame_files(path))
    av = require_av()
    try:
        with av.open(path, mode="r") as container:
            return bool(container.streams.video)
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def readable_clip_set(paths: Sequence[str], labels: Sequence[int], size: int):
    """The samples as a ``FileClipSet`` without those that cannot be opened, and the left-out paths."""
    from .clips import FileClipSet

    if any(not os.path.isdir(p) for p in paths):
        require_av()  # one clear sentence before any file is tried
    ok = _parallel(_openable, list(paths))
    keep = [i for i, good in enumerate(ok) if good]
    clip_set = FileClipSet(tuple(paths[i] for i in keep), torch.tensor([labels[i] for i in keep], dtype=torch.int64),
                           size)
    return clip_set, [p for p, good in zip(paths, ok) if not good]


def skipped_videos_note(bad: Sequence[str]) -> tuple[str, ...]:
    return (f"skipped {len(bad)} unreadable video(s) (damaged, or no video stream), e.g. {bad[0]}",) if bad else ()


# ----------------------------------------------------------------------------- frame extraction

def frame_name(index: int) -> str:
    """File name of frame ``index`` (0-based) in a frame folder, as the usual extraction scripts write it."""
    return f"image_{index + 1:05d}.jpg"


def extract_frames(video: str, folder: str, size: int | None = None, quality: int = 90) -> int:
    """Write every frame of ``video`` as ``folder/image_00001.jpg``, ... (shorter side ``size``, or as
    stored). The frames go to a temporary folder renamed at the end, so an interrupted run leaves no
    half-written frame folder behind. Returns the number of frames; raises ``UnreadableVideo``."""
    from PIL import Image

    require_av()  # one clear sentence before a folder is made
    partial = folder.rstrip(os.sep) + ".partial"
    if os.path.isdir(partial):
        import shutil

        shutil.rmtree(partial)
    os.makedirs(partial)
    count = 0
    try:
        with _video_stream(video) as (container, stream):
            for frame in _frames_until_damage(container, stream):
                if size:
                    width, height = _scaled_size(frame.width, frame.height, size)
                    frame = frame.reformat(width=width, height=height, interpolation="AREA")
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(
                    os.path.join(partial, frame_name(count)), quality=quality)
                count += 1
        if count == 0:
            raise UnreadableVideo(f"{video} holds no decodable video frame")
    except UnreadableVideo:
        _remove_tree(partial)
        raise
    if os.path.isdir(folder):  # an earlier, incomplete or older extraction: replaced whole
        _remove_tree(folder)
    os.replace(partial, folder)
    return count


def _remove_tree(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
