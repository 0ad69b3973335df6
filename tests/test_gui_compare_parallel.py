"""The Compare dialog's "Runs at once": a study whose runs train two at a time in child processes
(the engine's ``--parallel``), read back into the same table."""

from __future__ import annotations

import json
from pathlib import Path


def test_compare_runs_two_at_once_in_child_processes(make_window, tiny_preset, fake_trainer, qtbot):
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), 1)
    dialog = window.open_compare()
    for name, box in dialog.method_checks.items():
        box.setChecked(name == "supervised")
    dialog.seeds.setValue(2)
    dialog.parallel.setValue(2)
    with qtbot.waitSignal(dialog.study_finished, timeout=300000) as finished:
        dialog.run_button.click()
    folder, status = finished.args
    assert status == "finished"
    state = json.loads((Path(folder) / "study.json").read_text())
    assert [r["status"] for r in state["runs"]] == ["finished", "finished"]
    # trained by the real engine in `sskt study-job` children (not the window's fake trainer), one folder each
    seeds = [r["seed"] for r in state["runs"]]
    assert sorted(r["run_dir"].split("/")[0] for r in state["runs"]) == [f"supervised-s{s}" for s in sorted(seeds)]
    assert all((Path(folder) / "runs" / r["run_dir"].split("/")[0] / "study-job.log").is_file() for r in state["runs"])
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 1).text() == "2"
