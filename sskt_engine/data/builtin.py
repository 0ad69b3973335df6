"""The datasets shipped with the engine, registered in ``DATASETS``.

Each registered loader is a thin wrapper that imports its reader module only when
called, so importing ``sskt_engine.data`` stays cheap (no torchvision import) and the
GUI can list datasets instantly. What the readers share lives in ``dataset_files.py``.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..registry import DATASETS, DatasetInfo
from .sets import DatasetSplits, ImageSet


# ----------------------------------------------------------------------------- shared helpers

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


def _demo_multilabel(cfg: DataConfig) -> DatasetSplits:
    from .demo_scenes import scene_splits

    return resize_splits(scene_splits(), cfg.image_size)


def _voc2007(cfg: DataConfig) -> DatasetSplits:
    from .voc import load_voc

    return load_voc(cfg, "2007")


def _voc2012(cfg: DataConfig) -> DatasetSplits:
    from .voc import load_voc

    return load_voc(cfg, "2012")


def _multilabel_csv(cfg: DataConfig) -> DatasetSplits:
    from .multi_label_csv import load_multi_label_csv

    return load_multi_label_csv(cfg)


def _demo_video(cfg: DataConfig) -> DatasetSplits:
    from .demo_clips import DEFAULT_CLIP_LEN, clip_splits

    return dataclasses.replace(clip_splits(), clip_len=cfg.clip_len or DEFAULT_CLIP_LEN)


def _ucf101(cfg: DataConfig) -> DatasetSplits:
    from .ucf101 import load_ucf101

    return load_ucf101(cfg)


def _hmdb51(cfg: DataConfig) -> DatasetSplits:
    from .hmdb51 import load_hmdb51

    return load_hmdb51(cfg)


def _videofolder(cfg: DataConfig) -> DatasetSplits:
    from .video_folder import load_video_folder

    return load_video_folder(cfg)


DATASETS.add(DatasetInfo(
    name="demo", load=_demo, needs_root=False, image_size=32, num_classes=6,
    description="Built-in offline demo (target task): 6 kinds of road-sign-like glyph groups on a cluttered "
                "background, 32x32, generated without any download."))
DATASETS.add(DatasetInfo(
    name="demo-shapes", load=_demo_shapes, needs_root=False, image_size=32, num_classes=12,
    description="Built-in offline demo (source task): 12 plain glyph shapes, 32x32, generated without any "
                "download."))
DATASETS.add(DatasetInfo(
    name="demo-multilabel", load=_demo_multilabel, needs_root=False, image_size=32, num_classes=6,
    task="multi_label",
    description="Built-in offline multi-label demo: scenes of one to three glyphs, labelled with every sign "
                "group present (the demo's 6 signs), 32x32, scored by mAP; generated without any download."))
DATASETS.add(DatasetInfo(
    name="cifar10", load=_cifar10, image_size=32, num_classes=10,
    description="CIFAR-10: 50,000 training and 10,000 test images, 32x32, 10 classes (python version files)."))
DATASETS.add(DatasetInfo(
    name="cifar100", load=_cifar100, image_size=32, num_classes=100,
    description="CIFAR-100: 50,000 training and 10,000 test images, 32x32, 100 classes (python version files)."))
DATASETS.add(DatasetInfo(
    name="stl10", load=_stl10, image_size=96, num_classes=10,
    description="STL-10: 5,000 labelled training and 8,000 test images, 96x96, 10 classes (binary files)."))
DATASETS.add(DatasetInfo(
    name="voc2007", load=_voc2007, num_classes=20, task="multi_label",
    description="Pascal VOC 2007 classification (multi-label, 20 classes, mAP) in the VOCdevkit layout: trains on "
                "trainval, scored on test; difficult objects ignored."))
DATASETS.add(DatasetInfo(
    name="voc2012", load=_voc2012, num_classes=20, task="multi_label",
    description="Pascal VOC 2012 classification (multi-label, 20 classes, mAP) in the VOCdevkit layout: trains on "
                "train, scored on val (its test annotations are not public); difficult objects ignored."))
DATASETS.add(DatasetInfo(
    name="imagefolder", load=_imagefolder,
    description="Your own images: one subfolder per class, optionally inside train/ and val/."))
DATASETS.add(DatasetInfo(
    name="multilabel-csv", load=_multilabel_csv, task="multi_label", root_file_filter="CSV files (*.csv)",
    description="Your own multi-label images: a CSV of 'path,labels' rows (labels separated by ';', paths relative "
                "to the CSV), or a folder with train.csv and val.csv; classes from classes.txt or the labels used."))
DATASETS.add(DatasetInfo(
    name="demo-video", load=_demo_video, needs_root=False, video=True, image_size=32, num_classes=12,
    description="Built-in offline video demo: clips of 10 frames, 32x32, of a glyph that slides, turns or appears; "
                "12 classes of (sign, motion), generated without any download."))
DATASETS.add(DatasetInfo(
    name="ucf101", load=_ucf101, num_classes=101, video=True,
    description="UCF101 action videos (101 classes) in the official layout: classInd.txt, trainlist0N.txt and "
                "testlist0N.txt with the videos (or frame folders) under class folders; data.split picks 1-3."))
DATASETS.add(DatasetInfo(
    name="hmdb51", load=_hmdb51, num_classes=51, video=True,
    description="HMDB51 action videos (51 classes) in the official layout: the <class>_test_split<N>.txt files "
                "with the videos (or frame folders) under class folders; data.split picks 1-3."))
DATASETS.add(DatasetInfo(
    name="videofolder", load=_videofolder, video=True,
    description="Your own videos: one subfolder per class of video files or frame folders, optionally inside "
                "train/ and val/."))
