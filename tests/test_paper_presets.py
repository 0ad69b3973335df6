"""The SSKT paper's presets: generated, faithful to the authors' recipe, proven on stand-in files in the
real formats (sskt check passes, one epoch of two steps trains on the CPU), and `sskt compare` sets
the published figure beside the measured one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from sskt_engine.cli import main
from sskt_engine.config import loads_preset, save_preset
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.paper_compare import paper_comparison
from sskt_engine.paper_presets import PAPER_ROWS, paper_preset_files, paper_presets
from sskt_engine.resources import resource_path
from sskt_engine.sources import SourceEnsemble
from sskt_engine.study import load_study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from replicate_paper import check_on_cpu  # noqa: E402

torch.set_num_threads(1)
ROWS = {row.key: row for row in PAPER_ROWS}


def test_the_shipped_presets_are_exactly_what_the_generator_writes():
    folder = resource_path("presets", "paper")
    generated = paper_presets()
    assert len(generated) == 39
    for name, text in generated.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{name}: run benchmarks/make_paper_presets.py"
    for path in paper_preset_files():  # every preset of the folder (the video rows too) loads
        loads_preset(path.read_text(encoding="utf-8"), source=path.name)


@pytest.mark.parametrize("name", sorted(paper_presets()))
def test_every_paper_preset_follows_the_authors_recipe(name):
    cfg = loads_preset(paper_presets()[name], source=name)
    t = cfg.train
    assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.batch_size, t.epochs) == ("sgd", 0.1, 0.9, 5e-4, 128, 200)
    assert (t.schedule, t.milestones, t.gamma) == ("multistep", (60, 120, 160), 0.2)
    assert cfg.data.val_split == 0.0 and cfg.target.init == "scratch"
    side = 74 if cfg.data.dataset.startswith("cifar") else 224  # CIFAR x 7/3; STL-10 and VOC at 224 px
    assert all(s.input_size == side for s in cfg.sources if s.kind != "run")  # KD's teacher sees the target's
    row = next(r for r in PAPER_ROWS if name.startswith(r.key + "-"))
    assert cfg.paper.mean == row.figures[cfg.method.name] and cfg.paper.runs == 3
    if cfg.method.name == "sskt":
        kinds = sorted(s.kind for s in cfg.sources)
        expected = {"P+I": ["places365", "torchvision"], "I": ["torchvision"], "P": ["places365"]}[row.sskt_sources]
        assert kinds == expected and (cfg.method.alpha, cfg.method.temperature) == (0.1, 3.0)
        assert all(s.arch == "resnet50" for s in cfg.sources)
    if cfg.data.dataset == "voc2007":
        assert cfg.paper.metric == "map_samples" and cfg.data.image_size == 224  # the authors' sample-averaged mAP


def test_the_figures_are_the_papers():
    assert ROWS["cifar10-resnet20"].figures == {"supervised": 92.19, "kd": 91.75, "dml": 92.37, "sskt": 92.46}
    assert ROWS["stl10-resnet32"].figures["sskt"] == 83.68 and ROWS["stl10-resnet32"].sskt_sources == "I"
    assert ROWS["cifar100-resnet20"].sskt_sources == "I" and ROWS["voc2007-resnet50"].figures["sskt"] == 77.1
    assert ROWS["maxl-cifar10-vgg16"].figures == {"maxl": 93.49, "sskt": 94.22}


@pytest.mark.parametrize("arch, side, width", [("resnet18", 224, 1000), ("resnet34", 64, 1000),
                                               ("resnet50", 64, 1000), ("resnet20", 32, 64)])
def test_the_transfer_module_is_1000_wide_for_every_imagenet_style_resnet(arch, side, width):
    cfg = loads_preset(f"target: {{arch: {arch}}}\nmethod: {{name: sskt, head: transfer_module}}\n"
                       "sources: [{kind: checkpoint, path: builtin:demo_source.safetensors}]\n")
    from sskt_engine.sources import build_source

    ensemble = SourceEnsemble([build_source(cfg.sources[0])])
    method = METHODS.get("sskt").build(MethodContext(cfg, 10, tuple("abcdefghij"), side, torch.device("cpu"),
                                                     ensemble))
    head = method.net.aux_heads[0]
    assert head.fc.in_features == width and head.branches[0][0].out_channels == width // 2


def test_a_paper_row_passes_check_and_trains_two_steps_on_stand_in_files(tmp_path):
    # CIFAR-10 pickles, both ResNet-50 sources (ImageNet cache file, CSAIL Places365 pickle) at 74 px
    assert check_on_cpu([ROWS["cifar10-resnet20"]], ["sskt"], tmp_path, verbose=False) == []


@pytest.mark.slow
def test_every_paper_preset_passes_check_and_trains_two_steps_on_stand_in_files(tmp_path):
    assert check_on_cpu(list(PAPER_ROWS), None, tmp_path, verbose=False) == []


def test_compare_sets_the_published_figure_beside_the_measured_one(tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    save_preset(loads_preset("""\
name: paper-demo
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, seed: 0, device: cpu}
paper: {reference: a paper, row: "Table 9: demo, scratch", metric: acc, mean: 50.0, std: 2.0, runs: 3}
"""), preset)
    assert main(["compare", str(preset), "--methods", "supervised", "--seeds", "2", "--runs-dir",
                 str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    study = Path(out.strip().splitlines()[-1][len("study: "):])
    c = paper_comparison(load_study(study))
    runs = [100 * r["final_val"]["acc"] for r in load_study(study)["runs"]]
    assert c["runs"] == 2 and c["measured_mean"] == pytest.approx(sum(runs) / 2)
    assert c["difference_in_std"] == pytest.approx((sum(runs) / 2 - 50.0) / 2.0)  # in the published std
    assert "## Paper vs measured" in out and "| supervised | 50.00 ± 2.00 |" in out
    assert f"{c['difference']:+.2f} | {c['difference_in_std']:+.1f} (published std) |" in out
