"""Feature taps (forward hooks gathered by module name, for the target and the frozen sources)
and the feature-based method built on them, FitNets hints: shapes, hook removal, sources under
inference mode and autocast, the hint loss going down, refusals, and the study CLI with it."""

from __future__ import annotations

import csv
import io

import pytest
import torch
import torch.nn.functional as F
import torchvision

from sskt_engine.cli import main
from sskt_engine.config import loads_preset, save_preset
from sskt_engine.data.batches import Batch
from sskt_engine.errors import UserInputError
from sskt_engine.feature_taps import FeatureTaps, feature_shapes, stage_names
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.methods.fitnets import match_resolution
from sskt_engine.models import build_architecture
from sskt_engine.models.target import TargetNetwork
from sskt_engine.runs import RunFolder
from sskt_engine.sources import FrozenSource, SourceEnsemble
from sskt_engine.study import load_study
from sskt_engine.trainer import Trainer

TINY = """\
name: taps
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4, val_split: 0.1}
method: {name: fitnets}
sources: [{kind: run, path: x}]
train: {epochs: 1, batch_size: 16, lr: 0.05, schedule: constant, seed: 2, log_every: 1, device: cpu}
"""


def _source(name: str = "src", arch: str = "small_cnn", classes: int = 12, side: int = 48) -> FrozenSource:
    module = build_architecture(arch, classes).eval().requires_grad_(False)
    return FrozenSource(name, module, classes, side, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), None, "test")


def _context(*overrides: str, sources: SourceEnsemble) -> MethodContext:
    cfg = loads_preset(TINY, overrides=list(overrides))
    return MethodContext(cfg, 6, tuple(f"c{i}" for i in range(6)), 32, torch.device("cpu"), sources)


def _batch(n: int = 16, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 3, 32, 32, generator=generator)
    return Batch(pixels, (pixels - 0.5) / 0.25, torch.randint(0, 6, (n,), generator=generator), torch.arange(n))


