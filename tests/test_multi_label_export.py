"""Export and predict of a multi-label run: every format records ``multi_label`` and verifies,
and ``sskt predict`` prints every label at or above ``--threshold`` with its sigmoid probability,
as the trained network computes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from sskt_engine.cli import main as cli_main
from sskt_engine.config import loads_preset
from sskt_engine.data.demo_scenes import scene_splits
from sskt_engine.errors import UserInputError
from sskt_engine.export import export_run, load_run_network
from sskt_engine.predict import Predictor
from sskt_engine.trainer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated")
PRESET = """\
name: ml-tiny
target: {arch: tiny_cnn}
data: {dataset: demo-multilabel, labels_per_class: 6, augment: false}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, lr: 0.05, schedule: constant, seed: 1, device: cpu}
"""
SUFFIX = {"pt": ".pt", "safetensors": ".safetensors", "torchscript": ".torchscript.pt", "onnx": ".onnx"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return Trainer(loads_preset(PRESET), tmp_path_factory.mktemp("runs")).run()


def _scene_pngs(folder: Path, count: int = 3) -> tuple[list[Path], torch.Tensor]:
    data = scene_splits()
    paths = []
    for i in range(count):
        path = folder / f"scene {i}.png"
        Image.fromarray(data.val.images[i].permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    mean, std = torch.tensor(data.mean).view(1, 3, 1, 1), torch.tensor(data.std).view(1, 3, 1, 1)
    return paths, (data.val.images[:count].float() / 255 - mean) / std


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript", "onnx"])
def test_exports_record_multi_label_and_predict_prints_labels_above_the_threshold(fmt, run, tmp_path, capsys):
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="ONNX export needs the optional onnx extra")
        pytest.importorskip("onnxruntime", reason="predicting with an ONNX file needs onnxruntime")
    result = export_run(run.path, fmt, tmp_path / f"m{SUFFIX[fmt]}")
    assert result.metadata["multi_label"] is True
    images, normalized = _scene_pngs(tmp_path)
    network, _, _ = load_run_network(run, "best")
    with torch.no_grad():
        probabilities = torch.sigmoid(network(normalized))
    predictor = Predictor(result.path)
    assert predictor.multi_label
    threshold = float(probabilities.median())  # some labels on each side
    predictions = predictor.predict(images, threshold=threshold)
    for row, prediction in enumerate(predictions):
        expected = {predictor.class_names[c]: float(p) for c, p in enumerate(probabilities[row]) if p >= threshold}
        assert {name for name, _ in prediction.top} == set(expected)
        for name, probability in prediction.top:
            assert probability == pytest.approx(expected[name], abs=1e-4)
    capsys.readouterr()
    assert cli_main(["predict", str(result.path), str(images[0]), "--threshold", "1.0"]) == 0
    assert "(no label with probability at least 1)" in capsys.readouterr().out


def test_threshold_out_of_range_is_refused(run, tmp_path):
    result = export_run(run.path, "pt", tmp_path / "m.pt")
    images, _ = _scene_pngs(tmp_path, 1)
    with pytest.raises(UserInputError, match="--threshold must be between 0 and 1"):
        Predictor(result.path).predict(images, threshold=1.5)
