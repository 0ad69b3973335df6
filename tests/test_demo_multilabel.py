"""The built-in multi-label demo end to end: the scenes, labels_per_class's multi-label meaning,
its preset, and runs through the real Trainer (SSKT with the shipped shapes source, DML) that
report mAP in summary.json, progress and EpochEnd; MAXL refuses multi-label data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sskt_engine import events as ev
from sskt_engine.config import load_preset, loads_preset
from sskt_engine.data import DATASETS, load_dataset
from sskt_engine.data.demo_scenes import MAX_GLYPHS, scene_splits, sign_targets
from sskt_engine.data.demo_world import SHAPES_CLASSES, SIGNS_CLASSES
from sskt_engine.data.splits import multi_label_subset
from sskt_engine.errors import UserInputError
from sskt_engine.run_checkpoint import RunCheckpoint
from sskt_engine.trainer import Trainer
from sskt_engine.validation_preview import validation_predictions

PRESET = Path(__file__).resolve().parents[1] / "resources" / "presets" / "demo-multilabel.yaml"
QUICK = ["target.arch=tiny_cnn", "train.epochs=1", "train.warmup_epochs=0", "data.labels_per_class=6",
         "train.batch_size=16", "train.log_every=1", "train.device=cpu", "data.augment=false"]


def test_scenes_hold_one_to_three_glyphs_labelled_by_sign():
    info = DATASETS.get("demo-multilabel")
    assert info.task == "multi_label" and info.num_classes == 6 and not info.needs_root
    splits = scene_splits()
    assert splits.multi_label and splits.class_names == SIGNS_CLASSES and splits.image_size == 32
    assert splits.train.images.shape == (4000, 3, 32, 32) and splits.val.labels.shape == (1500, 6)
    labels = splits.train.labels
    assert set(labels.unique().tolist()) == {0.0, 1.0}
    per_image = labels.sum(dim=1)
    assert per_image.min() >= 1 and per_image.max() <= MAX_GLYPHS
    assert ((labels.mean(dim=0) > 0.25) & (labels.mean(dim=0) < 0.35)).all()  # every sign about equally often
    # "stop" is a circle or an x-cross: both give one label; a ring is "yield"
    glyphs = np.array([[SHAPES_CLASSES.index("circle"), SHAPES_CLASSES.index("x-cross"), -1],
                       [SHAPES_CLASSES.index("ring"), -1, -1]])
    assert sign_targets(glyphs).tolist() == [[1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]]


def test_labels_per_class_on_multi_label_data_is_a_greedy_covering_subset():
    generator = torch.Generator().manual_seed(0)
    labels = (torch.rand(500, 5, generator=generator) < torch.tensor([0.5, 0.3, 0.2, 0.1, 0.0])).float()
    labels[20:25, 4] = 1.0  # a class with only 5 positive images
    labels[:20] = 0.0  # images without a label: never taken
    keep, short = multi_label_subset(labels, 8, seed=1)
    positives = (labels[keep] > 0).sum(dim=0)
    rare = int((labels[:, 4] > 0).sum())
    assert rare == 5 and short == {4: rare}  # the rarest class keeps all it has, and says so
    assert (positives[:4] >= 8).all() and int(positives[4]) == rare
    assert (labels[keep].sum(dim=1) > 0).all() and len(keep) < 60  # a small subset, not half the data
    assert torch.equal(keep, multi_label_subset(labels, 8, seed=1)[0])  # the same for the same seed
    assert not torch.equal(keep, multi_label_subset(labels, 8, seed=2)[0])
    assert torch.equal(keep, torch.sort(keep).values)


def test_the_preset_s_subset_is_said_in_the_notes():
    config = load_preset(PRESET)
    data = load_dataset(config.data, config.train.seed)
    assert data.multi_label and ((data.train.labels > 0).sum(dim=0) >= 300).all()
    assert any("at least 300 positive images" in note for note in data.notes)


def _config(method: str = "", *overrides: str):
    """The shipped preset, quick, with another method's defaults when ``method`` is given."""
    if not method:
        return load_preset(PRESET, overrides=QUICK + list(overrides))
    preset = yaml.safe_load(PRESET.read_text())
    preset["method"] = {"name": method}
    return loads_preset(yaml.safe_dump(preset), overrides=QUICK + list(overrides))


def _run(tmp_path, method: str = ""):
    seen: list[ev.Event] = []
    config = _config(method)
    folder = Trainer(config, tmp_path, seen.append).run()
    return folder, seen


def test_sskt_run_reports_map_everywhere(tmp_path):
    folder, seen = _run(tmp_path)
    summary = folder.summary()
    assert summary.status == "finished" and summary.task == "multi_label" and summary.metric.key == "map"
    assert {"loss", "map", "map_voc07", "map_samples", "f1"} <= set(summary.final_val)
    assert 0.0 < summary.final_score <= 1.0 and summary.final_score == summary.final_val["map"]
    started = next(e for e in seen if isinstance(e, ev.RunStarted))
    assert started.task == "multi_label" and started.metric["key"] == "map" and started.train_metric["key"] == "f1"
    assert started.source_names == ("shapes-cnn",)
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert progress and all(0.0 <= p.train_acc <= 1.0 for p in progress)
    assert {"loss", "target", "aux/shapes-cnn"} <= set(progress[-1].losses)
    epoch_end = next(e for e in seen if isinstance(e, ev.EpochEnd))
    assert epoch_end.val["map"] == summary.final_score and "f1" in epoch_end.train
    report = folder.eval_report("last")
    assert report.confusion is None and report.per_class_metric.key == "ap" and len(report.per_class) == 6
    assert report.headline.key == "map" and report.values["map"] == pytest.approx(summary.final_score)
    checkpoint = RunCheckpoint.read(folder.checkpoint_path("last"), "test")
    assert checkpoint.meta.multi_label and checkpoint.meta.class_names == SIGNS_CLASSES
    # what the Results tab shows: a few validation images with all their true and predicted labels
    images, truth, predicted = validation_predictions(folder.path, count=6)
    assert images.shape == (6, 32, 32, 3) and len(truth) == len(predicted) == 6
    for labels in truth:
        assert 1 <= len(labels) <= 3 and set(labels) <= set(SIGNS_CLASSES)
    assert all(set(labels) <= set(SIGNS_CLASSES) for labels in predicted)


def test_dml_peers_distil_sigmoid_outputs(tmp_path):
    folder, seen = _run(tmp_path, "dml")
    summary = folder.summary()
    assert summary.status == "finished", summary.message
    assert {"peer1/map", "peer2/map", "map"} <= set(summary.final_val)
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert {"peer1/kl", "peer2/kl"} <= set(progress[-1].losses)  # the per-class Bernoulli KL between peers


def test_maxl_refuses_multi_label_data(tmp_path):
    config = _config("maxl")
    with pytest.raises(UserInputError, match="MAXL needs single-label data"):
        Trainer(config, tmp_path).run()
    assert not any(tmp_path.iterdir())  # refused before any run folder existed


def test_preset_validates():
    config = loads_preset(PRESET.read_text())
    assert config.data.dataset == "demo-multilabel" and config.sources[0].input_size == 64
