"""Ranking and inspecting sources before training (``sskt rank-sources``, ``sskt sources``):
same seed same scores, the warnings on a flat source and on a source fed too small images,
penultimate features found generically, the JSON next to the runs, and bad --source input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sskt_engine.cli import main
from sskt_engine.config import SourceConfig, loads_preset, save_preset
from sskt_engine.errors import UserInputError
from sskt_engine.source_cli import parse_source_spec
from sskt_engine.source_inspection import SourceReader, size_reading
from sskt_engine.source_ranking import rank_sources
from sskt_engine.sources import build_source

SHIPPED = "builtin:demo_source.safetensors"
PRESET = f"""\
name: rank-test
target: {{arch: tiny_cnn}}
sources: [{{kind: checkpoint, path: '{SHIPPED}', name: shapes}}]
data: {{dataset: demo, labels_per_class: 8}}
method: {{name: sskt, temperature: 2.0}}
train: {{epochs: 1, batch_size: 16, seed: 3, device: cpu}}
"""


def _model_file(path: Path, flat: bool) -> Path:
    """A small_cnn of 12 classes in this app's safetensors export format; ``flat``: a zero classifier,
    so its logits are equal and its soft labels exactly uniform."""
    from safetensors.torch import save_file

    from sskt_engine.network_weights import build_any_architecture

    torch.manual_seed(0)
    model = build_any_architecture("small_cnn", 12)
    if flat:
        torch.nn.init.zeros_(model.fc.weight)
        torch.nn.init.zeros_(model.fc.bias)
    meta = {"format": "sskt-studio-model", "arch": "small_cnn", "num_classes": 12, "input_size": 32,
            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={k: json.dumps(v) for k, v in meta.items()})
    return path


@pytest.fixture(scope="module")
def flat_file(tmp_path_factory) -> Path:
    return _model_file(tmp_path_factory.mktemp("models") / "flat.safetensors", flat=True)


def test_same_seed_same_scores_other_seed_other_images():
    config = loads_preset(PRESET)
    first = rank_sources(config)
    again = rank_sources(config)
    assert first.entries[0].scores == again.entries[0].scores
    assert first.num_images == 6 * 8 and first.temperature == 2.0
    other = rank_sources(loads_preset(PRESET, overrides=["train.seed=4"]))
    assert other.entries[0].scores != first.entries[0].scores  # another labelled subset
    # a sample of the labelled subset is seeded too
    capped = [rank_sources(config, max_images=20).entries[0].scores for _ in range(2)]
    assert capped[0] == capped[1] != first.entries[0].scores


def test_the_shipped_source_outranks_a_flat_one_which_is_warned_about(flat_file):
    config = loads_preset(PRESET)
    ranking = rank_sources(config, [SourceConfig(kind="checkpoint", path=str(flat_file), name="flat")])
    assert [e.name for e in ranking.entries] == ["shapes", "flat"]
    shapes, flat = ranking.entries
    assert all(shapes.scores[k] > flat.scores[k] for k in ("leep", "logme", "nce"))
    assert flat.inspection.max_prob_mean == pytest.approx(1 / 12, abs=1e-6)
    assert flat.inspection.entropy_ratio == pytest.approx(1.0, abs=1e-6)
    assert len(flat.warnings) == 2 and "close to uniform" in flat.warnings[0]
    assert "say almost nothing about the target's classes" in flat.warnings[1]
    assert shapes.warnings == ()
    # uniform soft labels predict the label frequencies only: LEEP = -H(labels) = log(1/6) here
    assert flat.scores["leep"] == pytest.approx(math.log(1 / 6), abs=1e-9)


def test_a_source_near_leeps_floor_is_warned_about_whatever_its_confidence():
    """LEEP's floor is -H(labels): what a source independent of the labels scores (the demo's
    confident brightness source scored within 1 % of it and cost 25.9 points over 3 seeds)."""
    from sskt_engine.source_ranking import label_entropy, uninformative_warning

    labels = torch.arange(60) % 6  # balanced: H = log 6
    assert label_entropy(labels) == pytest.approx(math.log(6), abs=1e-12)
    floor = -math.log(6)  # -1.792
    assert "almost nothing" in uninformative_warning("b", floor + 0.011, labels)  # brightness: -1.781
    assert uninformative_warning("p", floor + 0.041, labels) is None  # the 8-px source: -1.751, +1.40 points
    assert uninformative_warning("s", -0.626, labels) is None  # the shipped source
    skewed = torch.tensor([0] * 50 + [1] * 10)  # H < log 2: the floor follows the labels, not log 1/C
    assert "almost nothing" in uninformative_warning("x", -label_entropy(skewed), skewed)
    assert uninformative_warning("x", -0.2, skewed) is None  # well above that floor (-0.451)
    assert uninformative_warning("m", -1.0, torch.zeros(4, 3)) is None  # multi-label: no single floor


def test_a_source_fed_too_small_images_is_warned_about_and_read_at_other_sides():
    ranking = rank_sources(loads_preset(PRESET, overrides=["sources.0.input_size=8"]))
    entry = ranking.entries[0]
    assert entry.preset_size == 8 and entry.native_size == 32
    assert [(r.size, r.roles) for r in entry.readings] == [(8, ("preset",)), (32, ("native", "target")),
                                                           (64, ("2x native",))]
    assert any("much smaller than its native 32 px" in w for w in entry.warnings)
    native = entry.readings[1]
    assert native.max_prob_mean > entry.inspection.max_prob_mean  # it sees far more at its own side
    assert entry.inspection.top_classes and all(isinstance(name, str) for name, _ in entry.inspection.top_classes)


def test_penultimate_features_are_found_without_per_architecture_code():
    source = build_source(SourceConfig(kind="checkpoint", path=SHIPPED))
    reader = SourceReader(source)
    pixels = [torch.rand(5, 3, 32, 32), torch.rand(3, 3, 32, 32)]
    logits, features = reader.read(pixels, 32, features=True)
    assert logits.shape == (8, 12) and features.shape == (8, 128)  # small_cnn's pooled 128 channels
    assert torch.allclose(features @ source.module.fc.weight.T + source.module.fc.bias, logits, atol=1e-4)
    assert reader.feature_note == ""


def test_size_reading_names_the_most_frequent_classes():
    logits = torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    reading = size_reading(logits, 1.0, 32, ["preset"], ["cat", "dog", "fox"])
    assert reading.top_classes == (("cat", pytest.approx(2 / 3)), ("dog", pytest.approx(1 / 3)))
    assert reading.images == 3 and 0 < reading.entropy_ratio < 0.2


def test_rank_sources_cli_prints_the_table_and_writes_json(tmp_path, flat_file, capsys):
    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(PRESET), preset)
    code = main(["rank-sources", str(preset), "--source", f"{flat_file},name=flat", "--runs-dir",
                 str(tmp_path / "runs"), "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.index("| 1 | shapes |") < out.index("| 2 | flat |")
    assert "WARNING: flat: its soft labels are close to uniform" in out
    written = Path(out.strip().splitlines()[-1].split("ranking: ", 1)[1])
    assert written.parent == tmp_path / "runs" / "source-rankings"
    body = json.loads(written.read_text())
    assert body["format"] == "sskt-studio-source-ranking"
    assert [s["name"] for s in body["sources"]] == ["shapes", "flat"]
    assert set(body["sources"][0]["scores"]) == {"leep", "logme", "nce"}

    code = main(["sources", str(preset), "--no-preset-sources", "--source", f"{SHIPPED},input_size=8"])
    out = capsys.readouterr().out
    assert code == 0 and "native, target" in out and "WARNING" in out and "much smaller" in out


def test_bad_source_specs_are_one_sentence(tmp_path, capsys):
    with pytest.raises(UserInputError, match="does not exist"):
        parse_source_spec(str(tmp_path / "missing.pt"))
    with pytest.raises(UserInputError, match="say which kind"):
        parse_source_spec("input_size=8")
    with pytest.raises(UserInputError, match="only the first item may be a path"):
        parse_source_spec(f"{SHIPPED},other")
    assert parse_source_spec(f"{SHIPPED},input_size=64").input_size == 64
    (tmp_path / "notes.txt").write_text("hello")
    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(PRESET), preset)
    assert main(["rank-sources", str(preset), "--source", str(tmp_path / "notes.txt")]) == 2
    assert "not a model file" in capsys.readouterr().err


def test_a_source_that_cannot_be_built_is_a_row_with_its_error(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    ranking = rank_sources(loads_preset(PRESET), [SourceConfig(kind="checkpoint", path=str(broken), name="broken")])
    assert [e.name for e in ranking.entries] == ["shapes", "broken"]
    assert ranking.entries[1].error and not ranking.entries[1].scores


# ----------------------------------------------------------------------------- ablation and grids (sskt compare)

STUDY = f"""\
name: ablate-test
target: {{arch: tiny_cnn}}
sources:
  - {{kind: checkpoint, path: '{SHIPPED}', name: shapes}}
  - {{kind: checkpoint, path: '{SHIPPED}', name: shapes8, input_size: 8}}
