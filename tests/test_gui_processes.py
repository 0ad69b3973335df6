"""Processes > 1: the run is `sskt train --nproc N` in a QProcess, followed through its
metrics.jsonl into the same plots and progress; errors show the process's stderr."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore

from conftest import real_trainer_class
from sskt_engine.config import from_dict, save_preset
from sskt_engine.runs import RunFolder

TWO_PROCESS_PRESET = {
    "name": "two-procs",
    "target": {"arch": "tiny_cnn"},
    "data": {"dataset": "demo", "labels_per_class": 4},
    "method": {"name": "supervised"},
    "train": {"epochs": 1, "batch_size": 16, "log_every": 1, "device": "cpu"},
}


def test_two_processes_through_the_gui(make_window, qtbot, gui_env):
    preset = gui_env / "two.yaml"
    save_preset(from_dict(TWO_PROCESS_PRESET), preset)
    window = make_window(real_trainer_class(), preset)
    assert window.run_bar.processes.value() == 1  # in-process by default
    window.run_bar.processes.setValue(2)
    assert window.start_action.isEnabled(), window.run_bar.problem_text()
    with qtbot.waitSignal(window.process_controller.finished, timeout=180000) as finished:
        window.start_action.trigger()
        qtbot.waitUntil(window.process_controller.is_running, timeout=30000)  # after Start's check
        assert window.controller is window.process_controller and window.controller.is_running()
        assert not window.run_bar.processes.isEnabled() and window.stop_action.isEnabled()
    run_dir, status = finished.args
    assert status == "finished", window.process_controller._stderr
    assert Path(run_dir).parent == gui_env / "runs"
    assert RunFolder(run_dir).status() == "finished"
    assert window.process_controller.events_received > 2
    window.plots.redraw()
    assert window.plots.point_count("train loss") >= 1
    assert window.plots.point_count("val acc") == 1
    assert "Finished" in window.run_bar.progress.format()
    qtbot.waitUntil(lambda: not window.runs_panel.is_listing(), timeout=10000)  # listed in a worker thread
    assert window.runs_panel.info(Path(run_dir)).status == "finished"
    assert window.run_bar.processes.isEnabled() and window.start_action.isEnabled()


def test_process_errors_show_the_stderr_tail(make_window, qtbot, gui_env, dialogs, tiny_preset):
    window = make_window(real_trainer_class(), tiny_preset)
    # batch_size 32 does not divide over 3 processes: the CLI refuses with one sentence on stderr.
    window.document.set(("train", "batch_size"), 31)
    window.run_bar.processes.setValue(3)
    with qtbot.waitSignal(window.process_controller.finished, timeout=60000) as finished:
        window.start_action.trigger()
    assert finished.args[1] == "error"
    kind, title, text, detail = dialogs.shown[-1]
    assert title == "Cannot start training" and "batch_size" in text and "batch_size" in detail


def test_stop_terminates_the_process(qtbot, gui_env):
    from app.process_run_controller import ProcessRunController

    controller = ProcessRunController(nproc=2)
    cfg = from_dict({**TWO_PROCESS_PRESET, "train": {**TWO_PROCESS_PRESET["train"], "epochs": 50}})
    events = []
    controller.event.connect(events.append)
    assert controller.start(cfg, gui_env / "runs")
    try:
        qtbot.waitUntil(lambda: bool(controller.run_dir and len(events) > 1), timeout=120000)
        with qtbot.waitSignal(controller.finished, timeout=120000) as finished:
            controller.stop()
            assert controller.stop_requested()
    finally:
        if controller._process is not None:
            controller._process.kill()
            controller.wait(10000)
    run_dir, status = finished.args
    assert status == "stopped", controller._stderr
    assert RunFolder(run_dir).summary().status == "stopped"


def test_the_process_is_this_program_in_a_python_install_and_in_the_bundle(qtbot, monkeypatch, tmp_path):
    import sys

    from app.process_run_controller import ProcessRunController

    controller = ProcessRunController(nproc=3)
    preset, root = tmp_path / "preset.yaml", tmp_path / "runs"
    train = ["train", str(preset), "--nproc", "3", "--runs-dir", str(root)]
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert controller.command(preset, root) == ["/usr/bin/python3", "-m", "sskt_engine.cli", *train]
    # PyInstaller's bundle: sys.executable is the app itself, which runs the CLI when dispatched to
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/sskt-studio/sskt-studio")
    assert controller.command(preset, root) == ["/opt/sskt-studio/sskt-studio", "--sskt-run-module",
                                                "sskt_engine.cli", *train]
