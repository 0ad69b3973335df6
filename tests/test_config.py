"""Presets: round trip, every kind of refusal with key path and line, --set overrides."""

from __future__ import annotations

import pytest

from sskt_engine.config import (ExperimentConfig, PresetError, SourceConfig, dumps_preset, load_preset,
                                loads_preset, save_preset)
from sskt_engine.resources import builtin_presets

GOOD = """\
schema_version: 1
name: cifar sskt
target:
  arch: resnet20
sources:
  - kind: torchvision
    arch: resnet50
    weights: IMAGENET1K_V2
data:
  dataset: cifar10
  root: /data/cifar
  labels_per_class: 100
method:
  name: sskt
  alpha: 0.5
train:
  epochs: 3
  milestones: [1, 2]
"""


def test_good_preset_parses_to_frozen_dataclasses():
    cfg = loads_preset(GOOD)
    assert cfg.name == "cifar sskt"
    assert cfg.sources == (SourceConfig(kind="torchvision", arch="resnet50", weights="IMAGENET1K_V2"),)
    assert cfg.data.labels_per_class == 100
    assert cfg.method.alpha == 0.5 and cfg.method.temperature == 3.0  # paper default kept
    assert cfg.train.milestones == (1, 2)
    with pytest.raises(AttributeError):
        cfg.name = "x"  # frozen


def test_round_trip_through_yaml(tmp_path):
    cfg = loads_preset(GOOD)
    path = tmp_path / "p.yaml"
    save_preset(cfg, path)
    assert load_preset(path) == cfg
    assert loads_preset(dumps_preset(cfg)) == cfg


def test_defaults_are_the_papers_recipe():
    cfg = ExperimentConfig()
    assert (cfg.train.lr, cfg.train.momentum, cfg.train.weight_decay, cfg.train.batch_size) == (0.1, 0.9, 5e-4, 128)
    assert cfg.train.milestones == (60, 120, 160) and cfg.train.gamma == 0.2
    assert (cfg.method.alpha, cfg.method.temperature) == (0.1, 3.0)


@pytest.mark.parametrize("text, path, line, words", [
    ("train:\n  lr: -1\n", "train.lr", 2, "greater than 0"),
    ("train:\n  epochs: many\n", "train.epochs", 2, "whole number"),
    ("train:\n  epochs: 2.5\n", "train.epochs", 2, "whole number"),
    ("train:\n  amp: yes please\n", "train.amp", 2, "true or false"),
    ("train:\n  learning_rate: 0.1\n", "train.learning_rate", 2, "unknown key"),
    ("trian:\n  lr: 0.1\n", "trian", 1, "did you mean 'train'"),
    ("method:\n  name: sskt\n  aux_loss: mse\n", "method.aux_loss", 3, "not one of"),
    ("method:\n  aux_loss: soft_ce\n", "method.aux_loss", 2, "method sskt reads it, not supervised"),
    ("sources: []\nmethod:\n  name: kd\n  kd_lambda: 0.5\n", "method.kd_lambda", 4, "since preset version 2 it is called "
     "'distill_weight'"),
    ("method:\n  name: sskt\n  temperature: 0\n", "method.temperature", 3, "greater than 0"),
    ("target:\n  arch: resnet21\n", "target.arch", 2, "did you mean"),
    ("data:\n  val_split: 1.5\n", "data.val_split", 2, "at most 0.9"),
    ("sources:\n  - kind: checkpoint\n", "sources[0].path", 2, "needs the file's path"),
    ("sources:\n  - kind: zoo\n", "sources[0].kind", 2, "not one of"),
    ("train:\n  device: gpu\n", "train.device", 2, "not auto"),
    ("train:\n  milestones: [5, 2]\n", "train.milestones", 2, "increasing"),
    ("method:\n  name: sskt\n", "sources", None, "at least 1 source"),
    ("data: 5\n", "data", 1, "mapping"),
    ("train:\n  lr: .inf\n", "train.lr", 2, "finite"),
    ("schema_version: 99\n", "schema_version", 1, "newer SSKT Studio"),
])
def test_bad_values_name_key_line_and_reason(text, path, line, words):
    if "sources" not in text and "method:" not in text:
        text += "method:\n  name: supervised\n"
    elif "sources" not in text and "name: sskt" not in text:
        text += "  name: supervised\n"  # the method block is the document's last
    with pytest.raises(PresetError) as info:
        loads_preset(text, source="bad.yaml")
    err = info.value
    assert err.path == path
    if line is not None:
        assert err.line == line
    assert words in str(err)
    assert str(err).startswith("bad.yaml: ")


def test_duplicate_keys_are_refused_not_silently_overridden():
    with pytest.raises(PresetError) as info:
        loads_preset("train:\n  lr: 0.1\n  epochs: 3\n  lr: 0.2\n")
    assert info.value.path == "train.lr" and info.value.line == 4 and "twice" in str(info.value)


def test_invalid_yaml_reports_line():
    with pytest.raises(PresetError) as info:
        loads_preset("name: x\ntrain: [1, 2\n")
    assert info.value.line is not None and "YAML" in str(info.value)


def test_yaml_tags_cannot_build_objects():
    with pytest.raises(PresetError):
        loads_preset("name: !!python/object/apply:os.system ['touch /tmp/pwned']\n")


def test_set_overrides_any_key_with_yaml_typed_values():
    cfg = loads_preset(GOOD, overrides=["train.epochs=7", "train.milestones=[3, 5]", "method.aux_loss=kd",
                                        "sources[0].weights=IMAGENET1K_V1", "data.labels_per_class=null"])
    assert cfg.train.epochs == 7 and cfg.train.milestones == (3, 5) and cfg.method.aux_loss == "kd"
    assert cfg.sources[0].weights == "IMAGENET1K_V1" and cfg.data.labels_per_class is None


def test_set_override_is_validated_too():
    with pytest.raises(PresetError) as info:
        loads_preset(GOOD, overrides=["train.epochs=0"])
    assert info.value.path == "train.epochs" and "at least 1" in str(info.value)
    with pytest.raises(PresetError):
        loads_preset(GOOD, overrides=["train.epochs"])


def test_missing_preset_file_is_one_sentence(tmp_path):
    with pytest.raises(PresetError, match="does not exist"):
        load_preset(tmp_path / "nope.yaml")
    with pytest.raises(PresetError, match="is a folder"):
        load_preset(tmp_path)


def test_every_builtin_preset_loads():
    presets = builtin_presets()
    assert any(p.name == "demo.yaml" for p in presets)
    for path in presets:
        assert isinstance(load_preset(path), ExperimentConfig)


def test_a_long_wrong_value_is_shortened_in_every_message():
    """Found by the fuzz test: a 3,000-character device name made a 3,000-character message."""
    with pytest.raises(PresetError) as info:
        loads_preset("train:\n  device: -9" + "7" * 3000 + "e-9\nmethod: {name: supervised}\n")
    assert info.value.path == "train.device" and "is not auto" in str(info.value) and len(str(info.value)) < 200
