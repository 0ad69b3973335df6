"""Issue 18, items 15 and 16 in the window: rename, tag and note a run from the runs table (the
same labels.json ``sskt label`` writes), and the live curves' x axis in epochs, steps or time."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore

from conftest import TINY_PRESET
from sskt_engine.config import from_dict
from sskt_engine.run_labels import RunLabels, read_labels, write_labels


def _cli_run(fake_trainer, runs_root: Path, name: str, epochs: int = 2) -> Path:
    """A run made without the GUI, as `sskt train` would."""
    cfg = from_dict({**TINY_PRESET, "name": name, "train": {**TINY_PRESET["train"], "epochs": epochs}})
    return fake_trainer(cfg, runs_root).run().path


def _row_text(panel, path: Path, column: int = 0) -> str:
    item = panel._item(path)
    assert item is not None
    return item.text(column)


def test_rename_from_the_table_shows_the_new_name_and_keeps_the_folder(make_window, fake_trainer, tiny_preset,
                                                                        gui_env, qtbot, monkeypatch):
    run = _cli_run(fake_trainer, gui_env / "runs", "plain")
    window = make_window(fake_trainer, tiny_preset)
    panel = window.runs_panel
    assert _row_text(panel, run) == "plain"
    panel.select([run])
    asked = []
    monkeypatch.setattr("PySide6.QtWidgets.QInputDialog.getText",
                        lambda parent, title, label, echo, text: (asked.append((title, text)), ("baseline lr 0.05",
                                                                                                 True))[1])
    assert panel.rename_action.isEnabled()
    panel.rename_action.trigger()
    assert asked == [("Rename run", "plain")]  # the dialog starts from the name shown
    assert _row_text(panel, run) == "baseline lr 0.05"
    assert run.is_dir() and read_labels(run).name == "baseline lr 0.05"  # the folder keeps its name
    panel.refresh()  # a fresh listing reads it back from the file
    qtbot.waitUntil(lambda: not panel.is_listing(), timeout=10000)
    assert _row_text(panel, run) == "baseline lr 0.05"
    assert "run's own name: plain" in panel._item(run).toolTip(0)
    # the overlay legend of the selected run follows the new name
    qtbot.waitUntil(lambda: run.name in window.plots.overlays, timeout=10000)
    qtbot.waitUntil(lambda: any(n.startswith("baseline lr 0.05 · ") for n in window.plots.overlay_names()),
                    timeout=10000)


def test_tags_show_in_their_column_and_the_filter_finds_tags_and_notes(make_window, fake_trainer, tiny_preset,
                                                                       gui_env, qtbot, monkeypatch, dialogs):
    runs = [_cli_run(fake_trainer, gui_env / "runs", name) for name in ("alpha", "beta", "gamma")]
    write_labels(runs[2], RunLabels(note="diverged after the warm-up"))  # as `sskt label --note` would
    window = make_window(fake_trainer, tiny_preset)
    panel = window.runs_panel
    from app.widgets.runs_panel import TAGS_COLUMN

    assert panel.tree.isColumnHidden(TAGS_COLUMN)  # nobody tagged anything yet
    panel.select([runs[1]])
    monkeypatch.setattr("app.widgets.run_label_dialogs.ask_tags", lambda parent, info: "paper, fast")
    window.resize(1280, 720)  # a narrow runs panel: the column would squeeze the names, so the hint says where
    qtbot.waitUntil(lambda: window.width() == 1280)
    assert panel.tag_selected()
    assert _row_text(panel, runs[1], TAGS_COLUMN) == "paper fast"
    assert panel.tree.isColumnHidden(TAGS_COLUMN) and "Tags column" in panel.hint.text()
    assert read_labels(runs[1]).tags == ("paper", "fast")
    window.resize(1920, 1080)  # a wide runs panel: room beside the names, so tagging shows the column
    window.resizeDocks([window.runs_dock], [760], QtCore.Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: panel.tree.viewport().width() > 600)
    assert panel.tag_selected()
    assert not panel.tree.isColumnHidden(TAGS_COLUMN)
    assert panel.hint.text().startswith("Select several runs")

    panel.filter.setText("paper")
    assert panel.visible_runs() == [runs[1]]
    panel.filter.setText("warm-up")  # a note's words
    assert panel.visible_runs() == [runs[2]]
    panel.filter.setText("")
    assert set(panel.visible_runs()) == set(runs)

    # a bad tag is one sentence and changes nothing (the filter above unselected the run it hid)
    panel.select([runs[1]])
    monkeypatch.setattr("app.widgets.run_label_dialogs.ask_tags", lambda parent, info: "x" * 41)
    assert not panel.tag_selected()
    assert dialogs.shown[-1][0] == "warning" and "at most 40" in dialogs.shown[-1][2]
    assert read_labels(runs[1]).tags == ("paper", "fast")


def test_a_note_and_a_rename_while_the_run_trains_survive_its_epochs(make_window, fake_trainer, tiny_preset,
                                                                    qtbot, monkeypatch):
    fake_trainer.step_delay = 0.05  # long enough to label it mid-run
    window = make_window(fake_trainer, tiny_preset)
    window.start_action.trigger()
    qtbot.waitUntil(lambda: window.runs_panel.live_run is not None
                    and window.runs_panel._item(window.runs_panel.live_run) is not None, timeout=10000)
    panel, run = window.runs_panel, window.runs_panel.live_run
    panel.select([run])
    monkeypatch.setattr("app.widgets.run_label_dialogs.ask_note", lambda parent, info: "live note")
    assert panel.note_selected()
    assert panel.set_labels(run, name="renamed live")
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=20000)
    qtbot.waitUntil(lambda: not panel.is_listing(), timeout=10000)
    assert read_labels(run) == RunLabels("renamed live", (), "live note")
    assert _row_text(panel, run) == "renamed live"
    assert panel.info(run).status == "finished"


# ----------------------------------------------------------------------------- x axis: epochs, steps, time

def _started(run_dir: str, time: float, start_epoch: int = 0):
    from sskt_engine.events import RunStarted

    return RunStarted(run_dir, "clocked", "supervised", "cpu", 2, start_epoch, 4, 3, ("a", "b", "c"), ("target",),
                      (), 100, 30, time)


def _epoch(epoch: int, t0: float) -> list:
    """Four steps one second apart from ``t0 + 1``, then the epoch's end a second later."""
    from sskt_engine.events import EpochEnd, Progress

    events = [Progress(epoch, step, epoch * 4 + step, 8, {"loss": 1.0 / (epoch * 4 + step)}, 0.5, 0.1, 100.0, 1.0,
                       t0 + step) for step in range(1, 5)]
    return events + [EpochEnd(epoch, {"loss": 0.5, "acc": 0.5}, {"loss": 0.4, "acc": 0.6}, 0.1, 0.6, True, 5.0,
                              t0 + 5)]


