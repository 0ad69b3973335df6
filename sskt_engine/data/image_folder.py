"""A folder of class subfolders holding image files (torchvision's ImageFolder layout).

Two layouts are read: ``root/train/<class>/...`` with ``root/val/<class>/...`` (or
``test/``), or ``root/<class>/...`` alone, whose validation images then come from
``data.val_split`` (``load_dataset`` holds them out; the loader leaves val empty).
Images are resized (shorter side, then center crop) to one square size so they can
be batched. When the decoded set fits in 2 GiB it is decoded once into memory, which
makes every later epoch cheap; larger sets stay on disk as a ``FileImageSet``.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np
import torch
from PIL import Image

from ..cancellation import raise_if_stopped
from ..config import DataConfig
from ..errors import DataError
from .sets import DatasetSplits, FileImageSet, ImageSet
from .dataset_files import require_root
from .image_decoding import open_rgb

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SIZE = 64
IN_MEMORY_LIMIT_BYTES = 2 * 1024**3
VAL_FOLDER_NAMES = ("val", "test")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FolderListing:
    """The image files of one split, in a stable order, with their class indices."""

    paths: tuple[str, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class FolderLayout:
    """Where the splits live: ``val_folder`` is None when val must come from val_split."""

    train_folder: Path
    val_folder: Path | None
    class_names: tuple[str, ...]


# ----------------------------------------------------------------------------- listing

def _visible_dirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except PermissionError:
        raise DataError(f"folder {folder} cannot be read (permission denied).") from None
    return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]


def class_folders(folder: Path, needs: str = "an image folder dataset needs one subfolder per class with the "
                                          "images inside") -> tuple[str, ...]:
    """Sorted names of the class subfolders: the dataset's class order. ``needs`` ends the
    sentence that refuses a folder without them."""
    names = tuple(p.name for p in _visible_dirs(folder))
    if not names:
        raise DataError(f"{folder} holds no class subfolders; {needs}.")
    _folders_by_class(folder, names)  # refuses two folders that are one class name in two spellings
    return names


def _class_key(name: str) -> str:
    """One spelling per class name: 'café' may be stored precomposed (NFC, as Windows and Linux
    tools write it) or decomposed (NFD, as macOS writes it), and both mean the same class."""
    return unicodedata.normalize("NFC", name)


def _folders_by_class(folder: Path, names: Sequence[str]) -> dict[str, str]:
    by_key: dict[str, str] = {}
    for name in names:
        key = _class_key(name)
        if key in by_key:
            raise DataError(f"{folder} has two class folders named '{key}' that differ only in how their letters "
                            "are encoded (Unicode NFC and NFD); merge them into one.")
        by_key[key] = name
    return by_key


def find_layout(root: Path) -> FolderLayout:
    """Decide between the train/val layout and the single folder of classes."""
    try:
        return _find_layout(root)
    except PermissionError:
        raise DataError(f"data.root folder {root} cannot be read (permission denied).") from None


def _find_layout(root: Path) -> FolderLayout:
    if not root.exists():
        raise DataError(f"data.root folder {root} does not exist.")
    if not root.is_dir():
        raise DataError(f"data.root {root} is a file; an image folder dataset needs a folder.")
    train = root / "train"
    val = next((root / n for n in VAL_FOLDER_NAMES if (root / n).is_dir()), None)
    if train.is_dir() and val is not None:
        names = class_folders(train)
        extra = sorted({_class_key(n) for n in class_folders(val)} - {_class_key(n) for n in names})
        if extra:
            raise DataError(f"{val} has class folder '{extra[0]}' that {train} does not have; both must use the "
                            "same class names.")
        return FolderLayout(train, val, names)
    if train.is_dir():
        return FolderLayout(train, None, class_folders(train))
    return FolderLayout(root, None, class_folders(root))


class _Walk:
    """What listing a dataset found besides its images. Files and folders are known by their
    (device, inode), so a symlink loop or a file linked from two places (say from train/ into
    val/) is listed once, and only regular files are ever opened: a FIFO named ``x.png``
    would block the reader forever."""

    def __init__(self) -> None:
        self.files: set[tuple[int, int]] = set()
        self.twice: list[str] = []  # files reached a second time through links
        self.loops: list[str] = []  # folders reached again: a link loop, or two links to one folder
        self.special: list[str] = []  # image-named entries that are not regular files
        self.broken: list[str] = []  # links that lead nowhere

    def notes(self) -> tuple[str, ...]:
        out = []
        if self.loops:
            out.append(f"skipped {len(self.loops)} folder(s) reached a second time through links (a link loop?), "
                       f"e.g. {self.loops[0]}")
        if self.twice:
            out.append(f"skipped {len(self.twice)} image file(s) reached a second time through links, so no image "
                       f"counts twice or in two splits, e.g. {self.twice[0]}")
        if self.special:
            out.append(f"skipped {len(self.special)} entries that are not regular files (pipes, devices, ...), "
                       f"e.g. {self.special[0]}")
        if self.broken:
            out.append(f"skipped {len(self.broken)} broken link(s), e.g. {self.broken[0]}")
        return tuple(out)


def _images_under(folder: Path, walk: _Walk) -> list[str]:
    found: list[str] = []
    folders_seen: set[tuple[int, int]] = set()
    stack = [str(folder)]
    while stack:  # depth first, in name order, without recursion (deep trees)
        directory = stack.pop()
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in folders_seen:
            walk.loops.append(directory)
            continue
        folders_seen.add((info.st_dev, info.st_ino))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError:  # a folder the user cannot read would silently lose its images
            raise DataError(f"folder {directory} cannot be read (permission denied).") from None
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                target = os.stat(entry.path)  # follows links; never opens (a FIFO does not block here)
            except FileNotFoundError:
                walk.broken.append(entry.path)
                continue
            if stat.S_ISDIR(target.st_mode):
                subfolders.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                if not stat.S_ISREG(target.st_mode):
                    walk.special.append(entry.path)
                elif (target.st_dev, target.st_ino) in walk.files:
                    walk.twice.append(entry.path)
                else:
                    walk.files.add((target.st_dev, target.st_ino))
                    found.append(entry.path)
        stack.extend(reversed(subfolders))
    return found


def list_by_class(folder: Path, class_names: Sequence[str], samples_in: Callable[[Path], list[str]],
                  holds_none: str) -> tuple[list[str], list[int]]:
    """The samples ``samples_in`` finds in each class's folder under ``folder`` (matched in either
    Unicode spelling), with the class's index as label; a class without a folder is skipped (a val
    folder may lack classes), an empty class folder is an error because a class without samples
    cannot be learnt or evaluated. ``holds_none`` ends that error's sentence."""
    here = _folders_by_class(folder, [p.name for p in _visible_dirs(folder)])
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        class_dir = folder / here.get(_class_key(name), name)
        if not class_dir.is_dir():
            continue
        found = samples_in(class_dir)
        if not found:
            raise DataError(f"class folder {class_dir} holds {holds_none}.")
        paths.extend(found)
        labels.extend([index] * len(found))
    return paths, labels


