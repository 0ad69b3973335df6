"""Target initialisation (torchvision cache, weights file, earlier run) and frozen first stages."""

from __future__ import annotations

import pytest
import torch

from sskt_engine import events as ev
from sskt_engine.config import TargetConfig, loads_preset
from sskt_engine.errors import PresetError, SourceError
from sskt_engine.models import build_architecture
from sskt_engine.run_checkpoint import RunCheckpoint
from sskt_engine.target_init import (freeze_first_stages, initialise_backbone, read_initial_weights,
                                     torchvision_weights_file)
from sskt_engine.trainer import Trainer

torch.set_num_threads(1)

FINE_TUNE = """\
name: fine-tune
target: {arch: resnet20, init: checkpoint, path: PATH, frozen_stages: 1}
data: {dataset: demo, labels_per_class: 4}
method: {name: supervised}
train: {epochs: 1, batch_size: 8, lr: 0.05, seed: 1, device: cpu, log_every: 1}
"""


def _csail_style_file(path, state, legacy=True):
    """How the CSAIL and 3D-ResNets authors saved weights: a pickle of a dict holding a DataParallel
    state_dict (``module.`` prefixes) next to plain numbers."""
    torch.save({"epoch": 90, "arch": "x", "best_prec1": 50.0,
                "state_dict": {f"module.{k}": v for k, v in state.items()}},
               path, _use_new_zipfile_serialization=not legacy)
    return path


def _same(a: dict, b: dict, keys) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


def test_torchvision_weights_come_from_the_cache_and_the_classifier_is_refitted(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    member, path = torchvision_weights_file("mobilenet_v3_small", "IMAGENET1K_V1")
    assert path.parent == tmp_path / "hub" / "checkpoints"
    target = TargetConfig(arch="mobilenet_v3_small", init="torchvision", weights="IMAGENET1K_V1")
    with pytest.raises(SourceError, match=f"{path.name}.*not on this machine.*{member.url}.*TORCH_HOME"):
        read_initial_weights(target)
    pretrained = build_architecture("mobilenet_v3_small", 1000)  # stand-in for the ImageNet file
    path.parent.mkdir(parents=True)
    torch.save(pretrained.state_dict(), path)
    backbone = build_architecture("mobilenet_v3_small", 6)
    notes = initialise_backbone(backbone, target)
    assert notes[0] == "target starts from torchvision mobilenet_v3_small IMAGENET1K_V1"
    assert "1000 classes" in notes[1] and "fit 6 classes and starts fresh" in notes[1]
    loaded, original = backbone.state_dict(), pretrained.state_dict()
    head = {"classifier.3.weight", "classifier.3.bias"}
    assert _same(loaded, original, [k for k in loaded if k not in head])
    assert loaded["classifier.3.weight"].shape == (6, 1024)


@pytest.mark.parametrize("legacy", [True, False])
def test_a_weights_file_in_the_csail_layout_loads_through_the_safe_loader(tmp_path, legacy):
    source = build_architecture("resnet20", 6).state_dict()
    path = _csail_style_file(tmp_path / "w.pth.tar", source, legacy)
    backbone = build_architecture("resnet20", 6)
    notes = initialise_backbone(backbone, TargetConfig(arch="resnet20", init="checkpoint", path=str(path)))
    assert notes == [f"target starts from file {path}"]  # same class count: the classifier is loaded too
    assert _same(backbone.state_dict(), source, source)


def test_weights_of_another_architecture_are_refused_in_one_sentence(tmp_path):
    path = _csail_style_file(tmp_path / "w.pth.tar", build_architecture("resnet20", 6).state_dict())
    with pytest.raises(SourceError, match=r"do not fit its architecture: .*missing \(e\.g\. layer1\.3"):
        initialise_backbone(build_architecture("resnet32", 6),
                            TargetConfig(arch="resnet32", init="checkpoint", path=str(path)))


def test_a_file_that_needs_unsafe_unpickling_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": build_architecture("tiny_cnn", 6).state_dict(), "why": SourceError("x")}, path)
    with pytest.raises(SourceError, match="unsafe unpickling"):
        initialise_backbone(build_architecture("tiny_cnn", 6),
                            TargetConfig(arch="tiny_cnn", init="checkpoint", path=str(path)))


def test_freeze_first_stages_names_the_stem_and_the_stages_in_forward_order():
    backbone = build_architecture("resnet18", 4)
    stages = ("layer1", "layer2.1", "layer3.1", "layer4.1")
    frozen = freeze_first_stages(backbone, 1, stages, torch.zeros(1, 3, 64, 64))
    assert frozen[:2] == ("conv1", "bn1") and frozen[-1] == "layer1.1.bn2" and len(frozen) == 10
    assert all(not p.requires_grad for n, p in backbone.named_parameters() if n.startswith(("conv1", "layer1")))
    assert all(p.requires_grad for n, p in backbone.named_parameters() if n.startswith(("layer2", "fc")))
    with pytest.raises(Exception, match="frozen_stages is 5, but the target has 4 stages"):
        freeze_first_stages(backbone, 5, stages, torch.zeros(1, 3, 64, 64))


def test_fine_tuning_run_keeps_frozen_stages_and_their_statistics_and_trains_the_rest(tmp_path):
    start = build_architecture("resnet20", 6).state_dict()
    path = _csail_style_file(tmp_path / "start.pth.tar", start)
    seen: list = []
    folder = Trainer(loads_preset(FINE_TUNE.replace("PATH", str(path))), tmp_path / "runs", seen.append).run()
    assert folder.summary().status == "finished"
    notes = [e.message for e in seen if isinstance(e, ev.LogMessage) and e.level == "info"]
    assert f"target starts from file {path}" in notes
    trained = RunCheckpoint.read(folder.checkpoint_path("last"), "last").backbone_weights("target")
    stem_and_stage1 = [k for k in start if k.startswith(("conv1.", "bn1.", "layer1."))]
    assert any(k.endswith("running_mean") for k in stem_and_stage1)
    assert _same(trained, start, stem_and_stage1)  # weights and BatchNorm statistics unchanged
    later = [k for k in start if k.startswith("layer3.") and k.endswith("conv1.weight")]
    assert not _same(trained, start, later)


def test_a_run_can_start_from_an_earlier_run(tmp_path):
    first = Trainer(loads_preset(FINE_TUNE.replace("PATH", "unused"), overrides=[
        "target.init=scratch", "target.frozen_stages=0"]), tmp_path / "runs").run()
    weights = RunCheckpoint.read(first.checkpoint_path("last"), "last").backbone_weights("target")
    backbone = build_architecture("resnet20", 6)
    notes = initialise_backbone(backbone, TargetConfig(arch="resnet20", init="run", path=str(first.path),
                                                       checkpoint="last"))
    assert notes == [f"target starts from run {first.path.name} (last)"]
    assert _same(backbone.state_dict(), weights, weights)
    with pytest.raises(SourceError, match="trained a resnet20, but the target is a resnet32"):
        read_initial_weights(TargetConfig(arch="resnet32", init="run", path=str(first.path)))


def test_the_preset_check_refuses_init_without_path_and_freezing_random_weights():
    with pytest.raises(PresetError, match="target.path: target.init checkpoint needs the weights file's path"):
        loads_preset("target: {init: checkpoint}\nmethod: {name: supervised}\n")
    with pytest.raises(PresetError, match="target.frozen_stages: freezing stages of randomly initialised"):
        loads_preset("target: {frozen_stages: 2}\nmethod: {name: supervised}\n")
