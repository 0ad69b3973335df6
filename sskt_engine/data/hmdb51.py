"""HMDB51 in its official layout: 51 action classes, 6,766 videos, three train/test splits.

``data.root`` holds (as the official archives unpack):

* the split files ``<class>_test_split<N>.txt`` (in root or in ``testTrainMulti_7030_splits/``),
  one line per video of the class: ``<file name> <1|2|0>``, 1 for training, 2 for testing,
  0 for neither;
* the videos under class folders (``hmdb51_org/brush_hair/<file name>.avi``, or the class folders
  directly in root), or the same as frame folders named like the file without its extension.

``data.split`` (1-3) picks the split. The classes are the split files' class names, sorted.
"""

from __future__ import annotations

import os
import re

from ..config import DataConfig
from ..errors import DataError
from .dataset_files import require_root
from .official_splits import clip_splits_from_lists, find_video_base, first_folder_with, probe_entries, read_lines
from .sets import DatasetSplits

SPLIT_FOLDERS = ("", "testTrainMulti_7030_splits", "splits", "annotations")
VIDEO_FOLDERS = ("hmdb51_org", "hmdb51", "HMDB51", "videos", "frames", "jpg", "")
TRAIN, TEST, UNUSED = "1", "2", "0"


def load_hmdb51(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``hmdb51``."""
    root = require_root(cfg, "hmdb51")
    if not root.is_dir():
        raise DataError(f"data.root folder {root} does not exist.")
    split = cfg.split
    suffix = f"_test_split{split}.txt"
    lists = first_folder_with(root, SPLIT_FOLDERS, f"*{suffix}")
    if lists is None:
        raise DataError(f"hmdb51: no *{suffix} split files were found in {root} or its testTrainMulti_7030_splits "
                        "folder (from the official test_train_splits archive).")
    files = sorted(p for p in lists.iterdir() if p.name.endswith(suffix) and p.is_file())
    classes = tuple(p.name[: -len(suffix)] for p in files)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for label, (name, path) in enumerate(zip(classes, files)):
        for line in read_lines(path):
            match = re.fullmatch(r"(.+?)\s+([012])", line)
            if match is None:
                raise DataError(f"{path}: line '{line}' is not '<video file> <0, 1 or 2>'.")
            video, use = match.groups()
            if use != UNUSED:
                (train if use == TRAIN else test).append((os.path.join(name, video), label))
    if not train or not test:
        raise DataError(f"hmdb51: the split {split} files in {lists} mark no {'training' if not train else 'test'} "
                        "videos (1 = train, 2 = test).")
    base = find_video_base(root, VIDEO_FOLDERS, probe_entries(train + test), "hmdb51")
    return clip_splits_from_lists(cfg, "hmdb51", base, classes, train, test, f"the *{suffix} files")
