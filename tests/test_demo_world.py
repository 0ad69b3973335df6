"""The built-in offline demo world: shapes, types, determinism, balance and learnability."""

from __future__ import annotations

import pytest
import torch

from sskt_engine.data import DatasetSplits, ImageSet
from sskt_engine.data import demo_world as dw

SIZES = {"shapes": (12_000, 2_000), "signs": (3_000, 1_500)}
NAMES = {"shapes": dw.SHAPES_CLASSES, "signs": dw.SIGNS_CLASSES}


@pytest.fixture(scope="module", params=["shapes", "signs"])
def task(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def splits(task: str) -> DatasetSplits:
    return dw.demo_splits(task)


def _sets(splits: DatasetSplits) -> list[ImageSet]:
    return [splits.train, splits.val]


def test_shapes_dtypes_and_sizes(task: str, splits: DatasetSplits) -> None:
    assert isinstance(splits, DatasetSplits)
    assert splits.image_size == 32 and not splits.multi_label
    for part, n in zip(_sets(splits), SIZES[task]):
        assert isinstance(part, ImageSet)
        assert part.images.dtype == torch.uint8 and part.images.shape == (n, 3, 32, 32)
        assert part.labels.dtype == torch.int64 and part.labels.shape == (n,)
        assert part.images.is_contiguous()
        assert int(part.labels.min()) == 0 and int(part.labels.max()) == splits.num_classes - 1


def test_class_names(task: str, splits: DatasetSplits) -> None:
    names = NAMES[task]
    assert splits.class_names == names
    assert splits.num_classes == len(names) == len(set(names))
    for name in names:
        assert isinstance(name, str) and name == name.strip() and name.isprintable()
        assert any(ch.isalpha() for ch in name) and "_" not in name


def test_every_class_present_and_balanced(splits: DatasetSplits) -> None:
    for part in _sets(splits):
        counts = torch.bincount(part.labels, minlength=splits.num_classes)
        assert int(counts.min()) > 0
        assert int(counts.max() - counts.min()) <= 1  # as balanced as the split size allows


def test_cached_and_deterministic(task: str, splits: DatasetSplits) -> None:
    assert dw.demo_splits(task) is splits  # repeated loads are free
    # re-rendering from the fixed seeds (no cache) gives the very same pixels and labels
    images, labels = dw._generate(task, "test")
    assert torch.equal(images, splits.val.images) and torch.equal(labels, splits.val.labels)


def test_images_are_not_constant_or_repeated(splits: DatasetSplits) -> None:
    for part in _sets(splits):
        flat = part.images.flatten(1).float()
        assert float(flat.std(dim=1).min()) > 5.0  # every image shows something
        assert int(part.images.min()) < 30 and int(part.images.max()) > 225
        sample = part.images[:500].flatten(1)
        assert len(torch.unique(sample, dim=0)) == len(sample)
    # train and test are different draws
    assert not torch.equal(splits.train.images[:100], splits.val.images[:100])


def test_mean_std_match_the_train_images(splits: DatasetSplits) -> None:
    pixels = splits.train.images.permute(1, 0, 2, 3).reshape(3, -1).float() / 255
    mean, std = pixels.mean(dim=1), pixels.std(dim=1)
    assert len(splits.mean) == len(splits.std) == 3
    for c in range(3):
        assert abs(float(mean[c]) - splits.mean[c]) < 0.01
        assert abs(float(std[c]) - splits.std[c]) < 0.01
        assert splits.mean[c] == round(splits.mean[c], 4) and splits.std[c] == round(splits.std[c], 4)


def test_the_two_tasks_have_different_label_spaces() -> None:
    assert len(dw.SHAPES_CLASSES) != len(dw.SIGNS_CLASSES)
    assert not set(dw.SHAPES_CLASSES) & set(dw.SIGNS_CLASSES)
    # every glyph belongs to exactly one sign, and every sign groups several glyphs
    assert len(dw.SIGN_OF_SHAPE) == len(dw.SHAPES_CLASSES)
    per_sign = torch.bincount(torch.tensor(dw.SIGN_OF_SHAPE), minlength=len(dw.SIGNS_CLASSES))
    assert int(per_sign.min()) >= 2


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="shapes"):
        dw.demo_splits("cifar")


def _fourier_features(images: torch.Tensor) -> torch.Tensor:
    """Log magnitude of the grey image's 2-D spectrum: blind to where the glyph sits."""
    grey = images.float().mean(dim=1)
    grey = grey - grey.mean(dim=(1, 2), keepdim=True)
    feats = torch.log1p(torch.fft.rfft2(grey).abs()).flatten(1)
    return (feats - feats.mean(dim=1, keepdim=True)) / feats.std(dim=1, keepdim=True)


def _nearest_class_mean_accuracy(splits: DatasetSplits, n_train: int) -> float:
    x_train = _fourier_features(splits.train.images[:n_train])
    y_train = splits.train.labels[:n_train]
    means = torch.stack([x_train[y_train == c].mean(dim=0) for c in range(splits.num_classes)])
    x_test = _fourier_features(splits.val.images)
    return float((torch.cdist(x_test, means).argmin(dim=1) == splits.val.labels).float().mean())


def test_shapes_are_learnable() -> None:
    """A nearest-class-mean classifier on translation-invariant pixel features beats
    chance (1/12) by far on the source task (it scores about 0.74)."""
    splits = dw.demo_splits("shapes")
    assert _nearest_class_mean_accuracy(splits, 3_000) > 0.4


def test_signs_are_learnable_but_harder() -> None:
    """The target task is learnable from its labels (about 0.54 against a chance of 1/6)
    but harder than the source task for the same simple classifier."""
    signs = _nearest_class_mean_accuracy(dw.demo_splits("signs"), 3_000)
    shapes = _nearest_class_mean_accuracy(dw.demo_splits("shapes"), 3_000)
    assert 0.3 < signs < shapes
