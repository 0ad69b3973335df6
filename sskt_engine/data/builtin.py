"""The datasets shipped with the engine, registered in ``DATASETS``.

Each registered loader is a thin wrapper that imports its reader module only when
called, so importing ``sskt_engine.data`` stays cheap (no torchvision import) and the
GUI can list datasets instantly. The helpers the readers share live here too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..errors import DataError
from . import DATASETS, DatasetSplits, ImageSet


# ----------------------------------------------------------------------------- shared helpers

def require_root(cfg: DataConfig, key: str) -> Path:
    """The dataset folder named by ``data.root``; an empty setting is the user's to fix."""
    if not cfg.root.strip():
        raise DataError(f"dataset {key} needs data.root: the folder holding its files.")
    return Path(cfg.root).expanduser()


def download_archive(url: str, root: Path, filename: str, md5: str, name: str) -> None:
    """Fetch and extract an official archive with torchvision's checked downloader.

    Only the download itself is torchvision's: its dataset classes read the pickles
    unrestricted, so reading stays with our readers.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(url, str(root), filename=filename, md5=md5)
    except (OSError, RuntimeError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DataError(f"downloading {name} from {url} into {root} failed ({reason}).") from None


def _resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of a uint8 [N, 3, H, W] tensor, in chunks so the float
    copy stays small."""
    out = torch.empty((images.shape[0], 3, size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], 1024):
        chunk = images[start:start + 1024].float()
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + 1024] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def resize_splits(splits: DatasetSplits, size: int | None) -> DatasetSplits:
    """Apply ``data.image_size`` to a fixed-size dataset (CIFAR, STL-10, the demo) held in memory."""
    if not size or size == splits.image_size:
        return splits
    parts = {}
    for name in ("train", "val"):
        subset = getattr(splits, name)
        if not isinstance(subset, ImageSet):
            return splits
        parts[name] = ImageSet(_resize_images(subset.images, size), subset.labels)
    note = f"images resized from {splits.image_size} to {size} pixels (data.image_size)"
    return dataclasses.replace(splits, **parts, image_size=size, notes=splits.notes + (note,))


# ----------------------------------------------------------------------------- loaders

def _cifar10(cfg: DataConfig) -> DatasetSplits:
    from .cifar import load_cifar10

    return resize_splits(load_cifar10(cfg), cfg.image_size)


def _cifar100(cfg: DataConfig) -> DatasetSplits:
    from .cifar import load_cifar100

    return resize_splits(load_cifar100(cfg), cfg.image_size)


def _stl10(cfg: DataConfig) -> DatasetSplits:
    from .stl10 import load_stl10

    return resize_splits(load_stl10(cfg), cfg.image_size)


def _imagefolder(cfg: DataConfig) -> DatasetSplits:
    from .image_folder import load_image_folder

    return load_image_folder(cfg)


def _demo(cfg: DataConfig) -> DatasetSplits:
    from .demo_world import demo_splits

    return resize_splits(demo_splits("signs"), cfg.image_size)


def _demo_shapes(cfg: DataConfig) -> DatasetSplits:
    from .demo_world import demo_splits

    return resize_splits(demo_splits("shapes"), cfg.image_size)


DATASETS.add("demo", _demo, description="Built-in offline demo (target task): 6 kinds of road-sign-like "
             "glyph groups on a cluttered background, 32x32, generated without any download.", needs_root=False,
             image_size=32, classes=6, multi_label=False)
DATASETS.add("demo-shapes", _demo_shapes, description="Built-in offline demo (source task): 12 plain glyph "
             "shapes, 32x32, generated without any download.", needs_root=False, image_size=32, classes=12,
             multi_label=False)
DATASETS.add("cifar10", _cifar10, description="CIFAR-10: 50,000 training and 10,000 test images, 32x32, "
             "10 classes (python version files).", needs_root=True, image_size=32, classes=10, multi_label=False)
DATASETS.add("cifar100", _cifar100, description="CIFAR-100: 50,000 training and 10,000 test images, 32x32, "
             "100 classes (python version files).", needs_root=True, image_size=32, classes=100, multi_label=False)
DATASETS.add("stl10", _stl10, description="STL-10: 5,000 labelled training and 8,000 test images, 96x96, "
             "10 classes (binary files).", needs_root=True, image_size=96, classes=10, multi_label=False)
DATASETS.add("imagefolder", _imagefolder, description="Your own images: one subfolder per class, optionally "
             "inside train/ and val/.", needs_root=True, image_size=None, classes=None, multi_label=False)
