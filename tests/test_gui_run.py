"""Runs through the window: a whole short run, Stop in the middle, Resume, shortcuts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from conftest import real_trainer_class, type_into
from sskt_engine.runs import RunFolder

LEFT = QtCore.Qt.MouseButton.LeftButton


def test_whole_short_run_through_the_gui(make_window, tiny_preset, qtbot, fake_trainer):
    trainer = real_trainer_class() or fake_trainer
    window = make_window(trainer, tiny_preset)
    assert window.start_action.isEnabled(), window.run_bar.problem_text()
    assert not window.stop_action.isEnabled()

    with qtbot.waitSignal(window.controller.finished, timeout=60000) as finished:
        qtbot.mouseClick(window.start_button, LEFT)
        assert window.controller.is_running()
        assert not window.start_action.isEnabled()
    run_dir, status = finished.args
    assert status == "finished"

    folder = RunFolder(run_dir)
    assert folder.exists() and folder.metrics_path.stat().st_size > 0
    assert folder.status() == "finished"
    window.plots.redraw()
    assert window.plots.point_count("train loss") >= 2
    assert window.plots.point_count("val acc") == 2  # one point per epoch
    x, y = window.plots.curves["val acc"].item.getData()
    assert list(x) == [1.0, 2.0] and all(0.0 <= v <= 100.0 for v in y)
    assert window.run_bar.progress.value() == window.run_bar.progress.maximum()
    assert "Finished" in window.run_bar.progress.format()
    assert window.runs_panel.info(Path(run_dir)).status == "finished"
    assert window.results.run_dir == Path(run_dir)
    assert window.results.confusion.matrix.sum() > 0
    assert window.start_action.isEnabled() and not window.controller.is_running()


@pytest.mark.parametrize("which", ["fake", "real"])
def test_stop_in_the_middle_then_resume(make_window, tiny_preset, qtbot, fake_trainer, which):
    if which == "real":
        trainer = real_trainer_class()
        if trainer is None:
            pytest.skip("the engine's Trainer is not importable yet")
    else:
        trainer = fake_trainer
        trainer.step_delay = 0.01
    window = make_window(trainer, tiny_preset)
    epochs = 12 if which == "fake" else 40
    type_into(qtbot, window.setup_panel.forms["train"].editor("epochs"), str(epochs))
    assert window.document.get(("train", "epochs")) == epochs
    assert window.start_action.isEnabled()

    window.start_action.trigger()
    qtbot.waitUntil(lambda: window.plots.point_count("train loss") > 0, timeout=30000)
    assert window.stop_action.isEnabled()
    with qtbot.waitSignal(window.controller.finished, timeout=30000) as finished:
        qtbot.mouseClick(window.stop_button, LEFT)
        assert window.state_label.text() == "Stopping…"
    run_dir, status = finished.args
    assert status == "stopped"
    summary = RunFolder(run_dir).summary()
    assert summary["status"] == "stopped" and summary["epochs_completed"] < epochs

    # Resume continues the same folder to the end.
    window.runs_panel.refresh()
    window.runs_panel.select([Path(run_dir)])
    assert window.resume_action.isEnabled()
    if which == "real":
        return  # 40 real epochs are too long for the suite; resuming is covered with the fake
    with qtbot.waitSignal(window.controller.finished, timeout=30000) as resumed:
        window.resume_action.trigger()
    assert resumed.args == [run_dir, "finished"]
    assert RunFolder(run_dir).summary()["epochs_completed"] == epochs
    window.plots.redraw()
    assert window.plots.point_count("val acc") == epochs  # the earlier epochs are replayed from the folder


def test_training_runs_off_the_gui_thread_and_shortcuts_work(make_window, tiny_preset, qtbot, fake_trainer):
    fake_trainer.step_delay = 0.01
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), 50)
    window.activateWindow()
    qtbot.waitUntil(lambda: QtWidgets.QApplication.activeWindow() is window, timeout=3000)
    shortcut_keys = {s.toString() for s in window.start_action.shortcuts()}
    assert {"Ctrl+R", "F5"} <= shortcut_keys
    assert {"Esc", "Ctrl+."} <= {s.toString() for s in window.stop_action.shortcuts()}
    assert window.open_action.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Open)
    assert window.save_action.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Save)

    qtbot.keyClick(window, QtCore.Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.plots.point_count("train loss") > 2, timeout=10000)
    assert fake_trainer.instances[0].thread_name != threading.main_thread().name
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as finished:
        qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)
    assert finished.args[1] == "stopped"


def test_closing_during_a_run_asks_stops_and_waits(make_window, tiny_preset, qtbot, fake_trainer, monkeypatch):
    fake_trainer.step_delay = 0.01
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), 100)
    window.document._saved = window.document.raw
    window.start_action.trigger()
    qtbot.waitUntil(lambda: window.plots.point_count("train loss") > 0, timeout=10000)
    asked = []
    monkeypatch.setattr("app.main_window.ask_stop_run", lambda parent: asked.append(1) or False)
    assert not window.close()  # "Cancel": keeps running
    assert asked and window.controller.is_running()
    monkeypatch.setattr("app.main_window.ask_stop_run", lambda parent: True)
    assert window.close()
    assert not window.controller.is_running()
    run_dir = next(window.runs_root.iterdir())
    assert RunFolder(run_dir).summary()["status"] == "stopped"
