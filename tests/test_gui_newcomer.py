"""The window as a newcomer meets it (issue 18): overlays of several runs, small screens, a dark
desktop, live curves that read right from the first point.

Each test would fail on the app before that issue's fixes; the sizes are those a person has
(1280x720, 1920x1080) and both palettes are tried where colours matter.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from conftest import TINY_PRESET
from sskt_engine.events import EpochEnd, Progress, RunStarted
from sskt_engine.metric_info import ACCURACY

SIZES = [(1280, 720), (1920, 1080)]


# ----------------------------------------------------------------------------- helpers

def _luminance(color: QtGui.QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def contrast(a, b) -> float:
    """WCAG contrast ratio of two colours (1: none, 21: black on white)."""
    la, lb = sorted((_luminance(QtGui.QColor(a)), _luminance(QtGui.QColor(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def settle(qtbot, ms: int = 150) -> None:
    QtWidgets.QApplication.processEvents()
    qtbot.wait(ms)


def run_started(run_dir: str = "/tmp/x/20261130-101010-live", epochs: int = 4, steps: int = 5) -> RunStarted:
    return RunStarted(run_dir, "live", "supervised", "cpu", epochs, 0, steps, 3, ("a", "b", "c"), ("target",), (),
                      100, 30, time.time())


def progress(epoch: int, step: int, steps: int = 5, epochs: int = 4, loss: float = 1.0) -> Progress:
    global_step = epoch * steps + step
    return Progress(epoch, step, global_step, epochs * steps, {"loss": loss}, 0.5, 0.1, 100.0, 1.0, time.time())


def recorded_run(folder: str, epochs: int):
    from app.run_history import RunCurves

    x = np.arange(1, epochs + 1, dtype=float)
    steps = np.linspace(0.2, epochs, 5 * epochs)
    return RunCurves(folder, {"train loss": ("loss", steps, 1.0 / steps), "val loss": ("loss", x, 1.0 / x),
                              "val acc": ("accuracy", x, 50 + x), "lr": ("lr", steps, np.full_like(steps, 0.1))},
                     ACCURACY)


@pytest.fixture
def dark_palette(qapp):
    """The application in a dark palette (as a dark desktop hands it to Qt), light again after."""
    from app.palette import dark_palette as make_dark

    before = QtGui.QPalette(qapp.palette())
    qapp.setPalette(make_dark())
    settle_app()
    yield
    qapp.setPalette(before)
    settle_app()


def settle_app() -> None:
    for _ in range(3):
        QtWidgets.QApplication.processEvents()


def widths(plots) -> dict[str, float]:
    return {key: plot.getViewBox().width() for key, plot in plots.plots.items()}


# ----------------------------------------------------------------------------- 1. overlays

@pytest.mark.parametrize("size", SIZES)
def test_overlays_have_short_distinct_names_and_leave_the_grid_alone(make_window, qtbot, size):
    window = make_window()
    window.resize(*size)
    settle(qtbot, 300)
    plots = window.plots
    before = widths(plots)
    # two runs of the same experiment (a long name), one started in the same second as another
    runs = [recorded_run("20261130-052912-gui-supervised-resnet20-on-demo", 3),
            recorded_run("20261130-053544-gui-supervised-resnet20-on-demo", 12),
            recorded_run("20261130-053544-gui-supervised-resnet20-on-demo-2", 5)]
    plots.set_overlays(runs)
    settle(qtbot, 300)
    after = widths(plots)
    for key in before:
        assert after[key] == pytest.approx(before[key], abs=2), f"the {key} plot changed width"
    assert after["loss"] == pytest.approx(after["accuracy"], abs=8)  # the two columns share alike
    names = plots.overlay_names()
    assert names and not any("20261130" in name for name in names)  # the run's name, not its folder
    per_key = [n for n in names if n.endswith("· val loss")]
    assert len(per_key) == 3 and len(set(per_key)) == 3  # de-duplicated
    for key, plot in plots.plots.items():
        room = plot.width()
        for _sample, label in plot.legend.items:
            assert label.item.boundingRect().width() <= room + 1, f"a {key} legend entry is wider than its plot"
        title = QtGui.QFontMetrics(QtGui.QFont(plots.font())).horizontalAdvance(plots.title_text(key))
        assert title <= plots.plots[key].width() + 40
    # the x range covers the longest run drawn
    (x0, x1), _ = plots.plots["loss"].getViewBox().viewRange()
    assert x1 >= 12 and x0 <= 0.5


def test_run_labels_name_the_run_and_tell_alike_runs_apart():
    from app.run_labels import short_run_labels

    assert short_run_labels(["20261130-052912-demo", "20261130-053000-kd"]) == ["demo", "kd"]
    labels = short_run_labels(["20261130-052912-demo", "20261130-053000-demo", "20261130-053000-demo-2"])
    assert labels[0] == "demo 05:29:12" and len(set(labels)) == 3
    assert short_run_labels(["not-a-run-folder"]) == ["not-a-run-folder"]


def test_the_finished_run_is_not_drawn_again_as_an_overlay(make_window, tiny_preset, fake_trainer, qtbot):
    window = make_window(fake_trainer, tiny_preset)
    window.start_run()  # Start checks the preset first, then runs it
    qtbot.waitUntil(lambda: not window.start_check.busy() and not window.controller.is_running(), timeout=30000)
    qtbot.waitUntil(lambda: not window.runs_panel.is_listing() and window.runs_panel.tree.topLevelItemCount() == 1,
                    timeout=10000)
    live = window.plots.live_run_name
    assert live and window.plots.point_count("val loss") == 2
    window.runs_panel.tree.selectAll()  # the run that just finished: its curves are already drawn
    settle(qtbot, 500)
    assert window._overlay_worker is None
    assert window.plots.overlays == {} and window.plots.overlay_names() == []
    # drawn as an overlay when the live curves are of another run, and not again when that run starts
    window.plots.clear()
    window.plots.set_overlays([recorded_run(live, 2)])
    assert window.plots.overlays
    window.plots.handle_event(run_started(str(Path("/tmp") / live)))
    assert window.plots.overlays == {}


def test_x_range_covers_the_live_run_and_every_overlay(qtbot):
    from app.widgets.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    plots.set_span(30)  # the experiment's epochs, before anything is drawn
    plots.set_overlays([recorded_run("20261130-052912-a", 4), recorded_run("20261130-052913-b", 6)])
    (_x0, x1), _ = plots.plots["loss"].getViewBox().viewRange()
    assert 6 <= x1 < 8  # recorded runs alone: rescaled to the longest, not the 30 epochs of no run
    plots.handle_event(run_started(epochs=10))
    (_x0, x1), _ = plots.plots["accuracy"].getViewBox().viewRange()
    assert x1 >= 10  # the live run's whole span (linked x axes)
    plots.set_overlays([recorded_run("20261130-052912-a", 40)])
    (_x0, x1), _ = plots.plots["lr"].getViewBox().viewRange()
    assert x1 >= 40


# ----------------------------------------------------------------------------- 7. live curves

def test_a_single_point_draws_a_marker_and_empty_plots_show_no_numbers(qtbot):
    from app.widgets.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    assert not any(plots.has_values(key) for key in plots.plots)  # no 0.1 ... 0.9 under "Press Start"
    plots.handle_event(run_started())
    plots.handle_event(progress(0, 1))
    plots.redraw()
    item = plots.curves["train loss"].item
    assert item.opts["symbol"] is not None  # one point: a marker, since no line can be drawn
    assert plots.has_values("loss") and plots.has_values("lr")
    assert not plots.has_values("sources")  # nothing drawn there
    for step in range(2, 6):
        plots.handle_event(progress(0, step))
    plots.redraw()
    assert item.opts["symbol"] is None  # a line now: no markers on a dense training curve


@pytest.mark.parametrize("dark", [False, True])
def test_hover_readout_is_readable_and_follows_new_points(qtbot, qapp, dark, request):
    if dark:
        request.getfixturevalue("dark_palette")
    from app.widgets.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    settle(qtbot)
    plots.handle_event(run_started())
    for step in range(1, 6):
        plots.handle_event(progress(0, step, loss=2.0))
    plots.redraw()
    settle(qtbot)
    text = plots._hover_text["loss"]
    fill = text.fill.color()
    fill_on_plot = QtGui.QColor(plots.colors.background)  # the box is nearly opaque over the plot
    assert fill.alpha() > 200
    assert contrast(plots.colors.title, fill) >= 4.5 and contrast(plots.colors.title, fill_on_plot) >= 4.5
    assert contrast(plots.colors.background, "#000000" if not dark else "#ffffff") > 10
    plot = plots.plots["loss"]
    vb = plot.getViewBox()
    (_x0, _x1), (y0, y1) = vb.viewRange()
    scene_pos = vb.mapViewToScene(QtCore.QPointF(1.4, (y0 + y1) / 2))  # right of the last point (x = 1)
    plots._mouse_moved((scene_pos,))
    assert text.isVisible() and "train loss: 2" in text.textItem.toPlainText()
    assert QtGui.QColor(plots.colors.title).name() in text.textItem.toHtml()
    # new points under the resting mouse: the read-out shows them without the mouse moving
    plots.handle_event(progress(1, 1, loss=0.25))
    plots.handle_event(progress(1, 2, loss=0.25))
    plots.redraw()
    assert "train loss: 0.25" in text.textItem.toPlainText()
    QtWidgets.QApplication.sendEvent(plots.view, QtCore.QEvent(QtCore.QEvent.Type.Leave))
    assert not text.isVisible()  # the mouse left: no stale box stays behind


def test_runs_panel_row_is_current_when_an_epoch_ends(make_window, tiny_preset, fake_trainer, qtbot, gui_env):
    fake_trainer.step_delay = 0.06  # epochs long enough for the row to be listed meanwhile
    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("train", "epochs"), 4)
    seen: list[tuple[int, str]] = []

    def after_window(event) -> None:  # connected after the window's own slot: runs after it
        if isinstance(event, EpochEnd):
            path = window.runs_panel.live_run
            item = window.runs_panel._item(path) if path else None
            if item is not None:
                seen.append((event.epoch + 1, item.text(2)))

    window.controller.event.connect(after_window)
    window.start_run()  # Start checks the preset first, then runs it
    qtbot.waitUntil(lambda: not window.start_check.busy() and not window.controller.is_running(), timeout=30000)
    window.controller.event.disconnect(after_window)
    assert seen, "the live run's row was never listed during the run"
    for epoch, status in seen:
        assert status == f"running {epoch}/4", f"the row said {status!r} at the end of epoch {epoch}"


def test_the_log_shows_accuracy_in_percent():
    from app.widgets.log_view import LogView

    log = LogView()
    try:
        log.handle_event(run_started())
        log.handle_event(EpochEnd(0, {"loss": 1.0, "acc": 0.5}, {"loss": 0.6931, "acc": 0.8125, "top5": 1.0}, 0.1,
                                  0.8125, True, 0.01, time.time()))
        line = log.toPlainText().splitlines()[-1]
        assert "acc 81.25%" in line and "top5 100.00%" in line and "loss 0.6931" in line
    finally:
        log.deleteLater()


# ----------------------------------------------------------------------------- 4. small screens

def _inside(widget: QtWidgets.QWidget, window: QtWidgets.QWidget) -> bool:
    top_left = widget.mapTo(window, QtCore.QPoint(0, 0))
    rect = QtCore.QRect(top_left, widget.size())
    return window.rect().contains(rect)


def _scrolls(widget: QtWidgets.QWidget) -> bool:
    """Inside a scroll area: out of view is fine there, it scrolls into view."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QtWidgets.QAbstractScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def _check_fits(window: QtWidgets.QWidget, qtbot, size=(1280, 720)) -> None:
    hint = window.minimumSizeHint()
    assert hint.width() <= size[0] and hint.height() <= size[1], f"{type(window).__name__} needs {hint}"
    window.resize(min(window.width(), size[0]), min(window.height(), size[1]))
    settle(qtbot)
    assert window.width() <= size[0] and window.height() <= size[1]
    for button in window.findChildren(QtWidgets.QAbstractButton):
        if button.isVisibleTo(window) and isinstance(button, QtWidgets.QPushButton) and not _scrolls(button):
            assert _inside(button, window), f"{button.text()!r} is cut off in {type(window).__name__}"


