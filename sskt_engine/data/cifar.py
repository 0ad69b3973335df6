"""CIFAR-10 and CIFAR-100 read from their official python-pickle files.

The files are pickles, and a pickle can run arbitrary code when loaded. They are
therefore read with ``RestrictedUnpickler``, which resolves only the few numpy
names an array needs; anything else in the file is refused with a ``DataError``.
torchvision's own CIFAR classes are not used for reading: they unpickle without
restriction and reject files whose md5 differs from the official archive.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from .sets import DatasetSplits, ImageSet
from .dataset_files import download_archive, require_root

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))


def _numpy_reconstruct() -> Any:
    try:  # numpy >= 2 moved the implementation; the old path only warns and forwards
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def _numpy_frombuffer() -> Any:
    try:
        from numpy._core.numeric import _frombuffer
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    return _frombuffer


# (module, name) -> a factory of the object; factories so numpy internals are looked
# up only when a file actually names them. _frombuffer is what numpy writes for arrays
# pickled with protocol 5 (a re-saved file); like _reconstruct it only builds an array.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only; every other global is refused, so a
    crafted file cannot import a module or call a function while being read."""

    def __init__(self, file: io.BufferedIOBase, path: Path):
        # latin1 turns the Python 2 byte strings of the official files into str
        # without loss; numpy accepts latin1 str as an array's raw buffer.
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise DataError(f"{self.path} refers to {module}.{name}, which a dataset file never needs; "
                            "it was not loaded because it could run code.")
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.path} is not a plain data file (it uses persistent references); it was not loaded.")


def safe_unpickle(path: Path) -> Any:
    """Read one pickle file with ``RestrictedUnpickler``; any malformed content becomes a
    ``DataError`` naming the file."""
    try:
        with open(path, "rb") as handle:
            return RestrictedUnpickler(handle, path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"file {path} does not exist.") from None
    except PermissionError:
        raise DataError(f"file {path} cannot be read (permission denied).") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as exc:
        raise DataError(f"{path} is not a valid CIFAR python file ({type(exc).__name__}).") from None


def _field(record: Any, key: str, path: Path) -> Any:
    """Dict keys are str in files read with latin1 but bytes in files re-saved from
    Python 3 with bytes keys; accept either."""
    if not isinstance(record, dict):
        raise DataError(f"{path} is not a CIFAR python file (it holds {type(record).__name__}, not a dict).")
    for candidate in (key, key.encode("ascii")):
        if candidate in record:
            return record[candidate]
    raise DataError(f"{path} is not a CIFAR python file (it has no '{key}' entry).")


def _names(record: Any, key: str, path: Path) -> tuple[str, ...]:
    raw = _field(record, key, path)
    if not isinstance(raw, (list, tuple)) or not raw:
        raise DataError(f"{path}: '{key}' must be a non-empty list of class names.")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in raw)


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 [n, 3, 32, 32], int64 [n]), with its shape checked."""
    record = safe_unpickle(path)
    data = _field(record, "data", path)
    labels = _field(record, label_key, path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be a uint8 array of shape [n, 3072], not {shape}.")
    try:
        labels_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: '{label_key}' must be a list of whole numbers.") from None
    if labels_arr.shape[0] != data.shape[0]:
        raise DataError(f"{path} holds {data.shape[0]} images but {labels_arr.shape[0]} labels.")
    if labels_arr.size and (labels_arr.min() < 0 or labels_arr.max() >= num_classes):
        raise DataError(f"{path} has labels outside 0..{num_classes - 1}.")
    return data.reshape(-1, 3, 32, 32), labels_arr


def _image_set(parts: list[tuple[np.ndarray, np.ndarray]]) -> ImageSet:
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)))


def _locate(root: Path, folder: str, first_file: str) -> Path:
    """The batches folder: ``root/folder`` as the archive extracts it, or ``root`` itself
    when the user pointed at the extracted folder directly."""
    if not (root / folder).is_dir() and (root / first_file).is_file():
        return root
    return root / folder


def _check_files(folder: Path, names: tuple[str, ...], dataset: str) -> None:
    for name in names:
        if not (folder / name).is_file():
            raise DataError(f"{dataset} file '{name}' is missing under {folder}; set data.download: true to "
                            "fetch it, or point data.root at the folder holding it.")


def read_cifar10(folder: Path) -> DatasetSplits:
    """Read an extracted ``cifar-10-batches-py`` folder."""
    _check_files(folder, CIFAR10_TRAIN_FILES + ("test_batch", "batches.meta"), "CIFAR-10")
    names = _names(safe_unpickle(folder / "batches.meta"), "label_names", folder / "batches.meta")
    train = _image_set([_read_batch(folder / f, "labels", len(names)) for f in CIFAR10_TRAIN_FILES])
    val = _image_set([_read_batch(folder / "test_batch", "labels", len(names))])
    return DatasetSplits(train, val, names, CIFAR10_MEAN, CIFAR10_STD, 32)


def read_cifar100(folder: Path) -> DatasetSplits:
    """Read an extracted ``cifar-100-python`` folder (fine labels)."""
    _check_files(folder, ("train", "test", "meta"), "CIFAR-100")
    names = _names(safe_unpickle(folder / "meta"), "fine_label_names", folder / "meta")
    train = _image_set([_read_batch(folder / "train", "fine_labels", len(names))])
    val = _image_set([_read_batch(folder / "test", "fine_labels", len(names))])
    return DatasetSplits(train, val, names, CIFAR100_MEAN, CIFAR100_STD, 32)


def _load(cfg: DataConfig, key: str) -> DatasetSplits:
    root = require_root(cfg, key)
    if key == "cifar10":
        folder_name, first, reader, required = (CIFAR10_FOLDER, "data_batch_1", read_cifar10,
                                                CIFAR10_TRAIN_FILES + ("test_batch", "batches.meta"))
    else:
        folder_name, first, reader, required = CIFAR100_FOLDER, "train", read_cifar100, ("train", "test", "meta")
    folder = _locate(root, folder_name, first)
    if cfg.download and not all((folder / name).is_file() for name in required):
        from torchvision.datasets import CIFAR10, CIFAR100  # only for the official URL and checksum

        cls = CIFAR10 if key == "cifar10" else CIFAR100
        download_archive(cls.url, root, cls.filename, cls.tgz_md5, "CIFAR-10" if key == "cifar10" else "CIFAR-100")
        folder = root / folder_name
    return reader(folder)


def load_cifar10(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``cifar10``: 50,000 train and 10,000 test images, 10 classes."""
    return _load(cfg, "cifar10")


def load_cifar100(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``cifar100``: 50,000 train and 10,000 test images, 100 fine classes."""
    return _load(cfg, "cifar100")