def list_split(folder: Path, class_names: Sequence[str], walk: _Walk | None = None) -> FolderListing:
    """Every image file below ``folder/<class>``. Pass the same ``walk`` for every split of a
    dataset so that no file is listed in two of them."""
    walk = walk if walk is not None else _Walk()
    paths, labels = list_by_class(folder, class_names, lambda class_dir: _images_under(class_dir, walk),
                                  f"no images ({', '.join(IMAGE_EXTENSIONS[:3])}, ...)")
    return FolderListing(tuple(paths), tuple(labels))


# ----------------------------------------------------------------------------- decoding

def load_rgb(path: str, size: int) -> Image.Image:
    """Open one image as RGB (any pixel mode, EXIF orientation applied), resized so its shorter
    side is ``size`` and center-cropped to ``size`` x ``size``. Raises whatever the decoder
    raises on a bad file (``UnsupportedImage`` for a mode that cannot be mapped to RGB)."""
    from torchvision.transforms import functional as F

    rgb = open_rgb(path, draft_size=size)
    rgb = F.resize(rgb, [size])
    return F.center_crop(rgb, [size])


def _decode(path: str, size: int) -> np.ndarray | None:
    try:
        return np.asarray(load_rgb(path, size), dtype=np.uint8).transpose(2, 0, 1)
    except Exception:  # noqa: BLE001 - any decoder failure on a user's file means "unreadable"
        return None


def _header_ok(path: str) -> bool:
    try:
        with Image.open(path) as img:
            img.size  # noqa: B018 - reading the header is the check
        return True
    except Exception:  # noqa: BLE001
        return False


