"""Places365 sources: the CSAIL checkpoint layout, DenseNet's old key names, the wideresnet18,
the shipped category names, and the one sentence for a missing file."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from sskt_engine import places365
from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.errors import SourceError
from sskt_engine.models.wideresnet_places365 import PlacesWideResNet18
from sskt_engine.resources import resource_path
from sskt_engine.sources import build_source

torch.set_num_threads(1)


def _save_csail(path, model: torch.nn.Module, arch: str, rename=lambda key: key):
    """The authors' layout: a pre-1.6 (non-zip) torch.save pickle of {'epoch', 'arch', 'state_dict',
    'best_prec1'}, the state_dict saved from DataParallel (``module.`` prefixes)."""
    state = {f"module.{rename(k)}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 90, "arch": arch, "state_dict": state, "best_prec1": 54.6}, path,
               _use_new_zipfile_serialization=False)
    return path


def _old_densenet_name(key: str) -> str:
    """torchvision < 0.3 named DenseNet layers norm.1 / conv.2: undo today's names."""
    for part in ("norm", "relu", "conv"):
        for index in ("1", "2"):
            key = key.replace(f".{part}{index}.", f".{part}.{index}.")
    return key


def test_the_shipped_category_names_are_the_authors_file():
    path = resource_path("places365", "categories_places365.txt")
    # MD5 of categories_places365.txt as the CSAIL repository publishes it
    assert hashlib.md5(path.read_bytes()).hexdigest() == "06c963b85866bd0649f97cb43dd16673"
    names = places365.category_names()
    assert len(names) == 365 and len(set(names)) == 365
    assert names[0] == "airfield" and names[8] == "apartment_building/outdoor" and names[-1] == "zen_garden"


def test_wideresnet18_checkpoint_from_the_places365_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(places365.ENV_FOLDER, str(tmp_path))
    original = PlacesWideResNet18(365).eval()
    _save_csail(tmp_path / "wideresnet18_places365.pth.tar", original, "wideresnet18")
    cfg = loads_preset("sources: [{kind: places365, arch: wideresnet18}]\nmethod: {name: sskt}\n").sources[0]
    source = build_source(cfg)
    assert source.name == "places365:wideresnet18" and cfg.display_name() == "places365:wideresnet18"
    assert (source.num_classes, source.input_size) == (365, 224)
    assert source.class_names[0] == "airfield" and len(source.class_names) == 365
    assert not source.module.training and not any(p.requires_grad for p in source.module.parameters())
    x = torch.rand(2, 3, 224, 224)
    assert torch.allclose(source.module(x), original(x), atol=1e-5)
    shapes = []
    source.module.layer4.register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape)) and None)
    source.module(x)
    assert shapes[0][-2:] == (14, 14)  # the authors' "wide" last stage: stride 1


def test_resnet18_checkpoint_from_a_path(tmp_path):
    original = torchvision.models.resnet18(num_classes=365).eval()
    path = _save_csail(tmp_path / "mine.pth.tar", original, "resnet18")
    source = build_source(SourceConfig(kind="places365", arch="resnet18", path=str(path), input_size=112))
    x = torch.rand(1, 3, 112, 112)
    assert torch.allclose(source.module(x), original(x), atol=1e-5)
    assert source.input_size == 112 and "Places365 resnet18" in source.origin


def test_densenet_checkpoint_with_the_old_key_names(tmp_path, monkeypatch):
    # A narrow DenseNet stands in for densenet161 (same module names, a fraction of the size);
    # the renames are checked on densenet161's real key set below.
    def small_densenet(num_classes):
        return torchvision.models.DenseNet(growth_rate=4, block_config=(1, 2, 1, 1), num_init_features=8,
                                           num_classes=num_classes)

    monkeypatch.setitem(places365.ARCHITECTURES, "densenet161", small_densenet)
    original = small_densenet(365).eval()
    path = _save_csail(tmp_path / "densenet161_places365.pth.tar", original, "densenet161", _old_densenet_name)
    raw = torch.load(path, weights_only=True)["state_dict"]
    assert "module.features.denseblock1.denselayer1.norm.1.weight" in raw  # really the old names
    source = build_source(SourceConfig(kind="places365", arch="densenet161", path=str(path)))
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(source.module(x), original(x), atol=1e-5)


def test_every_densenet161_key_comes_back_from_its_old_name():
    keys = torchvision.models.densenet161(num_classes=365).state_dict()
    old = {_old_densenet_name(k): v for k, v in keys.items()}
    assert sum(k != _old_densenet_name(k) for k in keys) > 400
    assert list(places365.rename_old_densenet_keys(old)) == list(keys)


def test_a_missing_checkpoint_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(places365.ENV_FOLDER, str(tmp_path / "weights"))
    with pytest.raises(SourceError, match=r"resnet50_places365\.pth\.tar is not on this machine; download "
                       r"resnet50_places365\.pth\.tar from http://places2\.csail\.mit\.edu/models_places365/"
                       r"resnet50_places365\.pth\.tar and put it in .*weights \(or set SSKT_PLACES365_DIR"):
        build_source(SourceConfig(kind="places365", arch="resnet50"))
    with pytest.raises(SourceError, match="arch must be one of resnet18, resnet50, densenet161, wideresnet18"):
        build_source(SourceConfig(kind="places365", arch="alexnet"))


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    # (resnet18 and wideresnet18 weights have the same shapes: only the strides differ)
    path = _save_csail(tmp_path / "r18.pth.tar", torchvision.models.resnet18(num_classes=365), "resnet18")
    with pytest.raises(SourceError, match=r"r18\.pth\.tar \(Places365 resnet50\): .*is it the right architecture"):
        build_source(SourceConfig(kind="places365", arch="resnet50", path=str(path)))


def test_the_default_folder_is_in_the_user_data_folder(monkeypatch):
    monkeypatch.delenv(places365.ENV_FOLDER, raising=False)
    assert places365.places365_dir().name == "places365" and "sskt-studio" in str(places365.places365_dir())