def _hook_count(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


# ----------------------------------------------------------------------------- the taps

def test_stage_names_are_found_generically():
    resnet = torchvision.models.resnet18(num_classes=10)
    # the last module at each resolution: a strided stage is opened up to its last block
    assert stage_names(resnet, 64) == ("layer1", "layer2.1", "layer3.1", "layer4.1")
    assert feature_shapes(resnet, ["layer2", "layer4"], 64) == {"layer2": (128, 8, 8), "layer4": (512, 2, 2)}
    assert resnet.training  # the probing passes restore the mode


def test_taps_return_the_target_and_source_features_with_their_shapes():
    torch.manual_seed(0)
    target = TargetNetwork(build_architecture("tiny_cnn", 6), 32)
    source = _source()
    ensemble = SourceEnsemble([source])
    t_names = stage_names(target.backbone, 32)
    s_names = stage_names(source.module, source.input_size)
    t_shapes = feature_shapes(target.backbone, t_names, 32)
    s_shapes = feature_shapes(source.module, s_names, 48)
    assert [t_shapes[n] for n in t_names] == [(8, 32, 32), (16, 16, 16), (32, 8, 8)]
    assert [s_shapes[n] for n in s_names] == [(32, 48, 48), (64, 24, 24), (128, 12, 12)]  # resized to 48 px

    batch = _batch(4)
    with FeatureTaps(target.backbone, t_names) as t_taps, FeatureTaps(source.module, s_names) as s_taps:
        with t_taps.capture() as t_feats, s_taps.capture() as s_feats:
            target(batch.images)
            ensemble(batch.pixels)
    assert {n: tuple(t_feats[n].shape) for n in t_names} == {n: (4, *t_shapes[n]) for n in t_names}
    assert {n: tuple(s_feats[n].shape) for n in s_names} == {n: (4, *s_shapes[n]) for n in s_names}
    assert all(t.grad_fn is not None for t in t_feats.values())  # the target's stay in the graph
    # the sources' ran under inference_mode; after the capture they are ordinary tensors
    assert not any(t.is_inference() or t.requires_grad for t in s_feats.values())


def test_source_features_under_half_precision_autocast_can_be_loss_targets():
    torch.manual_seed(0)
    source = _source()
    ensemble = SourceEnsemble([source], precision="bfloat16")  # autocast on the CPU too
    name = stage_names(source.module, 48)[-1]
    student = torch.zeros(4, 128, 12, 12, requires_grad=True)
    with FeatureTaps(source.module, [name]) as taps:
        with taps.capture() as feats:
            ensemble(_batch(4).pixels)
    assert feats[name].dtype == torch.float32 and not feats[name].is_inference()
    F.mse_loss(student, feats[name]).backward()  # an inference tensor would refuse this
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_taps_record_only_inside_capture_and_close_removes_every_hook():
    torch.manual_seed(0)
    net = build_architecture("tiny_cnn", 6)
    before = _hook_count(net)
    taps = FeatureTaps(net, ["stage2", "stage3"])
    assert _hook_count(net) == before + 2
    with taps.capture() as feats:
        pass
    net(torch.zeros(1, 3, 32, 32))  # outside a capture: nothing kept
    assert feats == {}
    taps.close()
    taps.close()  # idempotent
    assert _hook_count(net) == before and taps.closed
    with pytest.raises(RuntimeError, match="closed"):
        with taps.capture():
            pass


@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated")
def test_taps_name_the_missing_layer_and_refuse_compiled_networks():
    net = build_architecture("tiny_cnn", 6)
    with pytest.raises(UserInputError, match=r"the target has no layer named 'stage4'; did you mean stage3, "
                                             r"stage2, stage1\?"):
        FeatureTaps(net, ["stage4"], "the target")
    scripted = torch.jit.script(net.eval())
    with pytest.raises(UserInputError, match="TorchScript program"):
        FeatureTaps(scripted, ["stage1"], "source 'compiled'")


# ----------------------------------------------------------------------------- FitNets hints

def test_match_resolution_pools_larger_maps_and_upsamples_smaller_ones():
    big = torch.arange(16.0).view(1, 1, 4, 4)
    assert match_resolution(big, (2, 2)).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert match_resolution(big, (4, 4)) is big
    assert match_resolution(torch.ones(1, 2, 3, 3), (6, 6)).shape == (1, 2, 6, 6)


def test_fitnets_hint_loss_goes_down_and_only_the_target_side_learns():
    torch.manual_seed(0)
    source = _source()
    method = METHODS.get("fitnets").build(_context(sources=SourceEnsemble([source])))
    [pair] = method.pairs
    assert (pair.target_shape, pair.source_shape) == ((32, 8, 8), (128, 12, 12))  # adapter and pooling needed
    frozen = [p.detach().clone() for p in source.module.parameters()]
    adapter_before = [p.detach().clone() for p in method.adapters.parameters()]
    batch = _batch()
    hints = [method.train_step(batch, step).losses["hint/src"].item() for step in range(25)]
    assert hints[-1] < 0.8 * hints[0], hints
    assert all(torch.equal(a, b) for a, b in zip(frozen, source.module.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(adapter_before, method.adapters.parameters()))
    assert method.loss_names() == ["loss", "target", "hint/src"]
    method.close()
    assert _hook_count(method.net) == 0 and _hook_count(source.module) == 0


def test_fitnets_pairs_several_stages_and_sources_and_round_trips_its_state():
    torch.manual_seed(0)
    ensemble = SourceEnsemble([_source("a"), _source("b", "tiny_cnn", 20, 32)])
    ctx = _context("method.stages=2", sources=ensemble)
    method = METHODS.get("fitnets").build(ctx)
    assert [(p.source, p.target_shape, p.source_shape) for p in method.pairs] == [
        (0, (16, 16, 16), (64, 24, 24)), (0, (32, 8, 8), (128, 12, 12)),
        (1, (16, 16, 16), (16, 16, 16)), (1, (32, 8, 8), (32, 8, 8))]
    out = method.train_step(_batch(), 0)
    assert set(out.losses) == {"loss", "target", "hint/a", "hint/b"}
    expected = out.losses["target"] + out.losses["hint/a"] + out.losses["hint/b"]
    assert out.losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    state = method.state_dict()
    torch.manual_seed(1)
    other = METHODS.get("fitnets").build(ctx)
    other.load_state_dict(state)
    for a, b in zip(method.adapters.state_dict().values(), other.adapters.state_dict().values()):
        assert torch.equal(a, b)

    named = METHODS.get("fitnets").build(_context("method.target_layers=[stage2]", "method.source_layers=[stage2]",
                                                  sources=SourceEnsemble([_source()])))
    assert [(p.target_layer, p.source_layer, p.source_shape) for p in named.pairs] == [
        ("stage2", "stage2", (64, 24, 24))]


@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated")
def test_fitnets_refuses_what_it_cannot_pair():
    torch.manual_seed(0)
    with pytest.raises(UserInputError, match="method.stages is 4, but the target has only 3 stage"):
        METHODS.get("fitnets").build(_context("method.stages=4", sources=SourceEnsemble([_source()])))
    with pytest.raises(UserInputError, match="source 'src' has no layer named 'layer3'"):
        METHODS.get("fitnets").build(_context("method.source_layers=[layer3]", sources=SourceEnsemble([_source()])))
    with pytest.raises(UserInputError, match="one source layer per target layer"):
        METHODS.get("fitnets").build(_context("method.target_layers=[stage2, stage3]",
                                              "method.source_layers=[stage3]", sources=SourceEnsemble([_source()])))
    compiled = _source("compiled")
    compiled.module = torch.jit.script(compiled.module)
    with pytest.raises(UserInputError, match="cannot take hints from source 'compiled': it is a TorchScript"):
        METHODS.get("fitnets").build(_context(sources=SourceEnsemble([compiled])))


# ----------------------------------------------------------------------------- the study CLI

def test_the_study_cli_compares_fitnets_with_supervised(tmp_path, capsys):
    plain = loads_preset(TINY, overrides=["method.name=supervised", "sources=[]", "name=shapes",
                                          "data.dataset=demo-shapes"])
    shapes = Trainer(plain, tmp_path / "models").run()
    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(TINY, overrides=["method.name=supervised",
                                              f"sources=[{{kind: run, path: '{shapes.path}', name: shapes}}]"]),
                preset)
    code = main(["compare", str(preset), "--methods", "supervised,fitnets", "--seeds", "1", "--runs-dir",
                 str(tmp_path / "runs"), "--set", "fitnets:method.hint_weight=0.5"])
    assert code == 0
    study = next((tmp_path / "runs" / "studies").iterdir())
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO((study / "table.csv").read_text()))}
    assert list(rows) == ["supervised", "fitnets"] and rows["fitnets"]["status"] == "ok"
    configs = {r["method"]: RunFolder(r["run_path"]).config() for r in load_study(study)["runs"]}
    assert configs["fitnets"].method.hint_weight == 0.5 and configs["fitnets"].sources[0].name == "shapes"
    assert configs["supervised"].sources == ()
    capsys.readouterr()