@pytest.fixture
def small_screen(monkeypatch):
    """Every screen reports a 1280x720 desktop (less a 40 px panel), as on a small laptop."""
    monkeypatch.setattr(QtGui.QScreen, "availableGeometry", lambda self: QtCore.QRect(0, 0, 1280, 680))


def _fake_run(root: Path, fake_trainer, name: str = "gui-supervised-with-a-rather-long-experiment-name") -> Path:
    from sskt_engine.config import from_dict

    preset = copy.deepcopy(TINY_PRESET)
    preset["name"] = name
    trainer = type("Quick", (fake_trainer,), {"step_delay": 0})
    return trainer(from_dict(preset), root).run().path


def test_main_window_with_results_fits_1280x720(make_window, fake_trainer, qtbot, gui_env, small_screen):
    run = _fake_run(gui_env / "runs", fake_trainer)
    window = make_window()
    window.resize(1280, 720)
    settle(qtbot, 300)
    with qtbot.waitSignal(window.results.shown, timeout=10000):
        window.show_results(run)
    settle(qtbot, 300)
    assert window.width() <= 1280, "showing the results widened the window"
    _check_fits(window, qtbot)
    for key, plot in window.plots.plots.items():
        shown = window.plots.title_text(key)
        assert QtGui.QFontMetrics(QtGui.QFont(window.plots.font())).horizontalAdvance(shown) <= plot.width() + 40
    folder = window.runs_panel.folder_label
    assert folder.fontMetrics().horizontalAdvance(folder.text()) <= folder.width()  # elided, never cut
    assert folder.toolTip() == f"Runs in {window.runs_panel.runs_root}"


