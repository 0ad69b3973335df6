"""Frame folders: one folder of image files per video, as the usual extraction scripts write them
(``v_ApplyEyeMakeup_g01_c01/image_00001.jpg``, ...), and as ``sskt frames`` writes them.

Read directly with PIL, no video decoder: only the frames a clip takes are opened, while a video
is decoded from its start up to the clip's last frame. Which is faster depends on the videos'
length and codec and on the JPEG size (``benchmarks/video_decode.py`` measures both on a machine);
long videos favour frame folders.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

from .image_folder import IMAGE_EXTENSIONS, load_rgb

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders ``frame2.jpg`` before ``frame10.jpg`` (zero-padded names sort the same
    either way)."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(name))


def frame_files(folder: str) -> list[str]:
    """The image files of a frame folder in frame order (hidden files left out)."""
    try:
        names = [e.name for e in os.scandir(folder)
                 if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file()]
    except OSError:
        return []
    return [os.path.join(folder, name) for name in sorted(names, key=natural_key)]


def is_frame_folder(path: str) -> bool:
    """A folder directly holding at least one image file."""
    return os.path.isdir(path) and bool(frame_files(path))


def read_folder_frames(folder: str, pick, size: int) -> np.ndarray:
    """Frames of a frame folder as uint8 [k, size, size, 3]. ``pick(frames) -> indices`` chooses
    which, once the folder's frame count is known. Raises ``ValueError`` for a folder without
    frames and whatever PIL raises on an unreadable frame."""
    files = frame_files(folder)
    if not files:
        raise ValueError(f"frame folder {folder} holds no image files")
    indices: Sequence[int] = pick(len(files))
    decoded: dict[int, np.ndarray] = {}
    for index in set(indices):
        decoded[index] = np.asarray(load_rgb(files[index], size), dtype=np.uint8)
    return np.stack([decoded[i] for i in indices])


def probe_frame_folder(folder: str) -> bool:
    """Whether the folder has frames and its first one decodes (checked when a dataset is listed)."""
    files = frame_files(folder)
    if not files:
        return False
    try:
        load_rgb(files[0], 8)
        return True
    except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
        return False
