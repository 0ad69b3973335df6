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
        assert not window.start_action.isEnabled()  # while Start checks the files, then while it runs
        qtbot.waitUntil(window.controller.is_running, timeout=30000)
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
    # The runs list and the results are read from the run folder in worker threads.
    qtbot.waitUntil(lambda: not window.runs_panel.is_listing(), timeout=10000)
    assert window.runs_panel.info(Path(run_dir)).status == "finished"
    assert window.results.run_dir == Path(run_dir)
    qtbot.waitUntil(lambda: window.results.confusion.matrix.sum() > 0, timeout=10000)
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
    assert summary.status == "stopped" and summary.epochs_completed < epochs

    # Resume continues the same folder to the end.
    window.runs_panel.refresh()
    qtbot.waitUntil(lambda: not window.runs_panel.is_listing(), timeout=10000)
    window.runs_panel.select([Path(run_dir)])
    assert window.resume_action.isEnabled()
    if which == "real":
        return  # 40 real epochs are too long for the suite; resuming is covered with the fake
    with qtbot.waitSignal(window.controller.finished, timeout=30000) as resumed:
        window.resume_action.trigger()
    assert resumed.args == [run_dir, "finished"]
    assert RunFolder(run_dir).summary().epochs_completed == epochs
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
    stop_keys = {s.toString() for s in window.stop_action.shortcuts()}
    assert "Ctrl+." in stop_keys and "Esc" not in stop_keys
    assert window.open_action.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Open)
    assert window.save_action.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Save)

    qtbot.keyClick(window, QtCore.Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.plots.point_count("train loss") > 2, timeout=10000)
    assert fake_trainer.instances[0].thread_name != threading.main_thread().name
    # Esc while typing in a text field (issue 18, item 2: it stopped the run from anywhere)
    name = window.setup_panel.forms["experiment"].editor("name").input
    name.setFocus()
    qtbot.keyClick(name, QtCore.Qt.Key.Key_Escape)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)
    qtbot.wait(100)
    assert window.controller.is_running()
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as finished:
        qtbot.keyClick(window, QtCore.Qt.Key.Key_Period, QtCore.Qt.KeyboardModifier.ControlModifier)
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
    assert RunFolder(run_dir).summary().status == "stopped"


def test_a_stop_during_set_up_is_a_stop_with_one_sentence_not_an_error(make_window, tiny_preset, qtbot,
                                                                       fake_trainer, monkeypatch):
    """Issue 14 item 12 / issue 18 item 2: Stop before the first epoch says no epoch completed."""
    from sskt_engine.errors import StoppedBeforeStart

    shown = []
    monkeypatch.setattr("app.main_window.show_error", lambda *args: shown.append(args))

    def stopped_in_set_up(self):
        raise StoppedBeforeStart("loading the dataset")

    monkeypatch.setattr(fake_trainer, "run", stopped_in_set_up)
    window = make_window(fake_trainer, tiny_preset)
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as finished:
        window.start_action.trigger()
    assert finished.args[1] == "stopped" and shown == []  # no error dialog
    assert "no epoch completed" in window.run_bar.progress.format()
    assert "-100" not in window.run_bar.progress.format()


def test_a_run_stopped_in_its_first_epoch_shows_no_best_score(qtbot):
    from app.widgets.run_bar import RunBar
    from sskt_engine.events import RunFinished

    from PySide6 import QtWidgets

    bar = RunBar(*(QtWidgets.QPushButton(label) for label in ("Start", "Stop", "Resume")))
    qtbot.addWidget(bar)
    bar.handle_event(RunFinished(status="stopped", epochs_completed=0, best_val_acc=-1.0,
                                 final_val_acc=float("nan"), wall_time_s=2.0, run_dir="x", time=0.0))
    text = bar.progress.format()
    assert text == "Stopped before the first epoch ended: no epoch completed"  # before: "best -100.00%"
