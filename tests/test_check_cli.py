"""`sskt check PRESET`: the resolved experiment and its cost, exit 0; or one sentence per problem, exit 2."""

from __future__ import annotations

import torch

from sskt_engine.cli import main
from sskt_engine.config import loads_preset
from sskt_engine.preset_check import check_experiment
from sskt_engine.resources import resource_path

torch.set_num_threads(1)


def test_the_demo_preset_checks_and_says_what_a_run_costs(capsys):
    assert main(["check", str(resource_path("presets", "demo.yaml")), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "data: demo at (built in): 600 training images, 6 classes, 32 px" in out
    assert "cost: 600 images per epoch = 18 steps of 32; 30 epochs = 540 steps, 18,000 images" in out
    assert "source shapes-cnn: 12 classes, sees 32 px" in out and "network target: 0.27 M parameters" in out
    assert out.rstrip().endswith("ok: the preset and every file it names can be used")


def test_every_problem_is_one_sentence_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SSKT_PLACES365_DIR", str(tmp_path / "no-places"))
    preset = tmp_path / "p.yaml"
    preset.write_text(f"""\
target: {{arch: resnet20}}
sources:
  - {{kind: places365, arch: resnet50}}
  - {{kind: checkpoint, path: {tmp_path / 'missing.pth'}, arch: resnet18}}
data: {{dataset: cifar10, root: {tmp_path / 'nothing'}}}
method: {{name: sskt}}
train: {{device: cuda:7}}
""")
    assert main(["check", str(preset)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("problem: ") for line in err)
    assert "cuda:7" in err[0] and "CIFAR-10 file 'data_batch_1' is missing" in err[1]
    assert "resnet50_places365.pth.tar is not on this machine; download" in err[2]
    assert err[3].startswith("problem: sources[1] (missing.pth):")


def test_a_kd_teacher_of_other_classes_is_found_before_training():
    cfg = loads_preset("target: {arch: tiny_cnn}\ndata: {dataset: demo}\nmethod: {name: kd}\ntrain: {device: cpu}\n"
                       "sources: [{kind: checkpoint, path: 'builtin:demo_source.safetensors'}]\n")
    report = check_experiment(cfg)
    assert report.problems == ["source 'builtin:demo_source.safetensors' cannot be the KD teacher: it predicts 12 "
                               "classes but the target dataset has 6; KD needs a teacher trained on the target's "
                               "classes"]


def test_target_initial_weights_and_frozen_stages_are_checked(tmp_path):
    cfg = loads_preset(f"target: {{arch: tiny_cnn, init: checkpoint, path: {tmp_path / 'w.pt'}}}\n"
                       "data: {dataset: demo}\nmethod: {name: supervised}\ntrain: {device: cpu}\n")
    assert check_experiment(cfg).problems == [f"target.path: the weights file {tmp_path / 'w.pt'} does not exist"]
    from sskt_engine.models import build_architecture

    torch.save(build_architecture("resnet20", 6).state_dict(), tmp_path / "r20.pt")
    cfg = loads_preset(f"target: {{arch: resnet20, init: checkpoint, path: {tmp_path / 'r20.pt'}, frozen_stages: 2}}\n"
                       "data: {dataset: demo}\nmethod: {name: supervised}\ntrain: {device: cpu}\n")
    report = check_experiment(cfg)
    assert report.ok and report.facts["networks"]["target"]["trainable"] < report.facts["networks"]["target"][
        "parameters"]
    assert any("frozen" in line for line in report.lines)


def test_an_unreadable_preset_is_one_sentence(tmp_path, capsys):
    preset = tmp_path / "bad.yaml"
    preset.write_text("method: {name: sskd}\n")
    assert main(["check", str(preset)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'sskt'" in err