def own_image_size(paths: Sequence[str], sample: int = 64) -> tuple[int, tuple[str, ...]]:
    """The folder's own image size, for ``data.image_size`` left empty: the median shorter side
    of up to ``sample`` files spread over the listing (headers only), within 8 to 1024 pixels.
    Training a folder of 32 px images at a fixed 64 px would cost four times the compute for
    no information; the chosen size is said in the run's first lines."""
    step = max(1, len(paths) // sample)
    sides = [side for side in _parallel_map(_shorter_side, list(paths[::step][:sample])) if side]
    if not sides:
        return DEFAULT_IMAGE_SIZE, (f"images are read at {DEFAULT_IMAGE_SIZE} px (no sampled header was readable; "
                                    "set data.image_size to choose)",)
    size = int(min(1024, max(8, sorted(sides)[len(sides) // 2])))
    return size, (f"images are read at {size} px, the median shorter side of {len(sides)} sampled file(s); "
                  "set data.image_size to choose another size",)


def _shorter_side(path: str) -> int:
    try:
        with Image.open(path) as img:
            return min(img.size)
    except Exception:  # noqa: BLE001 - an unreadable file is counted when it is decoded
        return 0


STOP_CHECK_EVERY = 16  # files between looks at a stop request (sskt_engine.cancellation)


def _parallel_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """PIL releases the GIL while decoding and resizing, so threads scale on big folders.
    A stop asked for meanwhile ends the map within a few files: the files not started are
    cancelled and only those being decoded are waited for."""
    if len(items) < 64:
        out = []
        for i, item in enumerate(items):
            if i % STOP_CHECK_EVERY == 0:
                raise_if_stopped()
            out.append(fn(item))
        return out
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        out = []
        for i, result in enumerate(pool.map(fn, items)):
            if i % STOP_CHECK_EVERY == 0:
                raise_if_stopped()
            out.append(result)
        return out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _skipped_note(bad: Sequence[str]) -> tuple[str, ...]:
    return (f"skipped {len(bad)} unreadable image(s), e.g. {bad[0]}",) if bad else ()


def _check_classes_left(listing_labels: Iterable[int], before: Iterable[int], class_names: Sequence[str],
                        folder: Path) -> None:
    """A class whose every file was unreadable is as bad as an empty class folder."""
    missing = set(before) - set(listing_labels)
    if missing:
        name = class_names[min(missing)]
        raise DataError(f"class folder {folder / name} holds no readable images.")


def decode_split(listing: FolderListing, size: int, class_names: Sequence[str],
                 folder: Path) -> tuple[ImageSet, list[str]]:
    """Decode every file into one uint8 tensor; unreadable files are dropped and returned.
    Each decoded image is written straight into the final array, so peak memory is the
    dataset itself, not twice it."""
    images = np.empty((len(listing.paths), 3, size, size), dtype=np.uint8)

    def decode_into(row: int) -> bool:
        array = _decode(listing.paths[row], size)
        if array is None:
            return False
        images[row] = array
        return True

    ok = _parallel_map(decode_into, range(len(listing.paths)))
    keep = [i for i, good in enumerate(ok) if good]
    bad = [listing.paths[i] for i, good in enumerate(ok) if not good]
    if bad:
        images = images[keep]
    labels = [listing.labels[i] for i in keep]
    _check_classes_left(labels, listing.labels, class_names, folder)
    return ImageSet(torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64)), bad


def file_split(listing: FolderListing, size: int, class_names: Sequence[str],
               folder: Path) -> tuple[FileImageSet, list[str]]:
    """Keep files on disk; only headers are read now, so a non-image file is dropped
    here rather than failing in the middle of an epoch."""
    ok = _parallel_map(_header_ok, listing.paths)
    keep = [i for i, good in enumerate(ok) if good]
    bad = [listing.paths[i] for i, good in enumerate(ok) if not good]
    labels = [listing.labels[i] for i in keep]
    _check_classes_left(labels, listing.labels, class_names, folder)
    return FileImageSet(tuple(listing.paths[i] for i in keep), torch.tensor(labels, dtype=torch.int64), size), bad


def _empty(size: int, in_memory: bool) -> ImageSet | FileImageSet:
    labels = torch.empty(0, dtype=torch.int64)
    if in_memory:
        return ImageSet(torch.empty((0, 3, size, size), dtype=torch.uint8), labels)
    return FileImageSet((), labels, size)


def load_image_folder(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``imagefolder``."""
    root = require_root(cfg, "imagefolder")
    layout = find_layout(root)
    walk = _Walk()
    train_list = list_split(layout.train_folder, layout.class_names, walk)
    val_list = list_split(layout.val_folder, layout.class_names, walk) if layout.val_folder else FolderListing((), ())
    if not train_list.paths:
        raise DataError(f"{layout.train_folder} holds no images.")
    size, size_note = (cfg.image_size, ()) if cfg.image_size else own_image_size(train_list.paths)
    in_memory = (len(train_list.paths) + len(val_list.paths)) * 3 * size * size < IN_MEMORY_LIMIT_BYTES
    split_fn = decode_split if in_memory else file_split
    train, bad = split_fn(train_list, size, layout.class_names, layout.train_folder)
    if layout.val_folder is not None and val_list.paths:
        val, bad_val = split_fn(val_list, size, layout.class_names, layout.val_folder)
        bad = bad + bad_val
    else:
        val = _empty(size, in_memory)
    return DatasetSplits(train, val, layout.class_names, IMAGENET_MEAN, IMAGENET_STD, size,
                         notes=size_note + walk.notes() + _skipped_note(bad))