def test_compare_dialog_fits_1280x720_with_sensible_defaults(make_window, tiny_preset, fake_trainer, qtbot,
                                                             small_screen):
    window = make_window(fake_trainer, tiny_preset)
    dialog = window.open_compare()
    settle(qtbot, 300)
    assert dialog.height() <= 680 and dialog.width() <= 1280
    _check_fits(dialog, qtbot, (1280, 680))
    for button in (dialog.run_button, dialog.stop_button, dialog.open_button):
        assert _inside(button, dialog)
    ticked = dialog.methods()
    assert "supervised" in ticked and "maxl" not in ticked and "kd" not in ticked  # no slow or skipped rows
    qtbot.waitUntil(lambda: dialog._estimator is None, timeout=10000)
    assert "runs of 2 epochs" in dialog.estimate.text() or "run of 2 epochs" in dialog.estimate.text()
    dialog.close()


def test_every_dialog_fits_1280x720(make_window, fake_trainer, qtbot, gui_env, small_screen):
    from app.widgets.checkpoint_dialog import CheckpointSourceDialog
    from app.widgets.export_dialog import ExportDialog
    from app.widgets.run_source_dialog import RunSourceDialog
    from app.widgets.torchvision_dialog import TorchvisionSourceDialog

    run = _fake_run(gui_env / "runs", fake_trainer)
    window = make_window()
    dialogs = [CheckpointSourceDialog(window), RunSourceDialog(gui_env / "runs", window),
               TorchvisionSourceDialog(window, catalog=[]), ExportDialog(run, window)]
    for dialog in dialogs:
        dialog.show()
        settle(qtbot)
        _check_fits(dialog, qtbot, (1280, 680))
        dialog.close()
        dialog.deleteLater()


