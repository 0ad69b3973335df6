"""Dataset readers, splits, batch streams and the preview, on tiny files written in the
real on-disk formats (CIFAR python pickles as Python 2 wrote them, STL-10 binaries,
PNG folders)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sskt_engine.config import DataConfig
from sskt_engine.data import DATASETS, FileImageSet, ImageSet, load_dataset
from sskt_engine.data import image_folder
from sskt_engine.data.batches import (PAD, BatchStream, choose_resident, crop_flip_gather, epoch_plan,
                                      make_streams)
from sskt_engine.data.cifar import safe_unpickle
from sskt_engine.data.preview import preview_samples
from sskt_engine.data.splits import per_class_subset, stratified_holdout
from sskt_engine.errors import DataError

PER_BATCH = 20  # CIFAR-10 images per data_batch_N file: 100 train images, 10 per class


# ----------------------------------------------------------------------------- writers

# the official CIFAR python-version pickles (Python 2 str opcodes): the benchmarks' stand-in writer
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from paper_standins import write_py2_pickle as _write_py2_pickle  # noqa: E402


def _images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def _balanced_labels(n: int, classes: int, offset: int = 0) -> list[int]:
    return [(i + offset) % classes for i in range(n)]


def write_cifar10(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    all_images, all_labels = [], []
    for i in range(1, 6):
        images, labels = _images(rng, PER_BATCH), _balanced_labels(PER_BATCH, 10, i)
        _write_py2_pickle(folder / f"data_batch_{i}", {b"batch_label": b"training batch", b"labels": labels,
                                                        b"data": images.reshape(PER_BATCH, -1),
                                                        b"filenames": [b"x.png"] * PER_BATCH})
        all_images.append(images)
        all_labels += labels
    test_images = _images(rng, 10)
    _write_py2_pickle(folder / "test_batch", {b"labels": list(range(10)), b"data": test_images.reshape(10, -1)})
    names = [f"class{i}".encode() for i in range(10)]
    _write_py2_pickle(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return {"train": np.concatenate(all_images), "train_labels": np.array(all_labels), "test": test_images}


def write_cifar100(root: Path) -> np.ndarray:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    train = _images(rng, 200)
    _write_py2_pickle(folder / "train", {b"fine_labels": _balanced_labels(200, 100),
                                         b"coarse_labels": [0] * 200, b"data": train.reshape(200, -1)})
    _write_py2_pickle(folder / "test", {b"fine_labels": _balanced_labels(100, 100),
                                        b"coarse_labels": [0] * 100, b"data": _images(rng, 100).reshape(100, -1)})
    _write_py2_pickle(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                                        b"coarse_label_names": [b"c"]})
    return train


def write_stl10(root: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    train, test = _images(rng, 4, 96), _images(rng, 3, 96)
    # the binary stores every channel column by column
    (folder / "train_X.bin").write_bytes(train.transpose(0, 1, 3, 2).tobytes())
    (folder / "train_y.bin").write_bytes(bytes([1, 2, 10, 3]))
    (folder / "test_X.bin").write_bytes(test.transpose(0, 1, 3, 2).tobytes())
    (folder / "test_y.bin").write_bytes(bytes([5, 6, 7]))
    (folder / "class_names.txt").write_text("\n".join(f"name{i}" for i in range(10)) + "\n")
    return train, test


def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def write_image_folder(root: Path, per_class: int = 5) -> None:
    for name, colour in (("zebra", (250, 0, 0)), ("ant", (0, 250, 0)), ("moth", (0, 0, 250))):
        for i in range(per_class):
            write_png(root / name / f"{i}.png", colour, size=(12 + i, 10))
    (root / "ant" / "broken.png").write_bytes(b"this is not a png")
    (root / "moth" / "notes.txt").write_text("not an image, ignored")


def _cfg(**kw) -> DataConfig:
    return DataConfig(**kw)


# ----------------------------------------------------------------------------- registry

def test_registry_lists_every_dataset_with_its_metadata():
    for key in ("cifar10", "cifar100", "stl10", "imagefolder", "demo", "demo-shapes"):
        info = DATASETS.get(key)
        assert info.description and info.task == "single_label"
    assert DATASETS.get("cifar100").num_classes == 100
    assert DATASETS.get("stl10").image_size == 96
    assert DATASETS.get("imagefolder").needs_root is True
    assert DATASETS.get("demo").needs_root is False


# ----------------------------------------------------------------------------- CIFAR

def test_cifar10_reads_the_python_pickle_files(tmp_path):
    truth = write_cifar10(tmp_path)
    splits = DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path)))
    assert isinstance(splits.train, ImageSet)
    assert splits.train.images.dtype == torch.uint8 and splits.train.labels.dtype == torch.int64
    assert splits.train.images.shape == (5 * PER_BATCH, 3, 32, 32)
    assert torch.equal(splits.train.images, torch.from_numpy(truth["train"]))
    assert splits.train.labels.tolist() == truth["train_labels"].tolist()
    assert torch.equal(splits.val.images, torch.from_numpy(truth["test"]))
    assert splits.class_names == tuple(f"class{i}" for i in range(10))
    assert splits.mean == (0.4914, 0.4822, 0.4465) and splits.image_size == 32


def test_cifar10_root_may_name_the_extracted_folder_itself(tmp_path):
    write_cifar10(tmp_path)
    splits = DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path / "cifar-10-batches-py")))
    assert len(splits.train) == 5 * PER_BATCH and len(splits.val) == 10


def test_cifar100_reads_fine_labels(tmp_path):
    train = write_cifar100(tmp_path)
    splits = DATASETS.get("cifar100").load(_cfg(dataset="cifar100", root=str(tmp_path)))
    assert splits.num_classes == 100 and splits.class_names[7] == "f7"
    assert torch.equal(splits.train.images, torch.from_numpy(train))
    assert splits.train.labels[:3].tolist() == [0, 1, 2] and len(splits.val) == 100
    assert splits.std == (0.2673, 0.2564, 0.2762)


def test_missing_cifar_file_names_the_file_and_the_download_switch(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match=r"'test_batch' is missing under .*cifar-10-batches-py.*data\.download: true"):
        DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path)))


def test_empty_root_is_a_data_error():
    with pytest.raises(DataError, match="needs data.root"):
        load_dataset(_cfg(dataset="cifar100", root=""), seed=0)


def test_download_fetches_the_official_archive_then_reads_it(tmp_path, monkeypatch):
    from sskt_engine.data import cifar

    calls = []

    def fake_download(url, root, filename, md5, name):
        calls.append((url, filename, md5))
        write_cifar10(root)  # what extracting the archive leaves behind

    monkeypatch.setattr(cifar, "download_archive", fake_download)
    splits = DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path / "new"), download=True))
    assert calls == [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                      "c58f30108f718f92721af3b95e74349a")]
    assert len(splits.train) == 5 * PER_BATCH


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import builtins

        return builtins.exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    write_cifar10(tmp_path)
    # The payload really runs code under plain pickle...
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps({"data": _RunsCode(control)}, protocol=2))
    assert control.exists()
    # ...but not under the dataset reader.
    marker = tmp_path / "marker"
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(
        pickle.dumps({"data": _RunsCode(marker), "labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_3 refers to (__builtin__|builtins)\.exec.*could run code"):
        DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path)))
    assert not marker.exists()


def test_garbage_and_wrong_shape_cifar_files_are_data_errors(tmp_path):
    bad = tmp_path / "garbage"
    bad.write_bytes(b"\x00\x01 definitely not a pickle")
    with pytest.raises(DataError, match="not a valid CIFAR python file"):
        safe_unpickle(bad)
    write_cifar10(tmp_path / "c")
    _write_py2_pickle(tmp_path / "c" / "cifar-10-batches-py" / "test_batch",
                      {b"labels": [0], b"data": np.zeros((1, 100), np.uint8)})
    with pytest.raises(DataError, match=r"test_batch: 'data' must be a uint8 array of shape \[n, 3072\]"):
        DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path / "c")))


def test_image_size_resizes_a_fixed_size_dataset(tmp_path):
    write_cifar10(tmp_path)
    splits = DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path), image_size=16))
    assert splits.train.images.shape[1:] == (3, 16, 16) and splits.val.images.shape[1:] == (3, 16, 16)
    assert splits.image_size == 16 and any("resized" in n for n in splits.notes)


# ----------------------------------------------------------------------------- STL-10

def test_stl10_reads_column_major_binaries_and_shifts_labels(tmp_path):
    train, test = write_stl10(tmp_path)
    splits = DATASETS.get("stl10").load(_cfg(dataset="stl10", root=str(tmp_path)))
    assert torch.equal(splits.train.images, torch.from_numpy(train))
    assert torch.equal(splits.val.images, torch.from_numpy(test))
    assert splits.train.labels.tolist() == [0, 1, 9, 2] and splits.val.labels.tolist() == [4, 5, 6]
    assert splits.class_names[0] == "name0" and splits.image_size == 96


def test_stl10_missing_and_truncated_files(tmp_path):
    write_stl10(tmp_path)
    folder = tmp_path / "stl10_binary"
    (folder / "test_y.bin").unlink()
    with pytest.raises(DataError, match="'test_y.bin' is missing under .*stl10_binary.*data.download: true"):
        DATASETS.get("stl10").load(_cfg(dataset="stl10", root=str(tmp_path)))
    (folder / "test_y.bin").write_bytes(bytes([1, 2, 3]))
    (folder / "train_X.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match="train_X.bin is not an STL-10 image file"):
        DATASETS.get("stl10").load(_cfg(dataset="stl10", root=str(tmp_path)))


# ----------------------------------------------------------------------------- image folders

def test_image_folder_decodes_resizes_and_skips_unreadable_files(tmp_path):
    write_image_folder(tmp_path)
    splits = DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path), image_size=8))
    assert splits.class_names == ("ant", "moth", "zebra")  # sorted folder names
    assert isinstance(splits.train, ImageSet) and splits.train.images.shape == (15, 3, 8, 8)
    assert splits.train.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    # every zebra image is pure red after resizing and cropping
    zebra = splits.train.images[splits.train.labels == 2]
    assert (zebra[:, 0] >= 245).all() and (zebra[:, 1:] <= 5).all()
    assert len(splits.val) == 0  # no val folder: load_dataset holds val out of train
    assert len(splits.notes) == 1 and splits.notes[0].startswith("skipped 1 unreadable image(s), e.g. ")
    assert splits.notes[0].endswith("broken.png")
    assert splits.mean == (0.485, 0.456, 0.406)


def test_image_folder_without_val_gets_ten_percent_by_default(tmp_path):
    write_image_folder(tmp_path, per_class=22)  # 66 files: decoded by the thread pool
    splits = load_dataset(_cfg(dataset="imagefolder", root=str(tmp_path), image_size=8), seed=0)
    assert len(splits.val) == 6 and len(splits.train) == 60
    assert sorted(splits.val.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert (splits.train.images[splits.train.labels == 1][:, 2] >= 245).all()  # moth is blue
    assert any("held out 10%" in note for note in splits.notes)


def test_image_folder_train_val_layout(tmp_path):
    write_image_folder(tmp_path / "train", per_class=3)
    write_png(tmp_path / "val" / "ant" / "a.png", (0, 250, 0))
    write_png(tmp_path / "val" / "zebra" / "z.jpg", (250, 0, 0))
    splits = load_dataset(_cfg(dataset="imagefolder", root=str(tmp_path), image_size=8), seed=0)
    assert len(splits.train) == 9 and splits.val.labels.tolist() == [0, 2]
    assert splits.val.images[1, 0].min() > 200  # the red zebra


def test_empty_class_folder_and_empty_root_are_data_errors(tmp_path):
    write_image_folder(tmp_path / "a")
    (tmp_path / "a" / "empty").mkdir()
    with pytest.raises(DataError, match=r"class folder .*empty holds no images"):
        DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path / "a")))
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="holds no class subfolders"):
        DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path / "b")))
    with pytest.raises(DataError, match="does not exist"):
        DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path / "nowhere")))


def test_large_image_folder_stays_on_disk_and_streams_through_the_dataloader(tmp_path, monkeypatch):
    write_image_folder(tmp_path)
    monkeypatch.setattr(image_folder, "IN_MEMORY_LIMIT_BYTES", 0)
    splits = DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path), image_size=8))
    assert isinstance(splits.train, FileImageSet) and len(splits.train) == 15
    assert not any(p.endswith("broken.png") for p in splits.train.paths)
    stream = BatchStream(splits.train, batch_size=4, shuffle=True, augment=True, mean=splits.mean,
                         std=splits.std, device="cpu", seed=0, resident="auto")
    assert not stream.resident
    batches = list(stream.epoch(0))
    assert [len(b) for b in batches] == [4, 4, 4, 3]
    assert batches[0].pixels.shape == (4, 3, 8, 8)
    with pytest.raises(DataError, match="too large to decode into memory"):
        BatchStream(splits.train, batch_size=4, shuffle=False, augment=False, mean=splits.mean, std=splits.std,
                    device="cpu", seed=0, resident="on")


# ----------------------------------------------------------------------------- splits

def test_labels_per_class_is_deterministic_stratified_and_seed_dependent(tmp_path):
    write_cifar10(tmp_path)
    cfg = _cfg(dataset="cifar10", root=str(tmp_path), labels_per_class=3)
    a, b, c = load_dataset(cfg, seed=1), load_dataset(cfg, seed=1), load_dataset(cfg, seed=2)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.train.images, c.train.images)
    assert torch.bincount(a.train.labels, minlength=10).tolist() == [3] * 10
    assert len(a.val) == 10  # the official test split is untouched
    labels = torch.arange(40) % 4
    first, short = per_class_subset(labels, 5, seed=7)
    assert torch.equal(first, per_class_subset(labels, 5, seed=7)[0]) and short == {}
    assert not torch.equal(first, per_class_subset(labels, 5, seed=8)[0])


def test_labels_per_class_larger_than_a_class_keeps_all_with_a_note(tmp_path):
    write_cifar10(tmp_path)
    splits = load_dataset(_cfg(dataset="cifar10", root=str(tmp_path), labels_per_class=50), seed=0)
    assert len(splits.train) == 5 * PER_BATCH
    assert any("fewer than labels_per_class=50" in n for n in splits.notes)


def test_val_split_is_stratified_and_disjoint(tmp_path):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate((10, 20, 40))])
    train, val = stratified_holdout(labels, 0.25, seed=3)
    assert torch.bincount(labels[val]).tolist() == [2, 5, 10]  # round(0.25 * n) per class
    assert sorted(train.tolist() + val.tolist()) == list(range(70))
    assert torch.equal(val, stratified_holdout(labels, 0.25, seed=3)[1])
    assert not torch.equal(val, stratified_holdout(labels, 0.25, seed=4)[1])
    write_cifar10(tmp_path)
    splits = load_dataset(_cfg(dataset="cifar10", root=str(tmp_path), val_split=0.2), seed=0)
    assert torch.bincount(splits.val.labels, minlength=10).tolist() == [2] * 10
    assert len(splits.train) == 80
    rows = lambda s: sorted(bytes(x.flatten().tolist()) for x in s.images)  # noqa: E731
    full = DATASETS.get("cifar10").load(_cfg(dataset="cifar10", root=str(tmp_path)))
    assert rows(ImageSet(torch.cat([splits.train.images, splits.val.images]), splits.train.labels)) == rows(full.train)


# ----------------------------------------------------------------------------- batches

def _random_set(n: int = 10, size: int = 8, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                    torch.arange(n) % 3)


def _stream(data: ImageSet, **kw) -> BatchStream:
    args = dict(batch_size=4, shuffle=True, augment=True, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3),
                device="cpu", seed=11, resident="on")
    args.update(kw)
    return BatchStream(data, **args)


def test_crop_and_flip_match_hand_computed_results():
    image = torch.arange(2 * 3 * 6 * 6, dtype=torch.int64).reshape(2, 3, 6, 6).to(torch.uint8)
    idx = torch.tensor([1, 0])
    # offset PAD in the padded image = no shift; with the flip it is a plain mirror
    out = crop_flip_gather(image, idx, torch.tensor([PAD, PAD]), torch.tensor([PAD, PAD]),
                           torch.tensor([True, False]))
    assert torch.equal(out[0], torch.flip(image[1], dims=[-1])) and torch.equal(out[1], image[0])
    # offset 0: the image moves down-right by PAD and the top-left band is zero padding
    out = crop_flip_gather(image, torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.tensor([False]))
    assert torch.equal(out[0, :, PAD:, PAD:], image[0, :, :6 - PAD, :6 - PAD])
    assert out[0, :, :PAD].eq(0).all() and out[0, :, :, :PAD].eq(0).all()


def test_batches_are_deterministic_per_seed_and_epoch_and_leave_global_rng_alone():
    data = _random_set()
    state = torch.get_rng_state()
    first = [b.pixels for b in _stream(data).epoch(3)]
    again = [b.pixels for b in _stream(data).epoch(3)]  # a fresh stream, as after a resume
    other = [b.pixels for b in _stream(data).epoch(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert torch.equal(state, torch.get_rng_state())


def test_augmented_batches_keep_shapes_dtypes_ranges_and_normalize():
    data = _random_set()
    batch = next(iter(_stream(data).epoch(0)))
    assert batch.pixels.shape == batch.images.shape == (4, 3, 8, 8)
    assert batch.pixels.dtype == torch.float32 and batch.labels.dtype == torch.int64
    assert 0.0 <= batch.pixels.min() and batch.pixels.max() <= 1.0
    mean, std = torch.tensor((0.5, 0.4, 0.3)).view(1, 3, 1, 1), torch.tensor((0.2, 0.25, 0.3)).view(1, 3, 1, 1)
    assert torch.allclose(batch.images, (batch.pixels - mean) / std)
    assert torch.equal(batch.labels, data.labels[batch.indices])


def test_validation_stream_is_the_data_in_order():
    data = _random_set()
    batches = list(_stream(data, shuffle=False, augment=False).epoch(5))
    assert torch.equal(torch.cat([b.pixels for b in batches]), data.images.float() / 255)
    assert torch.cat([b.labels for b in batches]).tolist() == data.labels.tolist()


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_path_gives_the_same_batches_as_the_resident_path(workers):
    data = _random_set(n=9)
    resident = _stream(data, resident="on")
    loader = _stream(data, resident="off", num_workers=workers)
    assert resident.resident and not loader.resident
    a, b = list(resident.epoch(2)), list(loader.epoch(2))
    assert [x.pixels.shape for x in a] == [x.pixels.shape for x in b] == [(4, 3, 8, 8)] * 2 + [(1, 3, 8, 8)]
    for x, y in zip(a, b):
        assert torch.equal(x.indices, y.indices) and torch.equal(x.labels, y.labels)
        assert torch.equal(x.pixels, y.pixels)


def test_len_with_and_without_drop_last():
    data = _random_set(n=10)
    assert len(_stream(data)) == 3 and len(list(_stream(data).epoch(0))) == 3
    dropped = _stream(data, drop_last=True)
    assert len(dropped) == 2 and [len(b) for b in dropped.epoch(0)] == [4, 4]
    assert len(_stream(data, resident="off", drop_last=True)) == 2
    assert [len(b) for b in _stream(data, resident="off", drop_last=True).epoch(0)] == [4, 4]


def test_make_streams_builds_a_shuffled_train_and_an_ordered_val_stream(tmp_path):
    write_cifar10(tmp_path)
    cfg = _cfg(dataset="cifar10", root=str(tmp_path), augment=False, device_resident="off")
    train, val = make_streams(load_dataset(cfg, seed=0), cfg, batch_size=32, device="cpu", seed=0)
    assert not train.resident and (train.shuffle, train.augment) == (True, False)
    assert (val.shuffle, val.augment, len(val)) == (False, False, 1)
    assert len(train) == 4 and next(iter(val.epoch(0))).labels.tolist() == list(range(10))


def test_auto_residency_and_epoch_plan():
    data = _random_set()
    assert choose_resident(data, torch.device("cpu"), "auto") is True
    assert choose_resident(data, torch.device("cpu"), "off") is False
    plan = epoch_plan(10, seed=0, epoch=0, shuffle=True, augment=True)
    assert sorted(plan.order.tolist()) == list(range(10))
    assert plan.tops.min() >= 0 and plan.tops.max() <= 2 * PAD


# ----------------------------------------------------------------------------- preview

def test_preview_spreads_over_classes(tmp_path):
    write_cifar10(tmp_path)
    images, names = preview_samples(_cfg(dataset="cifar10", root=str(tmp_path)), count=12, seed=0)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert names[:10] == [f"class{i}" for i in range(10)]
    folder = tmp_path / "folder"
    write_image_folder(folder)
    images, names = preview_samples(_cfg(dataset="imagefolder", root=str(folder), image_size=8), count=4)
    assert images.shape == (4, 8, 8, 3) and names == ["ant", "moth", "zebra", "ant"]
    with pytest.raises(DataError, match="does not exist"):
        preview_samples(_cfg(dataset="imagefolder", root=str(tmp_path / "missing")))


def test_an_image_folder_is_read_at_its_own_size_and_the_run_says_so(tmp_path):
    """Issue 18, item 10: 32 px images trained at 64 px (4x the compute) and nothing said so."""
    from PIL import Image as PILImage

    for cls in ("a", "b"):
        for i in range(3):
            path = tmp_path / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            PILImage.fromarray(np.full((32, 40, 3), 40 * i, dtype=np.uint8)).save(path)
    splits = DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path)))
    assert splits.image_size == 32 and tuple(splits.train.images.shape[-2:]) == (32, 32)
    assert any("read at 32 px, the median shorter side of 6 sampled file(s)" in note for note in splits.notes)
    chosen = DATASETS.get("imagefolder").load(_cfg(dataset="imagefolder", root=str(tmp_path), image_size=16))
    assert chosen.image_size == 16 and not any("px" in note for note in chosen.notes)
