"""UCF101 in its official layout: 101 action classes, 13,320 videos, three train/test splits.

``data.root`` holds (as the two official archives unpack, either side by side or one inside
the other):

* the split files ``classInd.txt``, ``trainlist0N.txt`` and ``testlist0N.txt`` (in root or in
  ``ucfTrainTestlist/``), entries like ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``;
* the videos under class folders (``UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``, or the
  class folders directly in root), or the same as frame folders
  (``.../ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01/image_00001.jpg``), e.g. written by ``sskt frames``.

``data.split`` (1-3) picks the split. A clip's class comes from its class folder, matched to
``classInd.txt`` without regard to case (the archive spells ``HandstandPushups`` both ways).
"""

from __future__ import annotations

from ..config import DataConfig
from ..errors import DataError
from .dataset_files import require_root
from .official_splits import (clip_splits_from_lists, find_video_base, first_folder_with, normalized_relative,
                              probe_entries, read_lines)
from .sets import DatasetSplits

SPLIT_FOLDERS = ("", "ucfTrainTestlist", "UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist", "splits",
                 "annotations")
VIDEO_FOLDERS = ("UCF-101", "UCF101", "videos", "frames", "jpg", "")


def read_class_index(lines: list[str], where: str) -> tuple[str, ...]:
    """``classInd.txt``: '1 ApplyEyeMakeup' per line, numbered from 1 in order."""
    names: dict[int, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{where}: line '{line}' is not 'number class-name'.")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DataError(f"{where}: the class numbers are not 1 to {len(names)}.")
    return tuple(names[i] for i in range(1, len(names) + 1))


def _entries(lines: list[str], lookup: dict[str, int], where: str) -> list[tuple[str, int]]:
    """(relative path, class index) of every entry; the class is the entry's folder."""
    out = []
    for line in lines:
        relative = normalized_relative(line.split()[0])
        folder = line.split()[0].replace("\\", "/").split("/")[0]
        label = lookup.get(folder.lower())
        if label is None:
            raise DataError(f"{where}: entry '{line}' is in folder '{folder}', which classInd.txt does not list.")
        out.append((relative, label))
    return out


def load_ucf101(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``ucf101``."""
    root = require_root(cfg, "ucf101")
    if not root.is_dir():
        raise DataError(f"data.root folder {root} does not exist.")
    split = cfg.split
    lists = first_folder_with(root, SPLIT_FOLDERS, f"trainlist0{split}.txt")
    if lists is None or not (lists / "classInd.txt").is_file():
        raise DataError(f"ucf101: classInd.txt and trainlist0{split}.txt were not found in {root} or its "
                        "ucfTrainTestlist folder (from the official UCF101TrainTestSplits archive).")
    classes = read_class_index(read_lines(lists / "classInd.txt"), str(lists / "classInd.txt"))
    lookup = {name.lower(): i for i, name in enumerate(classes)}
    train_file, test_file = lists / f"trainlist0{split}.txt", lists / f"testlist0{split}.txt"
    if not test_file.is_file():
        raise DataError(f"ucf101: {test_file} is missing.")
    train = _entries(read_lines(train_file), lookup, str(train_file))
    test = _entries(read_lines(test_file), lookup, str(test_file))
    if not train or not test:
        raise DataError(f"ucf101: {train_file if not train else test_file} lists no videos.")
    base = find_video_base(root, VIDEO_FOLDERS, probe_entries(train + test), "ucf101")
    return clip_splits_from_lists(cfg, "ucf101", base, classes, train, test,
                                  f"{train_file.name}/{test_file.name}")
