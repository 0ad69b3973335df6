"""The runs panel: runs from anywhere (GUI or CLI) with status and accuracy, overlays,
a run's preset, and deleting after confirmation."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from conftest import TINY_PRESET
from sskt_engine.config import from_dict

Buttons = QtWidgets.QMessageBox.StandardButton


def _cli_run(fake_trainer, runs_root: Path, name: str, epochs: int = 2) -> Path:
    """A run made without the GUI, as `sskt train` would."""
    cfg = from_dict({**TINY_PRESET, "name": name, "train": {**TINY_PRESET["train"], "epochs": epochs}})
    return fake_trainer(cfg, runs_root).run().path


def test_runs_from_outside_the_gui_are_listed_and_overlaid(make_window, fake_trainer, tiny_preset, qtbot, gui_env):
    runs_root = gui_env / "runs"
    first = _cli_run(fake_trainer, runs_root, "first")
    window = make_window(fake_trainer, tiny_preset)
    panel = window.runs_panel
    assert panel.tree.topLevelItemCount() == 1
    item = panel.tree.topLevelItem(0)
    assert (item.text(0), item.text(2), item.text(3)) == ("first", "finished", "40.00%")
    assert "epochs 2/2" in item.toolTip(0)
    assert item.text(1)  # the start time, from the folder name

    second = _cli_run(fake_trainer, runs_root, "second", epochs=3)  # appears by itself (file watcher)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 2, timeout=5000)

    panel.select([first, second])  # their curves are read in a worker thread, then drawn
    qtbot.waitUntil(lambda: set(window.plots.overlays) == {first.name, second.name}, timeout=10000)
    val = [c for c in window.plots.overlays[second.name] if c.key.endswith("val acc")][0]
    assert val.item.getOriginalDataset()[1].tolist() == [30.0, 40.0, 50.0]
    panel.select([])
    assert not window.plots.overlays


def test_open_a_runs_preset(make_window, fake_trainer, tiny_preset, gui_env):
    run = _cli_run(fake_trainer, gui_env / "runs", "preset-source", epochs=3)
    window = make_window(fake_trainer, tiny_preset)
    window.runs_panel.select([run])
    window.runs_panel.open_preset_action.trigger()
    assert window.document.config.name == "preset-source" and window.document.config.train.epochs == 3
    assert window.setup_panel.forms["train"].editor("epochs").input.text() == "3"
    assert window.document.title == f"preset of {run.name}" and window.isWindowModified()


def test_delete_only_after_confirmation(make_window, fake_trainer, tiny_preset, gui_env, dialogs):
    runs = [_cli_run(fake_trainer, gui_env / "runs", f"r{i}") for i in range(2)]
    window = make_window(fake_trainer, tiny_preset)
    panel = window.runs_panel
    panel.select(runs)
    dialogs.answers = [Buttons.Cancel]
    assert not panel.delete_selected()
    assert all(r.exists() for r in runs)
    assert dialogs.shown[-1][0] == "question" and "Delete 2 run folder(s)" in dialogs.shown[-1][2]
    panel.select(runs[:1])
    dialogs.answers = [Buttons.Yes]
    assert panel.delete_selected()
    assert not runs[0].exists() and runs[1].exists()
    assert panel.tree.topLevelItemCount() == 1


def test_results_of_a_run(make_window, fake_trainer, tiny_preset, gui_env, qtbot):
    run = _cli_run(fake_trainer, gui_env / "runs", "results", epochs=3)
    window = make_window(fake_trainer, tiny_preset)
    window.runs_panel.select([run])
    with qtbot.waitSignal(window.results.shown, timeout=10000):  # the run's files are read in a worker
        window.runs_panel.results_button.click()
    results = window.results
    assert window.tabs.currentWidget() is results
    assert "best val acc <b>50.00%</b>" in results.metrics.text()
    assert results.class_plot.values.tolist() == [90.0, 50.0, 20.0]
    assert results.confusion.matrix.tolist() == [[9, 1, 0], [3, 5, 2], [4, 4, 2]]
    assert results.confusion.class_names == ["a", "b", "c"]
    assert abs(results.confusion.share[1, 2] - 0.2) < 1e-9  # rows are normalised for the colours


def test_the_live_run_updates_its_own_row_without_rereading_every_run(make_window, fake_trainer, tiny_preset,
                                                                       qtbot, gui_env, monkeypatch):
    # A run's epoch ends refresh only its row: rereading a folder of hundreds of runs on the GUI
    # thread each epoch took ~55 ms with 300 runs (measured), a visible stall.
    runs_root = gui_env / "runs"
    for name in ("old-a", "old-b"):
        _cli_run(fake_trainer, runs_root, name)
    fake_trainer.step_delay = 0.02
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), 40)
    panel = window.runs_panel
    from app.widgets import runs_panel

    listed = []
    real_list_runs = runs_panel.list_runs
    monkeypatch.setattr(runs_panel, "list_runs", lambda root: listed.append(root) or real_list_runs(root))

    def live_epochs() -> int:
        for i in range(panel.tree.topLevelItemCount()):
            status = panel.tree.topLevelItem(i).text(2)
            if status.startswith("running "):
                return int(status.split()[1].split("/")[0])
        return -1

    window.start_run()
    qtbot.waitUntil(lambda: live_epochs() >= 1, timeout=20000)
    qtbot.wait(500)  # the file watcher's delayed refresh for the new run folder has happened
    lists, epochs = len(listed), live_epochs()
    qtbot.waitUntil(lambda: live_epochs() >= epochs + 2, timeout=20000)
    assert len(listed) == lists  # two more epochs ended without listing the runs folder again
    assert panel.tree.topLevelItemCount() == 3
    window.stop_run()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=20000)