def test_confusion_matrix_shows_shares_with_a_key_and_readable_names(qtbot):
    from app.widgets.confusion_matrix import ConfusionMatrixPlot

    plot = ConfusionMatrixPlot()
    qtbot.addWidget(plot)
    plot.resize(420, 360)
    plot.show()
    names = ["airplane_long_name", "automobile_long_name", "bird_long_name", "cat_long_name", "deer_long_name",
             "dog_long_name"]
    matrix = [[8, 2, 0, 0, 0, 0], [1, 9, 0, 0, 0, 0], [0, 0, 5, 5, 0, 0], [0, 0, 0, 10, 0, 0],
              [0, 0, 0, 0, 3, 1], [0, 0, 0, 0, 0, 200]]
    plot.set_matrix(matrix, names)
    settle(qtbot, 200)
    texts = plot.cell_texts()
    assert "80" in texts and "20" in texts and "100" in texts and "200" not in texts  # shares, as the title says
    assert "%" in plot.plot.titleLabel.text
    assert plot.color_bar.isVisible() and plot.color_bar.values == (0, 100)  # the colour key
    metrics = QtGui.QFontMetrics(plot.font())
    vb = plot.plot.getViewBox()
    cell = vb.width() / 6
    for name in plot.tick_names("bottom"):
        assert metrics.horizontalAdvance(name) <= cell + 2, f"{name!r} runs into its neighbours"


