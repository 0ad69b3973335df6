"""Video targets (issue 16, model side): the 3D architectures with both auxiliary heads, the
option-A 3D ResNet against the SSKT authors' layout, what sources see of a clip (centre frame,
mean of k frames' soft labels, whole clips for video sources) against hand computations, and
every method for one step on clips."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from sskt_engine.clip_sources import check_sources_fit, clip_frames, frame_positions, mean_soft_labels
from sskt_engine.config import loads_preset
from sskt_engine.data.batches import Batch
from sskt_engine.errors import SourceError, UserInputError
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.models import ARCHITECTURES, build_architecture
from sskt_engine.models.resnet3d import PadShortcut3d
from sskt_engine.models.target import TargetNetwork
from sskt_engine.sources import FrozenSource, SourceEnsemble

SMALL_VIDEO_ARCHS = ("tiny3d", "small3d", "late3d")  # three stages each
VIDEO_ARCHS = (*SMALL_VIDEO_ARCHS, "resnet3d_18", "resnet3d_34", "r3d_18", "mc3_18", "r2plus1d_18")
CLASSES = 5


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _clips(batch: int = 2, frames: int = 4, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, frames, side, side, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- architectures and heads

def test_video_architectures_are_registered_as_clip_networks():
    for name in VIDEO_ARCHS:
        assert ARCHITECTURES.get(name).clip_len > 0, name
    assert ARCHITECTURES.get("resnet3d_18").clip_len == 16 and ARCHITECTURES.get("resnet3d_18").input_size == 112
    assert ARCHITECTURES.get("resnet18").clip_len == 0  # image networks stay image networks


@pytest.mark.parametrize("arch", VIDEO_ARCHS)
def test_both_heads_attach_to_every_video_architecture(arch):
    torch.manual_seed(0)
    backbone = build_architecture(arch, CLASSES)
    backbone.requires_grad_(False)  # only the heads' gradients are checked: keeps the big networks quick
    for head in ("linear", "transfer_module"):
        net = TargetNetwork(backbone, 32, [7, 3], head, clip_len=4)
        layout = net.layout
        assert layout.stage_rank == 5
        assert len(layout.stage_modules) == (3 if arch in SMALL_VIDEO_ARCHS else 4)
        if arch not in SMALL_VIDEO_ARCHS:  # the four residual stages, so frozen_stages k-1 is the authors' ft_begin_index k
            assert [name.split(".")[0] for name in layout.stage_modules] == ["layer1", "layer2", "layer3", "layer4"]
            assert layout.stage_channels == (64, 128, 256, 512)
        out = net(_clips())
        assert out.logits.shape == (2, CLASSES)
        assert [tuple(a.shape) for a in out.aux_logits] == [(2, 7), (2, 3)]
        sum(a.square().sum() for a in out.aux_logits).backward()
        for name, parameter in net.aux_heads.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{head} {name}"
        for handle in net._handles:  # the next head kind attaches to the same backbone
            handle.remove()


def test_transfer_module_on_clips_uses_3d_branches():
    net = TargetNetwork(build_architecture("tiny3d", CLASSES), 32, [4], "transfer_module", clip_len=4)
    convs = [m for m in net.aux_heads.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert convs and all(isinstance(m, nn.Conv3d) for m in convs)


def test_late3d_mixes_frames_only_in_its_last_block():
    """late3d's stem and first two blocks see each frame on its own (the design the video demo
    relies on): changing one frame changes their output at that frame's time step only, while
    the last block spreads it to its neighbours."""
    torch.manual_seed(0)
    net = build_architecture("late3d", CLASSES).eval()
    clips = _clips(1, 8)
    changed = clips.clone()
    changed[:, :, 4] = torch.rand_like(changed[:, :, 4])

    def features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        early = net.layer2(net.layer1(net.stem(x)))  # time 8 -> 4: frame 4 lands at step 2
        return early, net.layer3(early)

    with torch.no_grad():
        (early_a, late_a), (early_b, late_b) = features(clips), features(changed)
    moved = (early_a - early_b).abs().amax(dim=(0, 1, 3, 4))
    assert moved[2] > 0 and torch.count_nonzero(moved) == 1
    assert torch.count_nonzero((late_a - late_b).abs().amax(dim=(0, 1, 3, 4))) == late_a.shape[2]


def test_resnet3d_has_the_authors_parameter_names_and_no_shortcut_parameters():
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        keys = set(build_architecture("resnet3d_18", 400).state_dict())
        blocks34 = {k.split(".")[1] for k in build_architecture("resnet3d_34", 10).state_dict()
                    if k.startswith("layer3.")}
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.bn2.weight",
            "layer4.1.conv2.weight", "fc.weight", "fc.bias"} <= keys
    assert not any("shortcut" in k or "downsample" in k for k in keys)
    assert len(blocks34) == 6  # ResNet-34: 3, 4, 6, 3 blocks


def test_option_a_shortcut_subsamples_and_appends_zero_channels():
    x = torch.arange(2 * 2 * 3 * 4 * 4, dtype=torch.float32).view(2, 2, 3, 4, 4)
    out = PadShortcut3d(2, 5, 2)(x)
    assert out.shape == (2, 5, 2, 2, 2)
    assert torch.equal(out[:, :2], x[:, :, ::2, ::2, ::2])
    assert torch.count_nonzero(out[:, 2:]) == 0


def test_resnet3d_output_does_not_depend_on_clip_size_beyond_its_pooling():
    net = build_architecture("resnet3d_18", CLASSES).eval()
    with torch.no_grad():
        for frames, side in ((16, 48), (5, 40), (1, 16)):
            assert net(_clips(1, frames, side)).shape == (1, CLASSES)


# ----------------------------------------------------------------------------- sources on clips

class MeanColour(nn.Module):
    """A source whose logits are a fixed linear map of the mean colour: easy to compute by hand."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.fc = nn.Linear(3, classes)
        with torch.no_grad():
            self.fc.weight.copy_(torch.arange(3 * classes, dtype=torch.float32).view(classes, 3) / 4 - 1)
            self.fc.bias.copy_(torch.linspace(-0.5, 0.5, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(-2, -1)))


MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)


def _colour_source(frames: int = 1, name: str = "colour") -> FrozenSource:
    source = FrozenSource(name, MeanColour().eval(), 3, 8, MEAN, STD, None, "test")
    source.clip_frames = frames
    return source


def _by_hand(frame: torch.Tensor) -> list[float]:
    """Logits of MeanColour on one [3, H, W] frame of pixels the size the source takes, in plain Python."""
    net = MeanColour()
    colour = [(frame[c].mean().item() - MEAN[c]) / STD[c] for c in range(3)]
    return [sum(net.fc.weight[k, c].item() * colour[c] for c in range(3)) + net.fc.bias[k].item() for k in range(3)]


def test_frame_positions():
    assert frame_positions(8, 1) == [4] and frame_positions(7, 1) == [3]  # the authors' T // 2
    assert frame_positions(8, 2) == [2, 6]
    assert frame_positions(8, 4) == [1, 3, 5, 7]
    assert frame_positions(8, 3) == [1, 4, 6]
    assert frame_positions(4, 9) == [0, 1, 2, 3]  # never more frames than the clip has


def test_clip_frames_keeps_each_clips_frames_together():
    pixels = _clips(3, 8, 4)
    frames = clip_frames(pixels, 2)
    assert frames.shape == (6, 3, 4, 4)
    assert torch.equal(frames[2], pixels[1, :, 2]) and torch.equal(frames[5], pixels[2, :, 6])


def test_an_image_source_labels_a_clip_from_its_centre_frame():
    pixels = _clips(2, 5, 8)
    logits = SourceEnsemble([_colour_source()])(pixels)[0]
    for b in range(2):
        assert logits[b].tolist() == pytest.approx(_by_hand(pixels[b, :, 2]), abs=1e-5)


