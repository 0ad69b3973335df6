"""Compare methods: the current experiment as a study of methods x seeds, in the background,
with progress and a table of mean ± std read from the study folder."""

from __future__ import annotations

import json
from pathlib import Path


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
    assert dialog.progress.value() == dialog.progress.maximum() == 4
    assert str(study) in dialog.folder_label.text()
    assert dialog.run_button.isEnabled() and not dialog.busy()


def test_compare_can_be_stopped(make_window, tiny_preset, fake_trainer, qtbot):
    fake_trainer.step_delay = 0.01
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), 50)
    dialog = window.open_compare()
    for name, box in dialog.method_checks.items():
        box.setChecked(name == "supervised")
    dialog.seeds.setValue(3)
    with qtbot.waitSignal(dialog.study_finished, timeout=60000) as finished:
        dialog.run_button.click()
        qtbot.waitUntil(lambda: "Run 1/3" in dialog.progress.format(), timeout=20000)
        dialog.stop_button.click()
    assert finished.args[1] == "stopped"