data: {{dataset: demo, labels_per_class: 4}}
method: {{name: sskt}}
train: {{epochs: 1, batch_size: 16, lr: 0.05, schedule: constant, seed: 5, log_every: 1, device: cpu}}
"""


def _study_dir(capsys) -> Path:
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("study: ")
    return Path(lines[-1][len("study: "):])


def test_ablate_sources_trains_each_alone_and_all_and_tabulates_gains(tmp_path, capsys):
    from sskt_engine.config import load_preset
    from sskt_engine.study import load_study

    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(STUDY), preset)
    code = main(["compare", str(preset), "--ablate-sources", "--seeds", "2", "--runs-dir", str(tmp_path / "runs"),
                 "--threads", "1"])
    study = _study_dir(capsys)
    assert code == 0
    state = load_study(study)
    rows = ["supervised", "sskt: only shapes", "sskt: only shapes8", "sskt: all 2 sources"]
    assert state["methods"] == rows
    by_row: dict[str, list[dict]] = {}
    for result in state["runs"]:
        by_row.setdefault(result["method"], []).append(result)
    assert all(len(by_row[r]) == 2 and all(x["status"] == "finished" for x in by_row[r]) for r in rows)
    # each row's runs used exactly its sources
    for row, names in (("sskt: only shapes", ["shapes"]), ("sskt: only shapes8", ["shapes8"]),
                       ("sskt: all 2 sources", ["shapes", "shapes8"]), ("supervised", [])):
        run = load_preset(Path(by_row[row][0]["run_path"]) / "preset.yaml")
        assert [s.name for s in run.sources] == names
    table = (study / "table.md").read_text()
    assert "## Gains over supervised" in table
    gains = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| sskt: ")}
    assert set(gains) == set(rows[1:])
    assert all("±" in line for line in gains.values())  # two seeds: a spread for every gain


def test_grid_trains_every_combination_and_chooses_on_validation(tmp_path, capsys):
    from sskt_engine.config import load_preset
    from sskt_engine.study import load_study
    from sskt_engine.study_variants import grid_choice

    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(STUDY, overrides=["sources=[{kind: checkpoint, path: 'builtin:demo_source.safetensors', "
                                                "name: shapes}]"]), preset)
    code = main(["compare", str(preset), "--grid", "method.alpha=0.1,1", "--grid", "method.temperature=1,3",
                 "--seeds", "1", "--runs-dir", str(tmp_path / "runs"), "--threads", "1"])
    out = capsys.readouterr().out
    study = Path(out.strip().splitlines()[-1][len("study: "):])
    assert code == 0
    assert "held out as the validation split" in out
    state = load_study(study)
    assert state["methods"] == ["supervised", "sskt alpha=0.1 temperature=1", "sskt alpha=0.1 temperature=3",
                                "sskt alpha=1 temperature=1", "sskt alpha=1 temperature=3"]
    run = next(r for r in state["runs"] if r["method"] == "sskt alpha=1 temperature=3")
    cfg = load_preset(Path(run["run_path"]) / "preset.yaml")
    assert (cfg.method.alpha, cfg.method.temperature, cfg.data.val_split) == (1.0, 3.0, 0.1)
    assert all(r["test_at_best"] is not None for r in state["runs"])  # the test split scored beside validation
    choice = grid_choice(state)
    best_val = max(r["best_val_acc"] for r in state["runs"] if r["method"] != "supervised")
    assert choice["val_mean"] == best_val
    table = (study / "table.md").read_text()
    assert "## Grid choice" in table and "chosen on the **validation split**" in table


def test_grid_and_ablation_refuse_bad_input(tmp_path, capsys):
    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(STUDY), preset)
    for args, sentence in ((["--grid", "method.alpha"], "KEY=V1,V2"),
                           (["--grid", "data.labels_per_class=1,2"], "same data"),
                           (["--grid", "method.nonsense=1,2"], "nonsense"),
                           (["--grid", "method.alpha=1", "--ablate-sources"], "not both")):
        assert main(["compare", str(preset), *args, "--runs-dir", str(tmp_path / "runs")]) == 2
        assert sentence in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- the progress line (issue item 6)

def test_progress_line_shows_the_target_loss_beside_a_larger_total():
    import io

    from sskt_engine import events as ev
    from sskt_engine.cli import TerminalProgress

    stream = io.StringIO()
    show = TerminalProgress(stream)
    show(ev.Progress(epoch=0, step=5, global_step=5, total_steps=10, losses={"loss": 51.7, "target": 0.03,
                                                                              "aux/shapes": 51.67},
                     train_acc=0.99, lr=0.1, samples_per_s=100.0, eta_s=3.0, time=0.0))
    show(ev.Progress(epoch=0, step=6, global_step=6, total_steps=10, losses={"loss": 0.5, "target": 0.5},
                     train_acc=0.5, lr=0.1, samples_per_s=100.0, eta_s=3.0, time=0.0))
    sskt_line, supervised_line = stream.getvalue().splitlines()
    assert "loss 51.7000 (target 0.0300)" in sskt_line
    assert "loss 0.5000 " in supervised_line and "target" not in supervised_line  # nothing to add: equal


# ----------------------------------------------------------------------------- sskt predict with a preset's source

def test_predict_shows_what_a_preset_source_sees(tmp_path, capsys):
    from PIL import Image

    from sskt_engine.data.demo_world import SHAPES_CLASSES, demo_splits

    signs = demo_splits("signs")
    image = tmp_path / "sign.png"
    Image.fromarray(signs.val.images[1].permute(1, 2, 0).numpy()).save(image)  # a "go" sign drawn as a triangle
    preset = tmp_path / "preset.yaml"
    save_preset(loads_preset(PRESET), preset)
    assert main(["predict", "--preset", str(preset), str(image), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("source shapes (") and "fed to it at 32 px" in lines[0]
    name, probability, soft = lines[2].split()[0], float(lines[2].split()[1]), float(lines[2].split()[-1][:-1])
    assert name == "triangle" and name in SHAPES_CLASSES
    assert probability > soft > 0  # temperature 2 softens the soft label
    # another source by spec, and a name the preset does not have
    assert main(["predict", "--preset", str(preset), "--source", f"{SHIPPED},input_size=8", str(image)]) == 0
    assert "fed to it at 8 px" in capsys.readouterr().out
    assert main(["predict", "--preset", str(preset), "--source", "nope", str(image)]) == 2
    assert "has no source of that name" in capsys.readouterr().err
    assert main(["predict", str(image)]) == 2  # a model file and no image


# ----------------------------------------------------------------------------- the GUI's Rank action

def test_gui_rank_action_scores_sources_in_the_background(make_window, gui_env, fake_trainer, flat_file, qtbot):
    pytest.importorskip("PySide6")
    preset = gui_env / "rank.yaml"
    save_preset(loads_preset(PRESET, overrides=[f"sources=[{{kind: checkpoint, path: '{SHIPPED}', name: shapes}}, "
                                                f"{{kind: checkpoint, path: '{flat_file}', name: flat}}]"]), preset)
    window = make_window(fake_trainer, preset)
    panel = window.setup_panel.ranking
    sources = window.setup_panel.sources
    assert panel.rank_button.isVisibleTo(window.setup_panel) and panel.table.isHidden()
    panel.rank_button.click()
    assert panel.running and not panel.rank_button.isEnabled()  # in the background: the window stays usable
    qtbot.waitUntil(lambda: panel.ranking is not None and not panel.running, timeout=180_000)
    assert panel.rank_button.isEnabled()
    assert [panel.table.item(r, 1).text() for r in range(panel.table.rowCount())] == ["shapes", "⚠ flat"]
    assert "close to uniform" in panel.table.item(1, 1).toolTip()
    # the scores next to each source, in the preset's order
    assert "#1 · LEEP" in sources.list.item(0).text() and "#2 · LEEP" in sources.list.item(1).text()
    assert "⚠" in sources.list.item(1).text()
    # the inspect view of the selected source: every side read and its classes
    panel.table.selectRow(1)
    text = panel.inspect.text()
    assert "flat" in text and "native" in text and "64 px" in text and "close to uniform" in text
    # an edit to the sources makes the scores stale: they go
    sources.list.setCurrentRow(1)
    sources.remove_selected()
    assert panel.table.isHidden() and "LEEP" not in sources.list.item(0).text()


def test_gui_rank_without_sources_or_with_errors_says_why(make_window, tiny_preset, fake_trainer):
    window = make_window(fake_trainer, tiny_preset)
    panel = window.setup_panel.ranking
    panel.rank_button.click()
    assert not panel.running and "Add a source first" in panel.status.text()
    window.document.set(("train", "epochs"), -3)
    panel.rank_button.click()
    assert not panel.running and "Fix the preset's errors first" in panel.status.text()


def test_compare_dialog_ablates_sources_and_runs_a_grid(make_window, gui_env, fake_trainer, qtbot):
    pytest.importorskip("PySide6")
    preset = gui_env / "ablate.yaml"
    save_preset(loads_preset(STUDY), preset)
    window = make_window(fake_trainer, preset)
    window.compare_action.trigger()
    dialog = window.compare_dialog
    dialog.rows_mode.setCurrentIndex(dialog.rows_mode.findData("ablate"))
    assert dialog.run_button.isEnabled() and not dialog.grid_edit.isEnabled()
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
    assert finished.args[1] == "finished"
    rows = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert rows == ["supervised", "sskt: only shapes", "sskt: only shapes8", "sskt: all 2 sources"]
    assert dialog.run_status.text().startswith("Gain over supervised, per seed: sskt: only shapes")

    dialog.rows_mode.setCurrentIndex(dialog.rows_mode.findData("grid"))
    for name, box in dialog.method_checks.items():
        box.setChecked(name in ("supervised", "sskt"))
    assert not dialog.run_button.isEnabled()  # no grid yet
    dialog.grid_edit.setText("method.alpha=0.1,1")
    assert dialog.run_button.isEnabled()
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
    state = json.loads((Path(finished.args[0]) / "study.json").read_text())
    assert state["methods"] == ["supervised", "sskt alpha=0.1", "sskt alpha=1"] and state["grid_val_split"] == 0.1
    assert "chosen on the held-out validation split" in dialog.run_status.text()
    dialog.grid_edit.setText("method.nonsense=1,2")
    dialog.run_button.click()
    assert not dialog.busy() and "nonsense" in dialog.run_status.text()