def test_mean_of_frames_is_the_mean_of_the_soft_labels():
    pixels = _clips(2, 8, 8, seed=3)
    logits = SourceEnsemble([_colour_source(frames=4)])(pixels)[0]
    for b in range(2):
        per_frame = [_by_hand(pixels[b, :, t]) for t in (1, 3, 5, 7)]
        softmax = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in per_frame]
        mean = [sum(row[k] for row in softmax) / 4 for k in range(3)]
        assert torch.softmax(logits[b], 0).tolist() == pytest.approx(mean, abs=1e-6)
        assert logits[b].tolist() == pytest.approx([math.log(m) for m in mean], abs=1e-5)


def test_mean_soft_labels_stays_finite_for_confident_frames():
    logits = torch.tensor([[500.0, 0.0], [0.0, 500.0]])
    out = mean_soft_labels(logits, 2)
    assert torch.isfinite(out).all()
    assert torch.softmax(out, 1).tolist()[0] == pytest.approx([0.5, 0.5])


def test_sources_with_different_frame_counts_share_one_ensemble():
    pixels = _clips(2, 6, 8, seed=1)
    centre, spread = SourceEnsemble([_colour_source(1, "a"), _colour_source(3, "b")])(pixels)
    assert torch.allclose(centre, SourceEnsemble([_colour_source(1)])(pixels)[0])
    assert torch.allclose(spread, SourceEnsemble([_colour_source(3)])(pixels)[0])
    assert not torch.allclose(centre, spread)


def test_a_video_source_sees_the_whole_clip_resized():
    torch.manual_seed(0)
    module = build_architecture("tiny3d", 4).eval()
    source = FrozenSource("video", module, 4, 16, MEAN, STD, None, "test", clip_len=8)
    pixels = _clips(2, 6, 24)
    got = SourceEnsemble([source])(pixels)[0]
    resized = torch.nn.functional.interpolate(pixels, size=(6, 16, 16), mode="trilinear", align_corners=False)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1, 1), torch.tensor(STD).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        expected = module((resized - mean) / std)
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_video_source_is_refused_on_image_data():
    source = FrozenSource("video", build_architecture("tiny3d", 4), 4, 16, MEAN, STD, None, "test", clip_len=8)
    with pytest.raises(SourceError, match="'video' is a video network"):
        check_sources_fit([source], 0)
    check_sources_fit([source], 8)
    check_sources_fit([_colour_source()], 0)


def test_clip_frames_is_a_source_preset_key():
    cfg = loads_preset("sources: [{kind: torchvision, arch: resnet50, clip_frames: 4}]\nmethod: {name: sskt}")
    assert cfg.sources[0].clip_frames == 4
    with pytest.raises(Exception, match="clip_frames"):
        loads_preset("sources: [{kind: torchvision, arch: resnet50, clip_frames: 0}]")


# ----------------------------------------------------------------------------- methods, one step on clips

PRESET = """\
name: video
target: {arch: tiny3d}
data: {dataset: demo-video}
method: {name: supervised}
train: {batch_size: 4, lr: 0.05, device: cpu, seed: 0}
"""


def _context(method: str, sources: list[FrozenSource] | None = None, *overrides: str) -> MethodContext:
    extra = [f"sources=[{{kind: run, path: x}}{', {kind: run, path: y}' * (len(sources or []) - 1)}]"] \
        if sources else []
    cfg = loads_preset(PRESET, overrides=[f"method.name={method}", *extra, *overrides])
    ensemble = SourceEnsemble(sources) if sources else None
    return MethodContext(cfg, 3, ("a", "b", "c"), 16, torch.device("cpu"), ensemble, clip_len=4)


def _clip_batch() -> Batch:
    pixels = _clips(4, 4, 16, seed=2)
    return Batch(pixels, (pixels - 0.5) / 0.25, torch.tensor([0, 1, 2, 0]), torch.arange(4))


def _image_source(classes: int, name: str = "shapes") -> FrozenSource:
    return FrozenSource(name, build_architecture("tiny_cnn", classes).eval(), classes, 32, MEAN, STD, None, "test")


