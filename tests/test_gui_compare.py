"""Compare methods: the current experiment as a study of methods x seeds, in the background,
with progress and a table of mean ± std read from the study folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_compare_methods_makes_a_study_table(make_window, tiny_preset, fake_trainer, qtbot, gui_env):
    window = make_window(fake_trainer, tiny_preset)
    assert window.compare_action.text() == "&Compare Methods…"
    window.compare_action.trigger()
    dialog = window.compare_dialog
    assert dialog is not None and dialog.isVisible()
    for name, box in dialog.method_checks.items():
        box.setChecked(name in ("supervised", "dml"))
    assert dialog.methods() == tuple(m for m in dialog.method_checks if m in ("supervised", "dml"))
    dialog.seeds.setValue(2)
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
        assert dialog.busy() and dialog.stop_button.isEnabled() and not dialog.run_button.isEnabled()
    folder, status = finished.args
    assert status == "finished"
    study = Path(folder)
    assert study.parent == gui_env / "runs" / "studies"
    state = json.loads((study / "study.json").read_text())
    assert len(state["runs"]) == 4 and all(r["status"] == "finished" for r in state["runs"])
    assert (study / "table.md").is_file()
    assert dialog.table.rowCount() == 2
    assert {dialog.table.item(r, 0).text() for r in range(2)} == {"supervised", "dml"}
    assert all(dialog.table.item(r, 1).text() == "2" for r in range(2))
    assert "%" in dialog.table.item(0, 2).text()
    assert dialog.table.horizontalHeaderItem(4).text() == "Time per run"
    assert dialog.table.item(0, 4).text() == "–"  # the fake trainer's summaries record no wall time
    assert dialog.progress.value() == dialog.progress.maximum() == 4
    assert str(study) in dialog.folder_label.text()
    assert dialog.run_button.isEnabled() and not dialog.busy()
    # curves: per method a faint line per run, the ± std band (two seeds) and the mean line
    plot = dialog.curves
    assert set(plot.method_items) == {"supervised", "dml"} and plot.live_item is None
    for method, items in plot.method_items.items():
        mean = items[-1]
        assert mean.name().startswith(f"{method} (mean of 2 runs")
        x, y = mean.getData()
        assert list(x) == list(range(1, window.document.config.train.epochs + 1))
        runs = [i.getData()[1] for i in items[:2]]
        assert y == pytest.approx((runs[0] + runs[1]) / 2)
        assert any(type(i).__name__ == "FillBetweenItem" for i in items)


def _slow_supervised_study(make_window, tiny_preset, fake_trainer, epochs: int, seeds: int = 1):
    """A Compare dialog set to a supervised-only study whose runs last long enough to act during them."""
    fake_trainer.step_delay = 0.01
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), epochs)
    dialog = window.open_compare()
    for name, box in dialog.method_checks.items():
        box.setChecked(name == "supervised")
    dialog.seeds.setValue(seeds)
    return dialog


def test_compare_can_be_stopped(make_window, tiny_preset, fake_trainer, qtbot):
    dialog = _slow_supervised_study(make_window, tiny_preset, fake_trainer, epochs=50, seeds=3)
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
        qtbot.waitUntil(lambda: "Run 1/3" in dialog.progress.format(), timeout=20000)
        dialog.stop_button.click()
    assert finished.args[1] == "stopped"


def test_compare_draws_the_running_run_live(make_window, tiny_preset, fake_trainer, qtbot):
    dialog = _slow_supervised_study(make_window, tiny_preset, fake_trainer, epochs=40)
    with qtbot.waitSignal(dialog.study_finished, timeout=60000):
        dialog.run_button.click()
        qtbot.waitUntil(lambda: dialog.curves.live_item is not None and len(dialog.curves.live_points[0]) >= 2,
                        timeout=20000)
        assert dialog.curves.live_item.name() == "supervised (running)"
        assert "supervised: epoch" in dialog.run_status.text()
        dialog.stop_button.click()
    assert dialog.curves.live_item is None  # the ended run is now one of the method's curves


def test_a_study_from_the_command_line_opens_in_the_dialog(make_window, tiny_preset, fake_trainer, qtbot,
                                                           tmp_path, monkeypatch):
    from app.widgets import compare_dialog

    window = make_window(fake_trainer, tiny_preset)
    dialog = window.open_compare()
    for name, box in dialog.method_checks.items():
        box.setChecked(name == "supervised")
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
    study = Path(finished.args[0])

    fresh = window.open_compare()  # a new dialog, as after restarting the app
    assert fresh.table.rowCount() == 0
    monkeypatch.setattr(compare_dialog.QtWidgets.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(study)))
    with qtbot.waitSignal(fresh.study_opened, timeout=10000) as opened:  # read in a worker thread
        fresh.open_button.click()
    assert opened.args == [str(study), "finished"]
    assert fresh.table.rowCount() == 1 and fresh.table.item(0, 0).text() == "supervised"
    assert set(fresh.curves.method_items) == {"supervised"}
    assert fresh.progress.format() == f"Study finished: {study.name}"

    errors = []
    monkeypatch.setattr(compare_dialog, "show_error", lambda parent, title, text, *a: errors.append(text))
    with qtbot.waitSignal(fresh.study_opened, timeout=10000) as opened:
        assert fresh.open_study(tmp_path)
    assert opened.args == ["", "error"]
    assert errors == [f"{tmp_path} is not a study folder (it has no study.json)"]
    assert fresh.table.rowCount() == 1  # what was shown stays


def test_compare_can_train_a_kd_teacher_per_seed(make_window, tiny_preset, fake_trainer, qtbot, gui_env):
    window = make_window(fake_trainer, tiny_preset)
    dialog = window.open_compare()
    for name, box in dialog.method_checks.items():
        box.setChecked(name == "supervised")
    assert not dialog.teacher.isEnabled()  # only KD uses a teacher
    dialog.method_checks["kd"].setChecked(True)
    assert dialog.teacher.isEnabled() and dialog.teacher.currentData() == ""
    dialog.teacher.setCurrentIndex(dialog.teacher.findData("tiny_cnn"))
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
    assert finished.args[1] == "finished"
    state = json.loads((Path(finished.args[0]) / "study.json").read_text())
    assert state["teacher_arch"] == "tiny_cnn" and len(state["teacher_runs"]) == 1
    assert [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())] == [
        "supervised", "kd teacher", "kd"]
    assert dialog.progress.value() == dialog.progress.maximum() == 3


def test_time_per_run_reads_as_seconds_or_minutes():
    from sskt_engine.formatting import duration as _duration

    assert [_duration(v) for v in (None, 8.4, 59.6, 86.7, 268.6, 3725)] == ["–", "8 s", "1:00", "1:27", "4:29",
                                                                            "62:05"]
