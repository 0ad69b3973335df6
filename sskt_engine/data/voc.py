"""Pascal VOC classification (multi-label) in the standard VOCdevkit layout.

``data.root`` is the folder holding ``VOCdevkit/`` (or ``VOCdevkit`` itself, or the ``VOC2007``
folder): ``VOC2007/JPEGImages/*.jpg``, ``Annotations/*.xml``, ``ImageSets/Main/{train,val,
trainval,test}.txt``. The standard protocol: VOC2007 trains on ``trainval`` and is scored on
``test``; VOC2012's test annotations are not public, so it trains on ``train`` and is scored on
``val``. The targets are the 20 classes: 1 when the image has an object of the class that is
not marked ``difficult``, -1 (ignored in loss and scoring, as the VOC devkit scores it) when its
only objects of the class are difficult, 0 otherwise. Annotations are parsed by ``safe_xml``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..average_precision import IGNORED
from ..config import DataConfig
from ..errors import DataError
from .dataset_files import require_root
from .image_folder import IMAGENET_MEAN, IMAGENET_STD
from .labelled_files import fits_in_memory, labelled_image_set, skipped_note
from .safe_xml import parse_xml_file
from .sets import DatasetSplits

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
DEFAULT_IMAGE_SIZE = 224  # what the SSKT paper's VOC networks saw
SPLITS = {"2007": ("trainval", "test"), "2012": ("train", "val")}


def year_folder(root: Path, year: str) -> Path:
    """The ``VOC<year>`` folder under ``root`` (or ``root`` itself)."""
    for folder in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}", root):
        if (folder / "Annotations").is_dir():
            return folder
    raise DataError(f"data.root {root} holds no VOC{year} dataset (expected VOCdevkit/VOC{year}/ with Annotations/, "
                    "JPEGImages/ and ImageSets/Main/).")


def image_ids(folder: Path, split: str) -> list[str]:
    """The ids listed in ``ImageSets/Main/<split>.txt``; an id that could leave the dataset's
    folders (a path separator, a leading dot) is refused."""
    listing = folder / "ImageSets" / "Main" / f"{split}.txt"
    try:
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        raise DataError(f"{listing} is missing or unreadable; VOC needs ImageSets/Main/{split}.txt.") from None
    ids = [line.split()[0] for line in lines if line.strip()]
    for image_id in ids:
        if "/" in image_id or "\\" in image_id or image_id.startswith("."):
            raise DataError(f"{listing} lists {image_id!r}, which is not an image id (ids name files inside "
                            "JPEGImages/ and Annotations/).")
    if not ids:
        raise DataError(f"{listing} lists no images.")
    return ids


def annotation_targets(path: Path) -> list[float]:
    """The 20 targets of one annotation file: 1 present, -1 only difficult objects, 0 absent."""
    root = parse_xml_file(path)
    present, difficult_only = set(), set()
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise DataError(f"annotation file {path} has an object of class {name!r}, which is not one of the 20 "
                            "VOC classes.")
        if (obj.findtext("difficult") or "0").strip() == "1":
            difficult_only.add(name)
        else:
            present.add(name)
    return [1.0 if c in present else IGNORED if c in difficult_only else 0.0 for c in VOC_CLASSES]


def _split(folder: Path, split: str) -> tuple[list[str], torch.Tensor]:
    ids = image_ids(folder, split)
    paths = []
    for image_id in ids:
        path = folder / "JPEGImages" / f"{image_id}.jpg"
        if not path.is_file():
            raise DataError(f"image {path} listed in ImageSets/Main/{split}.txt is missing.")
        paths.append(str(path))
    targets = torch.tensor([annotation_targets(folder / "Annotations" / f"{i}.xml") for i in ids])
    return paths, targets


def load_voc(cfg: DataConfig, year: str) -> DatasetSplits:
    """Registered loader for ``voc2007`` and ``voc2012``."""
    folder = year_folder(require_root(cfg, f"voc{year}"), year)
    train_split, val_split = SPLITS[year]
    train_paths, train_targets = _split(folder, train_split)
    val_paths, val_targets = _split(folder, val_split)
    size = cfg.image_size or DEFAULT_IMAGE_SIZE
    in_memory = fits_in_memory(len(train_paths) + len(val_paths), size)
    train, bad = labelled_image_set(train_paths, train_targets, size, in_memory)
    val, bad_val = labelled_image_set(val_paths, val_targets, size, in_memory)
    notes = (f"VOC{year}: trained on {train_split} ({len(train)} images), scored on {val_split} ({len(val)}); "
             f"objects marked difficult are ignored in loss and scoring; images at {size} px",)
    return DatasetSplits(train, val, VOC_CLASSES, IMAGENET_MEAN, IMAGENET_STD, size, multi_label=True,
                         notes=notes + skipped_note(bad + bad_val))