@pytest.mark.parametrize("method, sources, overrides", [
    ("supervised", [], ()),
    ("sskt", [("shapes", 7)], ()),
    ("sskt", [("shapes", 7), ("places", 4)], ("method.head=transfer_module",)),
    ("kd", [("teacher", 3)], ()),
    ("dml", [], ()),
])
def test_one_training_step_on_clips(method, sources, overrides):
    torch.manual_seed(0)
    built = [_image_source(classes, name) for name, classes in sources]
    trainer_method = METHODS.get(method).build(_context(method, built, *overrides))
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in trainer_method.networks.items()}
    out = trainer_method.train_step(_clip_batch(), 0)
    assert set(trainer_method.loss_names()) == set(out.losses)
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert out.logits.shape == (4, 3)
    if method == "sskt":
        assert all(out.losses[f"aux/{name}"] > 0 for name, _ in sources)
    for name, net in trainer_method.networks.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    predictions = trainer_method.predict(_clip_batch().images)
    assert all(p.shape == (4, 3) for p in predictions.values())


def test_maxl_and_fitnets_refuse_clips_in_one_sentence():
    with pytest.raises(UserInputError, match="MAXL does not train on video clips"):
        METHODS.get("maxl").build(_context("maxl"))
    with pytest.raises(UserInputError, match="FitNets does not train on video clips"):
        METHODS.get("fitnets").build(_context("fitnets", [_image_source(7)]))


# ----------------------------------------------------------------------------- the paper's video presets

def _paper_video_presets():
    from sskt_engine.resources import resource_path

    folder = resource_path("presets", "paper")
    return sorted(folder.glob("paper-ucf101-*.yaml")) + sorted(folder.glob("paper-hmdb51-*.yaml"))


def test_every_paper_video_row_has_a_preset():
    names = {path.stem for path in _paper_video_presets()}
    assert names == {f"paper-{data}-resnet3d18-{init}-{src}" for data in ("ucf101", "hmdb51")
                     for init in ("scratch", "finetune") for src in ("p", "i", "pi")}


@pytest.mark.parametrize("path", _paper_video_presets(), ids=lambda p: p.stem)
def test_paper_video_presets_validate(path):
    from sskt_engine.config import load_preset

    cfg = load_preset(path)
    assert cfg.name == path.stem and cfg.target.arch == "resnet3d_18"
    assert cfg.data.dataset == path.stem.split("-")[1] and cfg.data.clip_len == 16 and cfg.data.image_size == 112
    assert cfg.method.name == "sskt" and cfg.method.head == "transfer_module"
    names = [source.name for source in cfg.sources]
    assert names == {"p": ["places365"], "i": ["imagenet"], "pi": ["places365", "imagenet"]}[path.stem.split("-")[-1]]
    if "-finetune-" in path.stem:
        assert cfg.target.init == "checkpoint" and cfg.target.frozen_stages == 3
        # the Kinetics file's own input scale: 0-255 pixels minus the ActivityNet mean
        assert [round(m * 255, 2) for m in cfg.target.mean] == [114.78, 107.74, 99.48]
        assert [round(1 / s) for s in cfg.target.std] == [255, 255, 255]
    else:
        assert cfg.target.init == "scratch" and cfg.target.frozen_stages == 0


def test_a_preset_pairs_video_networks_with_video_data():
    from sskt_engine.errors import PresetError

    with pytest.raises(PresetError, match="tiny3d is a video network .* but demo holds images"):
        loads_preset("target: {arch: tiny3d}\ndata: {dataset: demo}\nmethod: {name: supervised}")
    with pytest.raises(PresetError, match="resnet20 is an image network, but demo-video holds video clips"):
        loads_preset("target: {arch: resnet20}\ndata: {dataset: demo-video}\nmethod: {name: supervised}")
    assert loads_preset("target: {arch: tiny3d}\ndata: {dataset: demo-video}\nmethod: {name: supervised}")


def test_every_network_of_a_method_must_fit_the_data():
    with pytest.raises(UserInputError, match="architecture tiny_cnn is an image network; the data are video clips"):
        METHODS.get("dml").build(_context("dml", [], "method.peer_archs=[tiny3d, tiny_cnn]"))
