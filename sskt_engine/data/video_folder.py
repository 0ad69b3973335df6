"""Your own videos (``videofolder``): one subfolder per class holding video files, frame folders
(a folder of frame images per video), or both.

As for image folders: ``root/train/<class>/...`` with ``root/val/<class>/...`` (or ``test/``), or
``root/<class>/...`` alone, whose validation clips then come from ``data.val_split``. Inside a
class folder every video file is a sample, and every folder that directly holds image files is
one sample (its frames in name order); other folders are searched further. Videos that cannot
be opened are left out and counted in the run's notes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..config import DataConfig
from ..errors import DataError
from .clips import FileClipSet
from .dataset_files import require_root
from .frame_folders import frame_files
from .image_folder import VAL_FOLDER_NAMES, _class_key, class_folders, list_by_class
from .official_splits import DEFAULT_CLIP_LEN, DEFAULT_FRAME_SIZE, KINETICS_MEAN, KINETICS_STD
from .sets import DatasetSplits
from .video_decoding import VIDEO_EXTENSIONS, readable_clip_set, skipped_videos_note


def _classes(folder: Path) -> tuple[str, ...]:
    return class_folders(folder, "a video folder dataset needs one subfolder per class with the videos (or frame "
                                 "folders) inside")


def samples_under(folder: Path) -> list[str]:
    """Video files and frame folders below ``folder``, in name order; a folder of frames is not
    searched further (its images are one video's frames). Link loops are visited once."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [str(folder)]
    while stack:
        directory = stack.pop()
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError:
            raise DataError(f"folder {directory} cannot be read (permission denied).") from None
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if frame_files(entry.path):
                    found.append(entry.path)
                else:
                    subfolders.append(entry.path)
            elif entry.name.lower().endswith(VIDEO_EXTENSIONS) and entry.is_file():
                found.append(entry.path)
        stack.extend(reversed(subfolders))
    return found


def _listing(folder: Path, class_names: tuple[str, ...]) -> tuple[list[str], list[int]]:
    return list_by_class(folder, class_names, samples_under,
                         f"no videos ({', '.join(VIDEO_EXTENSIONS[:3])}, ...) and no frame folders")


def load_video_folder(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``videofolder``."""
    root = require_root(cfg, "videofolder")
    if not root.is_dir():
        raise DataError(f"data.root folder {root} does not exist." if not root.exists() else
                        f"data.root {root} is a file; a video folder dataset needs a folder.")
    train_dir = root / "train" if (root / "train").is_dir() else root
    val_dir = next((root / n for n in VAL_FOLDER_NAMES if (root / n).is_dir()), None) if train_dir != root else None
    classes = _classes(train_dir)
    if val_dir is not None:
        extra = sorted({_class_key(n) for n in _classes(val_dir)} - {_class_key(n) for n in classes})
        if extra:
            raise DataError(f"{val_dir} has class folder '{extra[0]}' that {train_dir} does not have; both must use "
                            "the same class names.")
    size = cfg.image_size or DEFAULT_FRAME_SIZE
    train, bad = readable_clip_set(*_listing(train_dir, classes), size)
    if len(train) == 0:
        raise DataError(f"none of the videos under {train_dir} can be read.")
    if val_dir is not None:
        val, bad_val = readable_clip_set(*_listing(val_dir, classes), size)
        bad = bad + bad_val
    else:
        val = FileClipSet((), torch.empty(0, dtype=torch.int64), size)
    return DatasetSplits(train, val, classes, KINETICS_MEAN, KINETICS_STD, size,  # type: ignore[arg-type]
                         notes=skipped_videos_note(bad), clip_len=cfg.clip_len or DEFAULT_CLIP_LEN)