# ----------------------------------------------------------------------------- 5. dark desktops

def test_dark_palette_is_followed_everywhere(make_window, tiny_preset, qtbot, qapp, dark_palette):
    from app.palette import DARK_PLOTS, is_dark

    window = make_window(None, tiny_preset)
    settle(qtbot, 300)
    assert is_dark(window.palette())
    assert "#24292f" not in qapp.styleSheet() and "#fff4f4" not in qapp.styleSheet()  # light colours gone
    assert window.plots.colors == DARK_PLOTS
    background = window.plots.view.backgroundBrush().color()
    assert background.lightness() < 60  # the plots are dark too
    assert window.results.confusion.colors == DARK_PLOTS
    window_bg = window.palette().color(QtGui.QPalette.ColorRole.Window)
    role = QtGui.QPalette.ColorRole.WindowText
    checked = 0
    for widget in window.findChildren(QtWidgets.QWidget):
        name = widget.objectName()
        if name in ("sectionHeader", "hint", "fieldDescription", "stateLabel", "runStat", "startProblem",
                    "fieldError") or widget is window.run_bar.processes_label:
            widget.ensurePolished()
            text = widget.palette().color(QtGui.QPalette.ColorRole.ButtonText if name == "sectionHeader" else role)
            assert contrast(text, window_bg) >= 3.0, f"{name or type(widget).__name__} is unreadable on dark"
            checked += 1
    assert checked >= 5
    bar = window.run_bar.progress
    bar.ensurePolished()
    assert contrast(bar.palette().color(QtGui.QPalette.ColorRole.Text),
                    QtGui.QColor(window.plots.colors.background)) >= 4.5
    axis = window.plots.plots["loss"].getAxis("left")
    assert contrast(axis.textPen().color(), background) >= 4.5


def test_light_palette_keeps_light_plots(make_window, tiny_preset, qtbot):
    from app.palette import LIGHT_PLOTS

    window = make_window(None, tiny_preset)
    assert window.plots.colors == LIGHT_PLOTS
    assert window.plots.view.backgroundBrush().color().lightness() > 240
    axis = window.plots.plots["loss"].getAxis("left")
    assert contrast(axis.textPen().color(), "#ffffff") >= 4.5


def test_smoothing_draws_an_ema_of_the_training_curves_only(qtbot):
    from app.smoothing import ema
    from app.widgets.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.show()
    plots.handle_event(run_started())
    losses = [2.0, 0.5, 1.5, 0.25, 1.0]
    for step, loss in enumerate(losses, start=1):
        plots.handle_event(progress(0, step, loss=loss))
    plots.handle_event(EpochEnd(0, {"loss": 1.0, "acc": 0.5}, {"loss": 0.9, "acc": 0.6}, 0.1, 0.6, True, 0.01,
                                time.time()))
    plots.redraw()
    plots.smoothing_box.setCurrentIndex(plots.smoothing_box.findData(0.9))
    _x, drawn = plots.curves["train loss"].item.getData()
    assert drawn == pytest.approx(ema(np.array(losses), 0.9))
    assert drawn[0] == pytest.approx(2.0) and drawn[-1] != pytest.approx(1.0)  # debiased start, smoothed end
    assert list(plots.curves["val loss"].item.getData()[1]) == [0.9]  # validation points as measured
    plots.set_smoothing(0.0)
    assert list(plots.curves["train loss"].item.getData()[1]) == losses
    # the read-out keeps the measured numbers
    assert list(plots.curves["train loss"].data()[1]) == losses
