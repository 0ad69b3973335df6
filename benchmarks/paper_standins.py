"""Tiny stand-in copies, in the real on-disk formats, of every file the paper presets read.

Used by ``replicate_paper.py --check-on-cpu`` and tests/test_paper_presets.py to prove that every
paper preset passes ``sskt check`` and starts training, on a machine without the datasets or the
weights: CIFAR-10/100 as the python-version pickles (Python 2 ``str`` opcodes, as the official
files), STL-10 as its column-major binaries, VOC 2007 as a VOCdevkit with JPEGs and annotation
XML, torchvision's ImageNet ResNet-50 file in a ``TORCH_HOME`` cache, the CSAIL
``resnet50_places365.pth.tar`` (a pre-1.6 torch pickle with ``module.`` prefixes) in a Places365
folder, and a supervised KD teacher run per dataset. Images are random and weights are random:
only the formats, shapes and class counts are real.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes, as the official CIFAR files hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def write_py2_pickle(path: Path, obj: object) -> None:
    """``obj`` pickled as the official CIFAR python-version files are (also used by tests/test_data.py)."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def _images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 4) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        labels = [(j + i) % 10 for j in range(per_batch)]
        write_py2_pickle(folder / f"data_batch_{i}", {b"batch_label": b"training batch", b"labels": labels,
                                                 b"data": _images(rng, per_batch, 32).reshape(per_batch, -1),
                                                 b"filenames": [b"x.png"] * per_batch})
    write_py2_pickle(folder / "test_batch", {b"labels": list(range(10)), b"data": _images(rng, 10, 32).reshape(10, -1)})
    write_py2_pickle(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                          b"num_vis": 3072})


def write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", 100), ("test", 20)):  # one training image per class
        write_py2_pickle(folder / split, {b"fine_labels": [i % 100 for i in range(n)], b"coarse_labels": [0] * n,
                                     b"data": _images(rng, n, 32).reshape(n, -1)})
    write_py2_pickle(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                                  b"coarse_label_names": [b"c"]})


def write_stl10(root: Path) -> None:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for split, n in (("train", 20), ("test", 10)):
        # every channel stored column by column; labels 1..10
        (folder / f"{split}_X.bin").write_bytes(_images(rng, n, 96).transpose(0, 1, 3, 2).tobytes())
        (folder / f"{split}_y.bin").write_bytes(bytes([i % 10 + 1 for i in range(n)]))
    (folder / "class_names.txt").write_text("\n".join(f"name{i}" for i in range(10)) + "\n")


def write_voc2007(root: Path) -> None:
    from PIL import Image

    from sskt_engine.data.voc import VOC_CLASSES

    folder = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    ids = [f"{i:06d}" for i in range(1, 13)]
    for index, image_id in enumerate(ids):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
            folder / "JPEGImages" / f"{image_id}.jpg", quality=90)
        names = [VOC_CLASSES[index % 20], VOC_CLASSES[(index * 7 + 3) % 20]]
        objects = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
                          "<xmax>9</xmax><ymax>9</ymax></bndbox></object>" for n in names)
        (folder / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><folder>VOC2007</folder><size><width>48</width><height>40</height></size>{objects}"
            "</annotation>")
    splits = {"trainval": ids[:8], "train": ids[:4], "val": ids[4:8], "test": ids[8:]}
    for split, members in splits.items():
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in members))


def write_imagenet_resnet50(torch_home: Path) -> Path:
    """Random weights saved where torchvision's resnet50 IMAGENET1K_V1 file lives in the cache."""
    import torch
    import torchvision

    from sskt_engine.sources import torchvision_cache_file

    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(torch_home)
    try:
        path = torchvision_cache_file(weights)
    finally:
        if previous is None:
            del os.environ["TORCH_HOME"]
        else:
            os.environ["TORCH_HOME"] = previous
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet50(num_classes=1000).state_dict(), path)
    return path


def write_places365_resnet50(folder: Path) -> Path:
    """The CSAIL layout: a pre-1.6 torch pickle of {'epoch', 'arch', 'state_dict', 'best_prec1'}, the
    state_dict with DataParallel's ``module.`` prefixes."""
    import torch
    import torchvision

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "resnet50_places365.pth.tar"
    state = {f"module.{k}": v for k, v in torchvision.models.resnet50(num_classes=365).state_dict().items()}
    torch.save({"epoch": 90, "arch": "resnet50", "state_dict": state, "best_prec1": 54.7}, path,
               _use_new_zipfile_serialization=False)
    return path


@dataclass(frozen=True)
class StandIns:
    """Where the stand-ins are; ``environ`` points the app at them (TORCH_HOME, SSKT_PLACES365_DIR)."""

    data_root: Path
    teacher_root: Path
    environ: dict[str, str]


def write_standins(root: Path, datasets: set[str], *, imagenet: bool = True, places: bool = True) -> StandIns:
    """Write the stand-ins the given datasets' presets need under ``root`` (teachers are written by
    the caller, which trains them: see ``replicate_paper.train_teachers``)."""
    data_root = root / "datasets"
    writers = {"cifar10": write_cifar10, "cifar100": write_cifar100, "stl10": write_stl10, "voc2007": write_voc2007}
    for name in sorted(datasets):
        writers[name](data_root)
    environ = {}
    if imagenet:
        write_imagenet_resnet50(root / "torch_home")
        environ["TORCH_HOME"] = str(root / "torch_home")
    if places:
        write_places365_resnet50(root / "places365")
        environ["SSKT_PLACES365_DIR"] = str(root / "places365")
    return StandIns(data_root, root / "teachers", environ)