def _write_log(folder: Path, events: list) -> None:
    from sskt_engine.events import to_json

    folder.mkdir(parents=True)
    (folder / "preset.yaml").write_text("name: clocked\n")
    (folder / "metrics.jsonl").write_text("".join(to_json(e) + "\n" for e in events))


def _drawn_x(plots, key: str) -> list[float]:
    plots.redraw()
    x, _y = plots.curves[key].item.getOriginalDataset()
    return [round(float(v), 6) for v in x]


def test_the_x_axis_switch_redraws_a_run_over_epochs_steps_and_wall_time(qtbot, tmp_path):
    from app.widgets.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(1000, 600)
    run_dir = str(tmp_path / "20261130-120000-clocked")
    for event in [_started(run_dir, 1000.0), *_epoch(0, 1000.0)]:
        plots.handle_event(event)
    assert _drawn_x(plots, "train loss") == [0.25, 0.5, 0.75, 1.0]
    assert _drawn_x(plots, "val loss") == [1.0]
    assert plots.plots["loss"].getAxis("bottom").labelText == "epoch"

    plots.x_axis_box.setCurrentIndex(plots.x_axis_box.findData("steps"))  # as a user picks it
    assert plots.x_unit == "steps"
    assert _drawn_x(plots, "train loss") == [1.0, 2.0, 3.0, 4.0]
    assert _drawn_x(plots, "val loss") == [4.0]
    assert plots.plots["loss"].getAxis("bottom").labelText == "step"
    assert plots.plots["loss"].getViewBox().viewRange()[0][1] >= 8.0  # the run's 2 epochs x 4 steps

    plots.set_x_unit("time")
    assert _drawn_x(plots, "train loss") == [1.0, 2.0, 3.0, 4.0]  # seconds since the run started
    assert _drawn_x(plots, "val loss") == [5.0]  # after validation
    axis = plots.plots["loss"].getAxis("bottom")
    assert axis.labelText == "wall time"
    assert plots.x_axis_box.currentData() == "time"
    # ticks on clock steps, read as a clock: three hours are 0:00:00, 1:00:00, ... not 0, 2000, 4000 s
    assert axis.tickSpacing(0.0, 3 * 3600.0, 280)[0] == (3600.0, 0.0)
    assert axis.tickStrings([0.0, 3600.0, 7200.0], 1.0, 3600.0) == ["0:00", "1:00:00", "2:00:00"]
    assert axis.tickStrings([0.0, 90.0], 1.0, 30.0) == ["0:00", "1:30"]

    # the hover read-out names the unit
    plots._show_hover("loss", QtCore.QPointF(2.0, 0.5))
    assert "time 2 s" in plots._hover_text["loss"].toHtml()
    plots.set_x_unit("steps")
    plots._show_hover("loss", QtCore.QPointF(2.0, 0.5))
    assert "step 2" in plots._hover_text["loss"].toHtml()
    assert axis.tickStrings([0.0, 2000.0], 1.0, 2000.0) == ["0", "2000"]  # steps: plain numbers again


