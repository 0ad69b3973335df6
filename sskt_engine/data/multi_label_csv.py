"""Your own multi-label data: image files listed in a CSV with their labels.

``data.root`` names either one CSV file (its validation images then come from
``data.val_split``, 10 % by default), or a folder holding ``train.csv`` and optionally
``val.csv`` (or ``test.csv``). Each row is ``path,labels``: the image's path relative to the
CSV's folder (or absolute) and its labels separated by ``;`` (``dog;person``); an empty labels
field is an image with none of the classes. A first row ``path,labels`` is a header and skipped.

The classes are those of ``classes.txt`` beside the CSV (one name per line, in that order) when
there is one, and a label not in it is refused; otherwise the sorted names of every label used.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from ..config import DataConfig
from ..errors import DataError
from .dataset_files import require_root
from .image_folder import IMAGENET_MEAN, IMAGENET_STD, own_image_size
from .labelled_files import fits_in_memory, labelled_image_set, skipped_note
from .sets import DatasetSplits

LABEL_SEPARATOR = ";"
VAL_NAMES = ("val.csv", "test.csv")
MAX_CSV_BYTES = 256 * 1024 * 1024


def read_rows(csv_path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, image path, labels) of every row of the CSV; one sentence for a bad row."""
    try:
        if csv_path.stat().st_size > MAX_CSV_BYTES:
            raise DataError(f"CSV {csv_path} is larger than {MAX_CSV_BYTES // 1024**2} MiB, so it is not read.")
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or type(exc).__name__
        raise DataError(f"CSV {csv_path} cannot be read ({reason}).") from None
    rows = []
    for number, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or not any(f.strip() for f in fields):
            continue
        if number == 1 and [f.strip().lower() for f in fields] == ["path", "labels"]:
            continue
        if len(fields) != 2 or not fields[0].strip():
            raise DataError(f"CSV {csv_path} line {number} is not 'path,labels' (labels separated by "
                            f"'{LABEL_SEPARATOR}').")
        labels = [name.strip() for name in fields[1].split(LABEL_SEPARATOR) if name.strip()]
        rows.append((number, fields[0].strip(), labels))
    if not rows:
        raise DataError(f"CSV {csv_path} lists no images.")
    return rows


def class_list(csv_paths: list[Path], rows: list[list[tuple[int, str, list[str]]]]) -> tuple[str, ...]:
    """The classes of ``classes.txt`` beside the first CSV, or the sorted labels used."""
    listing = csv_paths[0].parent / "classes.txt"
    if listing.is_file():
        try:
            names = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError):
            raise DataError(f"{listing} cannot be read as UTF-8 text.") from None
        if not names:
            raise DataError(f"{listing} names no classes.")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise DataError(f"{listing} names class {twice!r} twice.")
        return tuple(names)
    names = sorted({label for split in rows for _, _, labels in split for label in labels})
    if not names:
        raise DataError(f"CSV {csv_paths[0]} gives no image any label, so there are no classes to learn.")
    return tuple(names)


def _targets(csv_path: Path, rows: list[tuple[int, str, list[str]]],
             classes: tuple[str, ...]) -> tuple[list[str], torch.Tensor]:
    index = {name: i for i, name in enumerate(classes)}
    targets = torch.zeros((len(rows), len(classes)))
    paths = []
    for row, (number, name, labels) in enumerate(rows):
        path = Path(name).expanduser()
        path = path if path.is_absolute() else csv_path.parent / path
        if not path.is_file():
            raise DataError(f"CSV {csv_path} line {number} names image {path}, which does not exist.")
        for label in labels:
            if label not in index:
                raise DataError(f"CSV {csv_path} line {number} has label {label!r}, which is not in classes.txt.")
            targets[row, index[label]] = 1.0
        paths.append(str(path))
    return paths, targets


def csv_files(root: Path) -> tuple[Path, Path | None]:
    """The training CSV and the validation CSV (None: val comes from val_split)."""
    if root.is_file():
        return root, None
    if not root.is_dir():
        raise DataError(f"data.root {root} does not exist; name a CSV file or a folder holding train.csv.")
    train = root / "train.csv"
    if not train.is_file():
        raise DataError(f"folder {root} holds no train.csv; name a CSV file in data.root or add train.csv "
                        "(and val.csv) to the folder.")
    return train, next((root / name for name in VAL_NAMES if (root / name).is_file()), None)


def load_multi_label_csv(cfg: DataConfig) -> DatasetSplits:
    """Registered loader for ``multilabel-csv``."""
    train_csv, val_csv = csv_files(require_root(cfg, "multilabel-csv"))
    csvs = [train_csv] + ([val_csv] if val_csv else [])
    rows = [read_rows(path) for path in csvs]
    classes = class_list(csvs, rows)
    train_paths, train_targets = _targets(train_csv, rows[0], classes)
    val_paths, val_targets = (_targets(val_csv, rows[1], classes) if val_csv is not None
                              else ([], torch.zeros((0, len(classes)))))
    size, notes = (cfg.image_size, ()) if cfg.image_size else own_image_size(train_paths)
    in_memory = fits_in_memory(len(train_paths) + len(val_paths), size)
    train, bad = labelled_image_set(train_paths, train_targets, size, in_memory)
    val, bad_val = labelled_image_set(val_paths, val_targets, size, in_memory)
    unlabelled = int((train_targets.sum(dim=1) == 0).sum())
    if unlabelled:
        notes += (f"{unlabelled} training image(s) have no label: they count as negatives for every class",)
    never = [name for name, count in zip(classes, train_targets.sum(dim=0).tolist()) if count == 0]
    if never:
        notes += (f"{len(never)} class(es) have no positive training image, e.g. {never[0]}",)
    return DatasetSplits(train, val, classes, IMAGENET_MEAN, IMAGENET_STD, size, multi_label=True,
                         notes=notes + skipped_note(bad + bad_val))
