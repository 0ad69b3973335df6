"""Every source format, loaded through the code a user's machine runs, from files
written here in the exact on-disk layout."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from sskt_engine.config import SourceConfig
from sskt_engine.errors import SourceError
from sskt_engine.models import build_architecture
from sskt_engine.sources import SourceEnsemble, build_source, torchvision_cache_file, torchvision_catalog


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home"


def test_torchvision_weights_from_the_torch_home_cache(torch_home):
    weights = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    path = torchvision_cache_file(weights)
    assert str(path).startswith(str(torch_home))
    path.parent.mkdir(parents=True)
    torch.manual_seed(1)
    reference = torchvision.models.mobilenet_v3_small(num_classes=1000)
    torch.save(reference.state_dict(), path)

    source = build_source(SourceConfig(kind="torchvision", arch="mobilenet_v3_small", weights="IMAGENET1K_V1"))
    assert source.num_classes == 1000 and source.input_size == 224
    assert source.mean == (0.485, 0.456, 0.406) and source.class_names[0] == "tench"
    assert not source.module.training
    assert not any(p.requires_grad for p in source.module.parameters())
    x = torch.rand(2, 3, 224, 224)
    reference.eval()
    assert torch.allclose(source.module(x), reference(x), atol=1e-5)
    entry = next(e for e in torchvision_catalog() if e["model"] == "mobilenet_v3_small")
    assert entry["cached"]["IMAGENET1K_V1"] is True and entry["num_classes"] == 1000


def test_missing_torchvision_weights_say_which_file_and_where(torch_home):
    with pytest.raises(SourceError) as info:
        build_source(SourceConfig(kind="torchvision", arch="resnet50", weights="IMAGENET1K_V2"))
    message = str(info.value)
    assert "resnet50-11ad3fa6.pth" in message and str(torch_home / "hub" / "checkpoints") in message


def test_unknown_torchvision_weights_are_named():
    with pytest.raises(SourceError, match="no weights 'IMAGENET9K'"):
        build_source(SourceConfig(kind="torchvision", arch="resnet18", weights="IMAGENET9K"))


def _csail_file(path, classes=365):
    torch.manual_seed(2)
    model = torchvision.models.resnet18(num_classes=classes)
    # the CSAIL Places365 layout: a dict with epoch/arch/best_prec1 and DataParallel keys
    state = {"epoch": 90, "arch": "resnet18", "best_prec1": 54.7,
             "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}
    torch.save(state, path)
    return model


def test_csail_places365_pth_tar(tmp_path):
    path = tmp_path / "resnet18_places365.pth.tar"
    model = _csail_file(path)
    source = build_source(SourceConfig(kind="checkpoint", path=str(path), arch="resnet18", num_classes=365))
    model.eval()
    x = torch.rand(1, 3, 224, 224)
    assert source.num_classes == 365 and torch.allclose(source.module(x), model(x), atol=1e-5)


def test_class_count_inferred_when_not_given(tmp_path):
    path = tmp_path / "places.pth.tar"
    _csail_file(path)
    assert build_source(SourceConfig(kind="checkpoint", path=str(path), arch="resnet18")).num_classes == 365


def test_class_count_mismatch_is_one_sentence(tmp_path):
    path = tmp_path / "places.pth.tar"
    _csail_file(path)
    with pytest.raises(SourceError, match="has 365 output classes, but 1000 were expected; set num_classes to 365"):
        build_source(SourceConfig(kind="checkpoint", path=str(path), arch="resnet18", num_classes=1000))


def test_plain_state_dict_and_safetensors(tmp_path):
    torch.manual_seed(3)
    model = build_architecture("tiny_cnn", 7).eval()
    pt, st = tmp_path / "tiny.pt", tmp_path / "tiny.safetensors"
    torch.save(model.state_dict(), pt)
    save_file(model.state_dict(), st)
    x = torch.rand(2, 3, 32, 32)
    for path in (pt, st):
        source = build_source(SourceConfig(kind="checkpoint", path=str(path), arch="tiny_cnn", num_classes=7))
        assert source.input_size == 32
        assert torch.allclose(source.module(x), model(x), atol=1e-6)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = build_architecture("tiny_cnn", 7).state_dict()
    state.pop("stage1.0.weight")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(SourceError) as info:
        build_source(SourceConfig(kind="checkpoint", path=str(path), arch="tiny_cnn", num_classes=7))
    assert "missing (e.g. stage1.0.weight)" in str(info.value) and "unexpected (e.g. extra.weight)" in str(info.value)


def test_wrong_architecture_is_reported(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(build_architecture("tiny_cnn", 7).state_dict(), path)
    with pytest.raises(SourceError, match="right architecture|does not match"):
        build_source(SourceConfig(kind="checkpoint", path=str(path), arch="small_cnn", num_classes=7))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Payload(marker)}, handle)
    torch_path = tmp_path / "evil2.pt"
    torch.save({"weights": _Payload(marker)}, torch_path)
    for p in (path, torch_path):
        with pytest.raises(SourceError) as info:
            build_source(SourceConfig(kind="checkpoint", path=str(p), arch="tiny_cnn", num_classes=7))
        assert "refused" in str(info.value) and "unpickling" in str(info.value)
    assert not marker.exists()


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(build_architecture("tiny_cnn", 7).state_dict(), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SourceError, match="truncated|not a readable"):
        build_source(SourceConfig(kind="checkpoint", path=str(path), arch="tiny_cnn", num_classes=7))
    with pytest.raises(SourceError, match="does not exist"):
        build_source(SourceConfig(kind="checkpoint", path=str(tmp_path / "no.pt"), arch="tiny_cnn"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00{not json")
    with pytest.raises(SourceError, match="safetensors"):
        build_source(SourceConfig(kind="checkpoint", path=str(bad), arch="tiny_cnn", num_classes=7))


def test_ensemble_resizes_renormalizes_and_stays_frozen(tmp_path):
    seen = {}
    sources = []
    for name, size, mean in (("a", 48, (0.5, 0.5, 0.5)), ("b", 48, (0.5, 0.5, 0.5)), ("c", 32, (0.0, 0.0, 0.0))):
        path = tmp_path / f"{name}.pt"
        torch.save(build_architecture("tiny_cnn", 4).state_dict(), path)
        src = build_source(SourceConfig(kind="checkpoint", path=str(path), arch="tiny_cnn", num_classes=4,
                                        input_size=size, mean=mean, std=(0.25, 0.25, 0.25), name=name))
        src.module.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, a[0].clone()))
        sources.append(src)
    ensemble = SourceEnsemble(sources)
    assert len(ensemble.groups) == 2  # a and b share one resize + normalize
    ensemble.train()
    assert not any(m.training for m in ensemble.modules())
    pixels = torch.full((2, 3, 32, 32), 0.75)
    out = ensemble(pixels)
    assert [o.shape for o in out] == [(2, 4)] * 3 and not out[0].is_inference()
    assert seen["a"].shape[-1] == 48 and seen["c"].shape[-1] == 32
    assert torch.allclose(seen["a"], torch.full_like(seen["a"], (0.75 - 0.5) / 0.25))
    assert torch.allclose(seen["c"], torch.full_like(seen["c"], 0.75 / 0.25))
