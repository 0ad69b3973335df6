"""Honest model selection: the best epoch is chosen on a split held out of train and reported
with its test score; without one, no best is chosen (on the test split) and tables say why."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from sskt_engine.cli import main
from sskt_engine.config import loads_preset, save_preset
from sskt_engine.run_summary import NO_SELECTION_REASON
from sskt_engine.runs import RunFolder
from sskt_engine.study import load_study
from sskt_engine.trainer import Trainer

torch.set_num_threads(1)

TINY = """\
name: selection
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 8, val_split: 0.25}
method: {name: supervised}
train: {epochs: 4, batch_size: 16, lr: 0.05, seed: 2, device: cpu, log_every: 4}
"""


def test_best_epoch_is_chosen_on_the_held_out_split_and_reported_with_its_test_score(tmp_path, monkeypatch):
    scores: list[tuple[str, float]] = []  # (split, accuracy) in evaluation order
    original = Trainer._evaluate

    def recording(self, setup, epoch, stream=None):
        val, report = original(self, setup, epoch, stream)
        scores.append(("test" if stream is not None else "val", val["acc"]))
        return val, report

    monkeypatch.setattr(Trainer, "_evaluate", recording)
    folder = Trainer(loads_preset(TINY), tmp_path).run()
    summary = folder.summary()
    val = [s for split, s in scores if split == "val"]
    test = [s for split, s in scores if split == "test"]
    assert len(val) == len(test) == 4  # the test split is scored every epoch ...
    best = max(range(4), key=lambda i: (val[i], -i))  # ... but only the held-out split chooses
    assert summary.selection == "validation" and summary.best_score_absent == ""
    assert summary.best_epoch == best + 1 and summary.best_score == val[best]
    assert summary.best_test_score == test[best] and summary.final_test_score == test[-1]
    assert folder.eval_report("best").epoch == best + 1


def test_without_a_held_out_split_tables_show_final_scores_and_say_why(tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    save_preset(loads_preset(TINY, overrides=["data.val_split=0", "train.epochs=2"]), preset)
    assert main(["compare", str(preset), "--methods", "supervised", "--seeds", "1", "--runs-dir",
                 str(tmp_path / "runs")]) == 0
    study = next((tmp_path / "runs" / "studies").iterdir())
    rows = list(csv.DictReader(io.StringIO((study / "table.csv").read_text())))
    assert rows[0]["best_val_acc_mean_pct"] == "" and float(rows[0]["final_val_acc_mean_pct"]) >= 0
    markdown = (study / "table.md").read_text()
    assert f"best is absent: {NO_SELECTION_REASON}" in markdown
    capsys.readouterr()
    run = Path(load_study(study)["runs"][0]["run_path"])
    assert main(["runs", "--runs-dir", str(run.parent)]) == 0
    assert f"best '-': {NO_SELECTION_REASON}" in capsys.readouterr().out


def test_a_study_with_a_held_out_split_reports_the_test_score_at_the_best_epoch(tmp_path):
    preset = tmp_path / "p.yaml"
    save_preset(loads_preset(TINY, overrides=["train.epochs=2"]), preset)
    assert main(["compare", str(preset), "--methods", "supervised", "--seeds", "1", "--runs-dir",
                 str(tmp_path / "runs")]) == 0
    study = next((tmp_path / "runs" / "studies").iterdir())
    row = next(csv.DictReader(io.StringIO((study / "table.csv").read_text())))
    summary = RunFolder(load_study(study)["runs"][0]["run_path"]).summary()
    assert abs(float(row["test_acc_at_best_mean_pct"]) - 100 * summary.best_test_score) < 1e-3
    assert "test at best = the test split's" in (study / "table.md").read_text()
