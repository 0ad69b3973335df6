"""What the UCF101 and HMDB51 readers share: finding the split files and the videos under
``data.root`` in the layouts the archives unpack to, and turning split entries into clip sets.

A listed video may be there as the video file itself or as a frame folder of the same name
without the extension (what extraction scripts and ``sskt frames`` write); both are read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..config import DataConfig
from ..errors import DataError
from .clips import FileClipSet
from .frame_folders import frame_files
from .sets import DatasetSplits
from .video_decoding import readable_clip_set, skipped_videos_note

DEFAULT_FRAME_SIZE = 112  # the 3D ResNets' input side
DEFAULT_CLIP_LEN = 16
# Kinetics-400 statistics, as torchvision's video models were trained with
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def first_folder_with(root: Path, subfolders: Sequence[str], pattern: str) -> Path | None:
    """The first of ``root/<sub>`` (in order; '' is root) holding a file matching ``pattern``."""
    for sub in subfolders:
        folder = root / sub if sub else root
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    return None


def sample_path(base: Path, relative: str) -> str | None:
    """``base/relative`` as a video file, or as a frame folder named like it without its extension."""
    video = base / relative
    if video.is_file():
        return str(video)
    folder = video.with_suffix("") if video.suffix else video
    if folder.is_dir() and frame_files(str(folder)):
        return str(folder)
    return None


def probe_entries(entries: Sequence[tuple[str, int]], count: int = 12) -> list[str]:
    """A few entries spread over a listing, to find where the videos are (a user may lack some)."""
    step = max(1, len(entries) // count)
    return [relative for relative, _ in entries[::step][:count]]


def find_video_base(root: Path, subfolders: Sequence[str], probes: Sequence[str], dataset: str) -> Path:
    """The folder the split entries are relative to: the first candidate in which one of the
    first listed entries is found."""
    for sub in subfolders:
        base = root / sub if sub else root
        if base.is_dir() and any(sample_path(base, rel) for rel in probes):
            return base
    where = ", ".join(str(root / s) if s else str(root) for s in subfolders)
    raise DataError(f"{dataset}: none of the listed videos (e.g. {probes[0]}) was found as a video file or a "
                    f"frame folder under {where}.")


def clip_splits_from_lists(cfg: DataConfig, dataset: str, base: Path, class_names: Sequence[str],
                           train: Sequence[tuple[str, int]], val: Sequence[tuple[str, int]],
                           list_names: str) -> DatasetSplits:
    """Resolve the (relative path, class) entries under ``base`` and check they open; listed videos
    that are not there, and those that cannot be read, are left out and said in the notes."""
    size = cfg.image_size or DEFAULT_FRAME_SIZE
    notes: list[str] = []
    parts: dict[str, FileClipSet] = {}
    for name, entries in (("train", train), ("val", val)):
        paths, labels, missing = [], [], []
        for relative, label in entries:
            found = sample_path(base, relative)
            if found is None:
                missing.append(relative)
            else:
                paths.append(found)
                labels.append(label)
        if not paths:
            raise DataError(f"{dataset}: none of the {len(entries)} {name} videos listed in {list_names} is under "
                            f"{base}.")
        if missing:
            notes.append(f"{len(missing)} {name} video(s) listed in {list_names} are not under {base}, e.g. "
                         f"{missing[0]}")
        clip_set, bad = readable_clip_set(paths, labels, size)
        notes.extend(skipped_videos_note(bad))
        if len(clip_set) == 0:
            raise DataError(f"{dataset}: none of the {name} videos under {base} can be read.")
        parts[name] = clip_set
    if size != DEFAULT_FRAME_SIZE and not cfg.image_size:
        notes.append(f"frames are read at {size} px")
    return DatasetSplits(parts["train"], parts["val"], tuple(class_names), KINETICS_MEAN, KINETICS_STD,  # type: ignore[arg-type]
                         size, notes=tuple(notes), clip_len=cfg.clip_len or DEFAULT_CLIP_LEN)


def read_lines(path: Path) -> list[str]:
    """Non-empty lines of a split file; a file that is not text is the user's to fix."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"split file {path} is not a text file.") from None
    except OSError as exc:
        raise DataError(f"split file {path} cannot be read ({exc.strerror or exc}).") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def normalized_relative(entry: str) -> str:
    """Split-file paths use '/' (and sometimes '\\'); make them relative paths of this system."""
    return os.path.join(*[part for part in entry.replace("\\", "/").split("/") if part])
