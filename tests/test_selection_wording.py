"""Without a held-out validation split no best epoch is chosen (honest selection), so neither
the command line nor the window may print a "best" score that is only the last epoch's."""

from __future__ import annotations

import time

from sskt_engine.cli import main
from sskt_engine.events import EpochEnd, RunFinished, RunStarted

PRESET = """\
name: wording
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4%s}
method: {name: supervised}
train: {epochs: 2, batch_size: 16, lr: 0.05, schedule: constant, seed: 1, log_every: 1, device: cpu}
"""


def _train(tmp_path, capsys, data_extra: str) -> str:
    preset = tmp_path / "p.yaml"
    preset.write_text(PRESET % data_extra)
    assert main(["train", str(preset), "--runs-dir", str(tmp_path / "runs"), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    return captured.err + captured.out


def test_cli_names_no_best_without_a_held_out_split(tmp_path, capsys):
    text = _train(tmp_path, capsys, "")
    epoch_lines = [line for line in text.splitlines() if line.startswith("epoch ") and ": train loss" in line]
    assert len(epoch_lines) == 2
    assert not any("best" in line or line.rstrip().endswith("*") for line in epoch_lines), epoch_lines
    finished = next(line for line in text.splitlines() if line.startswith("finished:"))
    assert "best" not in finished and "final val acc" in finished


def test_cli_names_the_best_epoch_chosen_on_a_held_out_split(tmp_path, capsys):
    text = _train(tmp_path, capsys, ", val_split: 0.2")
    epoch_lines = [line for line in text.splitlines() if line.startswith("epoch ") and ": train loss" in line]
    assert all("(best " in line for line in epoch_lines)
    assert "best val acc" in next(line for line in text.splitlines() if line.startswith("finished:"))


def _started(selection: str) -> RunStarted:
    return RunStarted(run_dir="/tmp/r", name="r", method="supervised", device="cpu", epochs=2, start_epoch=0,
                      steps_per_epoch=1, num_classes=2, class_names=("a", "b"), networks=("target",),
                      source_names=(), train_size=4, val_size=4, time=time.time(), selection=selection)


def test_run_bar_and_log_say_final_not_best_without_selection(qtbot):
    from app.widgets.log_view import LogView
    from app.widgets.run_bar import RunBar

    for selection, says_best in (("none", False), ("validation", True)):
        from PySide6 import QtWidgets

        bar = RunBar(QtWidgets.QPushButton("Start"), QtWidgets.QPushButton("Stop"), QtWidgets.QPushButton("Resume"))
        log = LogView()
        qtbot.addWidget(bar)
        qtbot.addWidget(log)
        events = [_started(selection),
                  EpochEnd(epoch=0, train={"loss": 1.0, "acc": 0.5}, val={"loss": 1.0, "acc": 0.25}, lr=0.1,
                           best_val_acc=0.25, is_best=True, epoch_time_s=1.0, time=time.time()),
                  RunFinished(status="finished", epochs_completed=1, best_val_acc=0.25, final_val_acc=0.25,
                              wall_time_s=1.0, run_dir="/tmp/r", time=time.time())]
        for event in events:
            bar.handle_event(event)
            log.handle_event(event)
        texts = [bar.best_label.text(), bar.progress.format(), log.toPlainText()]
        assert all(("best" in t) == says_best for t in texts), (selection, texts)
        assert "final 25.00%" in bar.progress.format() or says_best


def test_the_runs_table_shows_no_best_for_a_run_without_a_held_out_split(make_window, tiny_preset, qtbot):
    """The live row is filled from the EpochEnd events: without selection, Best stays empty."""
    from tests.conftest import real_trainer_class

    trainer = real_trainer_class()
    if trainer is None:
        import pytest

        pytest.skip("needs the real trainer")
    window = make_window(trainer, tiny_preset)  # the tiny preset holds no val_split
    with qtbot.waitSignal(window.controller.finished, timeout=60000):
        window.start_action.trigger()
    qtbot.waitUntil(lambda: not window.runs_panel.is_listing(), timeout=10000)
    item = window.runs_panel.tree.topLevelItem(0)
    assert item.text(3) == ""  # Best: none was chosen
    assert item.text(4).endswith("%")  # Final
    assert "best" not in window.statusBar().currentMessage()