def test_a_resumed_run_s_wall_time_leaves_out_the_time_it_lay_stopped(qtbot, tmp_path):
    """Live: the resume's RunStarted comes first, then its history (earlier attempts' events with
    their RunStarted), then new points; each is placed in its own attempt."""
    from app.widgets.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    run_dir = str(tmp_path / "20261130-120000-clocked")
    history = [_started(run_dir, 1000.0), *_epoch(0, 1000.0), _started(run_dir, 9000.0, start_epoch=1)]
    plots.handle_event(_started(run_dir, 9000.0, start_epoch=1))
    for event in history:  # as main_window._on_history feeds them
        plots.handle_event(event)
    for event in _epoch(1, 9000.0):
        plots.handle_event(event)
    plots.set_x_unit("time")
    # epoch 1 (at 1001..1005) then, resumed at 9000, epoch 2 continues from its 5 s, not from 8000 s
    assert _drawn_x(plots, "train loss") == [1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0, 9.0]
    assert _drawn_x(plots, "val loss") == [5.0, 10.0]
    plots.set_x_unit("steps")
    assert _drawn_x(plots, "train loss") == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_overlays_rescale_to_the_longest_run_in_the_chosen_unit(qtbot, tmp_path):
    """A recorded run read from its folder (two attempts) and a shorter live run."""
    from app.run_history import load_run_curves
    from app.widgets.plots import LivePlots
    from sskt_engine.events import RunFinished

    recorded = tmp_path / "20261130-110000-recorded"
    _write_log(recorded, [_started(str(recorded), 1000.0), *_epoch(0, 1000.0),
                          RunFinished("stopped", 1, 0.6, 0.6, 5.0, str(recorded), 1006.0),
                          _started(str(recorded), 50_000.0, start_epoch=1), *_epoch(1, 50_000.0)])
    curves = load_run_curves(recorded)
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(1000, 600)
    live = str(tmp_path / "20261130-120000-clocked")
    for event in [_started(live, 1000.0), *_epoch(0, 1000.0)[:2]]:  # half an epoch of 2 so far
        plots.handle_event(event)
    plots.redraw()
    plots.set_overlays([curves])
    val = next(c for c in plots.overlays[recorded.name] if c.key.endswith("val loss"))

    def right() -> float:
        return plots.plots["loss"].getViewBox().viewRange()[0][1]

    assert val.item.getOriginalDataset()[0].tolist() == [1.0, 2.0]
    assert 2.0 <= right() < 2.2  # both runs: 2 epochs (padding 2 %)
    plots.set_x_unit("steps")
    assert val.item.getOriginalDataset()[0].tolist() == [4.0, 8.0]
    assert 8.0 <= right() < 8.4
    plots.set_x_unit("time")
    assert val.item.getOriginalDataset()[0].tolist() == [5.0, 10.0]  # not 49 005 s: the stopped time is left out
    assert 10.0 <= right() < 10.5  # the longest run in seconds, not the live run's 2 s
    assert plots.plots["accuracy"].getViewBox().viewRange()[0][1] == right()  # x axes stay linked


def test_clock_ticks_fall_on_clock_steps_and_read_as_a_clock():
    from app.x_axis import clock_label, clock_tick_steps

    assert clock_tick_steps(40.0, 10) == (5.0, 2.0)
    assert clock_tick_steps(600.0, 5) == (120.0, 60.0)
    assert clock_tick_steps(3 * 3600.0, 4) == (3600.0, 1800.0)
    assert clock_tick_steps(30 * 86400.0, 3) == (10 * 86400.0, 86400.0)  # beyond the table: whole days
    assert clock_tick_steps(10.0, 0) == (10.0, 5.0)  # no room: one tick, never a division by zero
    assert [clock_label(s) for s in (0, 9.6, 90, 3599, 3600, 5425, -30)] == [
        "0:00", "0:10", "1:30", "59:59", "1:00:00", "1:30:25", "-0:30"]
