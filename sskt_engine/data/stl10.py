"""STL-10 read from its official binary files (``stl10_binary/``).

Only the labelled splits are read (5,000 train, 8,000 test images of 96x96); the
100,000 unlabelled images are not needed for supervised or transfer training.
The binary stores each channel column-major, hence the final transpose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from .sets import DatasetSplits, ImageSet
from .dataset_files import download_archive, require_root

STL10_MEAN = (0.4467, 0.4398, 0.4066)
STL10_STD = (0.2603, 0.2566, 0.2713)
STL10_FOLDER = "stl10_binary"
STL10_SIZE = 96
STL10_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt")
_IMAGE_BYTES = 3 * STL10_SIZE * STL10_SIZE


def _read_file(path: Path) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except PermissionError:
        raise DataError(f"file {path} cannot be read (permission denied).") from None
    except OSError as exc:
        raise DataError(f"file {path} cannot be read ({exc.strerror or exc}).") from None


def _read_split(folder: Path, split: str, num_classes: int) -> ImageSet:
    """``{split}_X.bin`` and ``{split}_y.bin`` -> uint8 [n, 3, 96, 96] and labels 0..C-1."""
    x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    raw = _read_file(x_path)
    if raw.size == 0 or raw.size % _IMAGE_BYTES:
        raise DataError(f"{x_path} is not an STL-10 image file (its size is not a multiple of 3x96x96 bytes).")
    # Each image is stored channel by channel, each channel column by column.
    images = raw.reshape(-1, 3, STL10_SIZE, STL10_SIZE).transpose(0, 1, 3, 2)
    labels = _read_file(y_path).astype(np.int64)
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{y_path} holds {labels.shape[0]} labels but {x_path} holds {images.shape[0]} images.")
    if labels.min() < 1 or labels.max() > num_classes:
        raise DataError(f"{y_path} has labels outside 1..{num_classes}.")
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels - 1))


def _read_class_names(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"file {path} cannot be read ({exc.strerror or exc}).") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise DataError(f"{path} lists no class names.")
    return names


def read_stl10(folder: Path) -> DatasetSplits:
    """Read an extracted ``stl10_binary`` folder: train = labelled train split, val = test split."""
    for name in STL10_FILES:
        if not (folder / name).is_file():
            raise DataError(f"STL-10 file '{name}' is missing under {folder}; set data.download: true to fetch it, "
                            "or point data.root at the folder holding it.")
    names = _read_class_names(folder / "class_names.txt")
    train = _read_split(folder, "train", len(names))
    val = _read_split(folder, "test", len(names))
    return DatasetSplits(train, val, names, STL10_MEAN, STL10_STD, STL10_SIZE)


def load_stl10(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``stl10``."""
    root = require_root(cfg, "stl10")
    folder = root / STL10_FOLDER
    if not folder.is_dir() and (root / "train_X.bin").is_file():
        folder = root  # data.root names the extracted folder itself
    if cfg.download and not all((folder / name).is_file() for name in STL10_FILES):
        from torchvision.datasets import STL10  # only for the official URL and checksum

        download_archive(STL10.url, root, STL10.filename, STL10.tgz_md5, "STL-10")
        folder = root / STL10_FOLDER
    return read_stl10(folder)
