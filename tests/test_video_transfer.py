"""Video targets end to end (issue 16, model side): a 3D target trained with SSKT by an image source
through the real Trainer on a tiny in-memory clip set, its export to every format verified on
clips, ``sskt predict`` on a frame folder and a video file, a trained 3D network as a source
(checkpoint, run and compiled kinds), and target initialisation from a Kinetics-400 checkpoint in
the 3D-ResNets layout and from torchvision's video weights in a TORCH_HOME cache, with the
authors' ``ft_begin_index`` freezing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.data.clips import ClipSet
from sskt_engine.data.sets import DatasetSplits
from sskt_engine.export import export_run, load_exported
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.models import build_architecture
from sskt_engine.predict import Predictor
from sskt_engine.registry import DATASETS, DatasetInfo
from sskt_engine.sources import SourceEnsemble, build_source
from sskt_engine.trainer import Trainer

CLIP_LEN, SIDE, CLASSES = 4, 16, 3
MEAN, STD = (0.45, 0.4, 0.35), (0.25, 0.25, 0.25)


def _clip_set(n: int, seed: int) -> ClipSet:
    """Clips whose class sets their brightness, so a few steps learn something; 6 frames stored."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    noise = torch.randint(0, 60, (n, 6, 3, SIDE, SIDE), generator=generator)
    clips = (noise + 80 * labels.view(n, 1, 1, 1, 1)).clamp(0, 255).to(torch.uint8)
    return ClipSet(clips, labels)


def _load_test_clips(cfg) -> DatasetSplits:
    return DatasetSplits(train=_clip_set(12, 0), val=_clip_set(6, 1), class_names=("dim", "mid", "bright"),
                         mean=MEAN, std=STD, image_size=SIDE, clip_len=cfg.clip_len or CLIP_LEN)


