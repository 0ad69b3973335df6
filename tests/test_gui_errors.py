"""Failures during training become one sentence with the detail folded away; the window
stays usable and the run is marked failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import real_trainer_class
from sskt_engine.runs import RunFolder


def test_exception_inside_training_shows_the_error_dialog_and_window_keeps_working(
        make_window, tiny_preset, qtbot, fake_trainer, dialogs):
    fake_trainer.fail_with = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    window = make_window(fake_trainer, tiny_preset)
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as finished:
        window.start_action.trigger()
    assert finished.args[1] == "error"
    kind, title, text, detail = dialogs.shown[-1]
    assert kind == "exec" and title == "Training failed"
    assert "CUDA out of memory" in text and "\n" not in text  # one sentence
    assert "Traceback" in detail and "RuntimeError" in detail  # behind "Show Details…"
    assert "CUDA out of memory" in window.log.toPlainText()

    # Still usable: edit, start again, finish.
    fake_trainer.fail_with = None
    window.document.set(("train", "epochs"), 1)
    assert window.start_action.isEnabled() and not window.stop_action.isEnabled()
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as again:
        window.start_action.trigger()
    assert again.args[1] == "finished"
    assert len(dialogs.shown) == 1


def test_run_failed_event_marks_the_run_failed_and_offers_resume(make_window, tiny_preset, qtbot, fake_trainer,
                                                                 dialogs):
    fake_trainer.fail_event_at = 7
    window = make_window(fake_trainer, tiny_preset)
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as finished:
        window.start_action.trigger()
    run_dir, status = finished.args
    assert status == "failed"
    assert dialogs.shown[-1][1:] == ("Training failed", "Training stopped: the loss became NaN at epoch 1.",
                                     "step 3: loss=nan")
    qtbot.waitUntil(lambda: not window.runs_panel.is_listing(), timeout=10000)  # listed in a worker thread
    assert window.runs_panel.info(Path(run_dir)).status == "failed"
    assert "Failed" in window.run_bar.progress.format()
    assert window.resume_action.isEnabled()  # the failed run can be continued
    fake_trainer.fail_event_at = None
    with qtbot.waitSignal(window.controller.finished, timeout=10000) as resumed:
        window.resume_action.trigger()
    assert resumed.args == [run_dir, "finished"]


def test_bad_input_at_setup_says_so_and_makes_no_run(make_window, tiny_preset, qtbot, fake_trainer, dialogs):
    fake_trainer.setup_error = "dataset folder /nowhere does not exist"
    window = make_window(fake_trainer, tiny_preset)
    with qtbot.waitSignal(window.controller.finished, timeout=10000):
        window.start_action.trigger()
    assert dialogs.shown[-1][1:3] == ("Cannot start training", "dataset folder /nowhere does not exist")
    assert dialogs.shown[-1][3] == ""  # nothing to expand: the sentence is all there is
    assert not (window.runs_root.exists() and any(window.runs_root.iterdir()))
    assert window.run_bar.progress.format() == "Did not start"
    assert window.start_action.isEnabled()


def test_real_engine_bad_checkpoint_is_reported(make_window, tiny_preset, qtbot, dialogs, gui_env):
    trainer = real_trainer_class()
    if trainer is None:
        pytest.skip("the engine's Trainer is not importable yet")
    window = make_window(trainer, tiny_preset)
    bad = gui_env / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint")
    method = window.setup_panel.forms["method"].editor("name").input
    method.setCurrentIndex(method.findData("sskt"))
    window.setup_panel.sources.add_source({"kind": "checkpoint", "path": str(bad), "arch": "tiny_cnn",
                                           "num_classes": 12})
    assert window.start_action.isEnabled(), window.run_bar.problem_text()
    window.start_action.trigger()  # Start's check reads the file first and refuses it (no run begins)
    qtbot.waitUntil(lambda: bool(dialogs.shown), timeout=30000)
    kind, title, text, detail = dialogs.shown[-1]
    assert kind == "exec" and title in ("Cannot start training", "Training failed") and text
    if "unexpected error" not in text:  # the engine names the file (an engine bug otherwise; see report)
        assert "broken.pt" in text, detail
    assert window.start_action.isEnabled() and not window.controller.is_running()
    for run in (window.runs_root.iterdir() if window.runs_root.exists() else []):
        assert RunFolder(run).status() != "running"