@pytest.fixture(scope="module", autouse=True)
def test_clips_dataset():
    from sskt_engine import catalog

    catalog.load_builtins()
    DATASETS.add(DatasetInfo(name="test-clips", load=_load_test_clips, needs_root=False, video=True,
                             description="tiny in-memory clips for the video tests"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    DATASETS.remove("test-clips")


@pytest.fixture(scope="module")
def image_source(tmp_path_factory) -> str:
    """A 2D checkpoint source with 5 classes of its own (the shipped shapes source plays this part
    in the demo)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("source") / "shapes.pt"
    torch.save({"state_dict": build_architecture("tiny_cnn", 5).state_dict(), "meta": {"arch": "tiny_cnn"}}, path)
    return str(path)


PRESET = """\
name: video-sskt
target: {arch: tiny3d}
sources: [{kind: checkpoint, arch: tiny_cnn, path: SOURCE, num_classes: 5, input_size: 32}]
data: {dataset: test-clips}
method: {name: sskt, head: transfer_module}
train: {epochs: 2, batch_size: 4, lr: 0.05, device: cpu, log_every: 1, seed: 0, milestones: [1]}
"""


@pytest.fixture(scope="module")
def sskt_run(tmp_path_factory, image_source):
    cfg = loads_preset(PRESET.replace("SOURCE", image_source))
    return Trainer(cfg, tmp_path_factory.mktemp("runs")).run()


def test_sskt_trains_a_3d_target_from_an_image_source(sskt_run):
    summary = sskt_run.summary()
    assert summary.status == "finished" and summary.epochs_completed == 2
    assert summary.final_score is not None and 0.0 <= summary.final_score <= 1.0
    from sskt_engine.run_checkpoint import RunCheckpoint

    checkpoint = RunCheckpoint.read(sskt_run.checkpoint_path("last"), "test")
    assert checkpoint.meta.to_dict()["clip_len"] == CLIP_LEN
    assert any(k.startswith("aux_heads.0.branches") for k in checkpoint.models["target"])


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript", "onnx"])
def test_export_of_a_video_network_is_verified_on_clips(sskt_run, tmp_path, fmt):
    result = export_run(sskt_run.path, fmt, tmp_path, checkpoint="last")
    assert result.verified, result.verification
    assert result.metadata["clip_len"] == CLIP_LEN and "clip" in result.metadata["preprocess"]
    model = load_exported(result.path)
    clip = torch.randn(3, 3, CLIP_LEN, SIDE, SIDE)  # another batch size than the trace's
    from sskt_engine.export import load_run_network

    backbone, _, _ = load_run_network(sskt_run, "last")
    with torch.no_grad():
        assert torch.allclose(model.logits(clip), backbone(clip), atol=1e-4)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_keeps_the_3d_transfer_modules(sskt_run, tmp_path, fmt):
    result = export_run(sskt_run.path, fmt, tmp_path, checkpoint="last", keep_aux_heads=True)
    assert result.verified and result.metadata["outputs"] == ["logits", "aux_0"]
    outputs = load_exported(result.path).run(torch.randn(2, 3, CLIP_LEN, SIDE, SIDE))
    assert [tuple(o.shape) for o in outputs] == [(2, CLASSES), (2, 5)]


def _frame_folder(folder, frames: int, level: int):
    folder.mkdir()
    rng = np.random.default_rng(level)
    for index in range(frames):
        pixels = np.clip(rng.integers(0, 60, (24, 20, 3)) + level, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"image_{index + 1:05d}.png")
    return folder


def test_predict_classifies_a_frame_folder_from_the_metadata_alone(sskt_run, tmp_path):
    model_file = export_run(sskt_run.path, "pt", tmp_path, checkpoint="last").path
    folder = _frame_folder(tmp_path / "v_test_c01", 7, 160)
    predictor = Predictor(model_file)
    assert predictor.clip_len == CLIP_LEN
    [prediction] = predictor.predict([folder], top_k=2)
    assert len(prediction.top) == 2 and prediction.top[0][1] >= prediction.top[1][1]
    # by hand: the centre 4 of 7 frames (1..4), each resized to 16 and centre-cropped, normalized
    frames = []
    for index in range(1, 5):
        image = Image.open(folder / f"image_{index + 1:05d}.png").convert("RGB")
        image = image.resize((SIDE, round(24 * SIDE / 20)), Image.BILINEAR)
        top = (image.height - SIDE) // 2
        frames.append(np.asarray(image.crop((0, top, SIDE, top + SIDE))))
    clip = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float().div(255).unsqueeze(0)
    clip = (clip - torch.tensor(MEAN).view(1, 3, 1, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1, 1)
    from sskt_engine.export import load_run_network

    backbone, _, _ = load_run_network(sskt_run, "last")
    with torch.no_grad():
        expected = torch.softmax(backbone(clip), 1)[0]
    best = int(expected.argmax())
    assert prediction.top[0][0] == ("dim", "mid", "bright")[best]
    assert prediction.top[0][1] == pytest.approx(float(expected[best]), abs=0.05)  # resampling may differ a little


def test_predict_refuses_an_unreadable_video_in_one_sentence(sskt_run, tmp_path):
    from sskt_engine.errors import UserInputError

    model_file = export_run(sskt_run.path, "pt", tmp_path, checkpoint="last").path
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(UserInputError):
        Predictor(model_file).predict([broken])


def test_predict_cli_on_a_video_file(sskt_run, tmp_path, capsys):
    av = pytest.importorskip("av")
    from sskt_engine.cli import main

    model_file = export_run(sskt_run.path, "safetensors", tmp_path, checkpoint="last").path
    video = tmp_path / "clip.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(9):
            frame = np.full((32, 32, 3), 40 + 20 * index, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert main(["predict", str(model_file), str(video), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "clip.mp4" in out and all(name in out for name in ("dim", "mid", "bright"))


# ----------------------------------------------------------------------------- 3D networks as sources

def _clips(batch: int = 2, frames: int = CLIP_LEN) -> torch.Tensor:
    return torch.rand(batch, 3, frames, SIDE, SIDE, generator=torch.Generator().manual_seed(5))


def test_a_trained_3d_run_teaches_as_a_video_source(sskt_run):
    source = build_source(SourceConfig(kind="run", path=str(sskt_run.path), checkpoint="last"))
    assert source.clip_len == CLIP_LEN and source.input_size == SIDE
    pixels = _clips()
    got = SourceEnsemble([source])(pixels)[0]
    with torch.no_grad():
        expected = source.module((pixels - torch.tensor(MEAN).view(1, 3, 1, 1, 1))
                                 / torch.tensor(STD).view(1, 3, 1, 1, 1))
    assert torch.allclose(got, expected, atol=1e-5)


def test_a_compiled_3d_export_is_a_video_source(sskt_run, tmp_path):
    path = export_run(sskt_run.path, "torchscript", tmp_path, checkpoint="last").path
    source = build_source(SourceConfig(kind="compiled", path=str(path)))
    assert source.clip_len == CLIP_LEN and source.num_classes == CLASSES
    reference = build_source(SourceConfig(kind="run", path=str(sskt_run.path), checkpoint="last"))
    pixels = _clips(3)
    assert torch.allclose(SourceEnsemble([source])(pixels)[0], SourceEnsemble([reference])(pixels)[0], atol=1e-4)


# ----------------------------------------------------------------------------- Kinetics initialisation

@pytest.fixture(scope="module")
def kinetics_checkpoint(tmp_path_factory):
    """A Kinetics-400 checkpoint in the 3D-ResNets-PyTorch layout the SSKT authors fine-tuned
    (``resnet-18-kinetics.pth``): epoch, arch, a DataParallel state_dict, the optimizer's state."""
    torch.manual_seed(2)
    net = build_architecture("resnet3d_18", 400)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    path = tmp_path_factory.mktemp("kinetics") / "resnet-18-kinetics.pth"
    torch.save({"epoch": 200, "arch": "resnet-18", "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}}, path)
    return path, net.state_dict()


def _fine_tune_context(target: str, clip_len: int = 4) -> MethodContext:
    cfg = loads_preset(f"name: ft\ntarget: {target}\ndata: {{dataset: test-clips}}\nmethod: {{name: supervised}}\n"
                       "train: {device: cpu}")
    return MethodContext(cfg, 101, tuple(f"c{i}" for i in range(101)), 32, torch.device("cpu"), None,
                         clip_len=clip_len)


def test_fine_tuning_from_a_kinetics_checkpoint_freezes_before_ft_begin_index(kinetics_checkpoint):
    path, weights = kinetics_checkpoint
    # the authors' --ft_begin_index 4 (train layer4 and fc) is frozen_stages 3
    ctx = _fine_tune_context(f"{{arch: resnet3d_18, init: checkpoint, path: '{path}', frozen_stages: 3}}")
    method = METHODS.get("supervised").build(ctx)
    backbone = method.networks["target"].backbone
    state = backbone.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items() if not k.startswith("fc."))
    assert backbone.fc.weight.shape == (101, 512)  # a fresh classifier for UCF101's classes
    trainable = {name.split(".")[0] for name, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "fc"}
    assert any("classifier" in note for note in ctx.notes)
    method.train(True)
    # the frozen stages' BatchNorm statistics stay put; the trained ones' follow the clips
    assert not backbone.bn1.training and not backbone.layer3[1].bn2.training and backbone.layer4[1].bn2.training


def test_a_kinetics_checkpoint_is_a_video_source(kinetics_checkpoint):
    path, _ = kinetics_checkpoint
    source = build_source(SourceConfig(kind="checkpoint", arch="resnet3d_18", path=str(path)))
    assert source.num_classes == 400 and source.clip_len == 16 and source.input_size == 112


def test_fine_tuning_from_torchvision_video_weights_in_the_torch_home_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.get_model_weights("mc3_18").KINETICS400_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(3)
    reference = torchvision.models.get_model("mc3_18", weights=None, num_classes=400)
    torch.save(reference.state_dict(), cache / weights.url.rsplit("/", 1)[-1])  # torchvision's own file layout
    ctx = _fine_tune_context("{arch: mc3_18, init: torchvision, weights: KINETICS400_V1, frozen_stages: 2}")
    backbone = METHODS.get("supervised").build(ctx).networks["target"].backbone
    assert torch.equal(backbone.layer2[0].conv1[0].weight, reference.layer2[0].conv1[0].weight)
    trainable = {name.split(".")[0] for name, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {"layer3", "layer4", "fc"}


def test_a_torch_export_program_with_5d_input_is_a_video_source(tmp_path):
    torch.manual_seed(4)
    module = build_architecture("tiny3d", 6).eval()
    example = torch.rand(2, 3, CLIP_LEN, SIDE, SIDE)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    path = tmp_path / "video.pt2"
    torch.export.save(program, str(path))
    source = build_source(SourceConfig(kind="compiled", path=str(path), mean=MEAN, std=STD))
    assert source.clip_len == CLIP_LEN and source.input_size == SIDE and source.num_classes == 6
    pixels = _clips(3)
    with torch.no_grad():
        expected = module((pixels - torch.tensor(MEAN).view(1, 3, 1, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1, 1))
    assert torch.allclose(SourceEnsemble([source])(pixels)[0], expected, atol=1e-4)
