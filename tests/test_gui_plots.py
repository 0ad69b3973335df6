"""Live plots: events become points, a timer redraws, 100,000 points stay cheap, hover reads values."""

from __future__ import annotations

import time

import numpy as np
from PySide6 import QtCore

from app.run_history import RunCurves, SeriesBuffer
from app.widgets.plots import REDRAW_MS, LivePlots
from sskt_engine.events import EpochEnd, Progress, RunStarted


def _started(sources=("teacher",)):
    return RunStarted("/tmp/x", "t", "sskt", "cpu", 3, 0, 10, 3, ("a", "b", "c"), ("target",), sources, 100, 10, 0.0)


def _progress(epoch, step, loss=1.0):
    return Progress(epoch, step, epoch * 10 + step, 30, {"loss": loss, "target": loss / 2, "aux/teacher": loss / 3},
                    0.5, 0.1, 100.0, 5.0, 0.0)


def test_events_become_points_and_only_the_timer_redraws(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.handle_event(_started())
    for step in range(1, 11):
        plots.handle_event(_progress(0, step, loss=1.0 / step))
    plots.handle_event(EpochEnd(0, {"loss": 0.5}, {"loss": 0.6, "acc": 0.4, "top5": 0.9}, 0.1, 0.4, True, 1.0, 0.0))
    # Nothing is drawn per event: no curve item made, no data pushed...
    assert plots.redraws == 0 and all(curve.item is None for curve in plots.curves.values())
    # ...the ~30 Hz timer does it, one step per tick: an item, a legend entry or one plot's data
    # (each costs milliseconds: done all at once they were one long stall of the GUI thread).
    qtbot.waitUntil(lambda: any(curve.item is not None for curve in plots.curves.values()), timeout=2000)
    assert sum(curve.item is not None for curve in plots.curves.values()) == 1 and plots.redraws == 0
    qtbot.waitUntil(lambda: not plots.timer.isActive(), timeout=10000)
    assert all(curve.item is not None and curve.named and not curve.dirty for curve in plots.curves.values())
    assert plots.redraws == len(plots.plots)  # each plot's data pushed once, in a tick of its own
    x, y = plots.curves["train total"].item.getData()
    assert np.allclose(x, np.arange(1, 11) / 10) and y[0] == 1.0
    assert plots.point_count("train target") == 10 and plots.point_count("train teacher") == 10
    # The total and the auxiliary losses share a plot (and a scale); target and val loss another.
    assert plots.curves["train teacher"].plot == plots.curves["train total"].plot == "sources"
    assert plots.curves["train target"].plot == plots.curves["val loss"].plot == "loss"
    assert plots.curves["val acc"].buffer.y.tolist() == [40.0] and plots.point_count("val top-5") == 1
    assert plots.plots["loss"].legend.isVisible()
    assert {item[1].text for item in plots.plots["loss"].legend.items} == {"train target", "val loss"}
    assert REDRAW_MS <= 34  # at most ~30 redraws a second


def test_hundred_thousand_points_are_downsampled_and_clipped(qtbot):
    plots = LivePlots()
    plots.resize(1000, 700)
    qtbot.addWidget(plots)
    plots.show()
    plots.handle_event(_started(()))
    n = 100_000
    xs = np.linspace(0, 100, n)
    ys = np.sin(xs) + np.random.default_rng(0).normal(0, 0.1, n)
    plots._add_points([("loss", "train loss", 0.0, 0.0)])
    plots.curves["train loss"].buffer.extend(xs[1:], ys[1:])
    plots.curves["train loss"].dirty = True
    start = time.perf_counter()
    plots.redraw()
    plots.view.grab()  # a full paint
    first = time.perf_counter() - start
    drawn_x, _ = plots.curves["train loss"].item.getData()
    assert len(plots.curves["train loss"].buffer) == n
    assert len(drawn_x) < 10_000  # peak downsampling: a few points per pixel, not 100,000
    plots.plots["loss"].setXRange(10, 20, padding=0)
    plots.view.grab()
    clipped_x, _ = plots.curves["train loss"].item.getData()
    assert clipped_x.min() >= 9 and clipped_x.max() <= 21  # clip-to-view
    assert first < 2.0  # generous: it is ~50 ms on a laptop


def test_hover_reads_out_the_nearest_values(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.handle_event(_started())
    for step in range(1, 11):
        plots.handle_event(_progress(0, step, loss=float(step)))
    plots.redraw()
    plots._show_hover("sources", QtCore.QPointF(0.42, 1.0))
    text = plots._hover_text["sources"].textItem.toPlainText()
    assert "epoch 0.42" in text and "train total: 4" in text and "train teacher: 1.333" in text
    assert plots._hover_line["sources"].isVisible() and plots._hover_line["sources"].value() == 0.42


def test_overlays_of_recorded_runs(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    runs = [RunCurves(f"run-{i}", {"val acc": ("accuracy", np.array([1.0, 2.0]), np.array([50.0, 60.0 + i])),
                                   "train loss": ("loss", np.array([0.5, 1.0]), np.array([2.0, 1.0]))})
            for i in range(2)]
    plots.set_overlays(runs)
    assert set(plots.overlays) == {"run-0", "run-1"}
    names = {item[1].text for item in plots.plots["accuracy"].legend.items}
    assert names == {"run-0 · val acc", "run-1 · val acc"}
    plots.set_overlays([])
    assert not plots.overlays and not plots.plots["accuracy"].legend.items
    assert not plots.plots["accuracy"].legend.isVisible()


def test_series_buffer_grows_and_rewinds_for_repeated_epochs():
    buffer = SeriesBuffer(capacity=2)
    for i in range(10):
        buffer.append(float(i), float(i * i))
    assert len(buffer) == 10 and buffer.y[-1] == 81.0
    buffer.append(5.0, -1.0)  # a resumed run repeats epoch 5 onwards
    assert buffer.x.tolist() == [0, 1, 2, 3, 4, 5] and buffer.y[-1] == -1.0


def test_a_run_gets_its_whole_width_from_the_start(qtbot):
    # 3 epochs announced: every plot spans epochs 0..3 before the first point, and new points do
    # not move the x axes (re-rendering them on every point was most of the GUI's stall)
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.handle_event(_started())
    for plot in plots.plots.values():
        low, high = plot.viewRange()[0]
        assert low < 0.1 and 2.9 < high < 3.2
    plots.handle_event(_progress(0, 5))
    plots.redraw()
    assert all(2.9 < p.viewRange()[0][1] < 3.2 for p in plots.plots.values())
    # A recorded run drawn over it that lasted longer widens the span: no curve is cut off.
    plots.set_overlays([RunCurves("long", {"val loss": ("loss", np.arange(1.0, 11.0), np.ones(10))})])
    assert all(9.9 < p.viewRange()[0][1] < 10.5 for p in plots.plots.values())
    plots.set_overlays([])
    assert all(2.9 < p.viewRange()[0][1] < 3.2 for p in plots.plots.values())


def test_idle_plots_span_a_given_length_and_follow_recorded_runs_without_one(qtbot):
    plots = LivePlots()
    qtbot.addWidget(plots)
    # no length given (no valid experiment yet): the x axes fit whatever is drawn (the loss
    # plot's; the others are linked to it)
    assert plots.plots["loss"].getViewBox().autoRangeEnabled()[0]
    plots.set_span(30)  # the window gives the experiment's epochs: its run starts on these axes
    assert all(29.5 < p.viewRange()[0][1] < 31 for p in plots.plots.values())
    assert not any(p.getViewBox().autoRangeEnabled()[0] for p in plots.plots.values())


def test_the_y_range_moves_in_steps_not_with_every_point():
    from app.widgets.steady_view_box import steady_range

    def moves(values) -> tuple[int, tuple[float, float]]:
        shown, count, seen = (0.0, 1.0), 0, []
        for value in values:
            seen.append(value)
            new = steady_range(shown, (min(seen), max(seen)))
            assert new[0] <= min(seen) and max(seen) <= new[1]  # every point stays in view
            count, shown = count + (new != shown), new
        return count, shown

    steps = np.arange(1, 400)
    # An accuracy climbing from 8 % to 97 %: from zero to round numbers, a handful of moves
    # (an exact fit moved with nearly every point, and each move re-renders the axis).
    count, shown = moves(100 - 92 * np.exp(-steps / 80))
    assert count <= 10 and shown[0] < 0 < 2 < 100 < shown[1] < 105
    count, shown = moves(2.5 * np.exp(-steps / 100) + 0.2)  # a falling loss
    assert count <= 6 and shown[0] <= 0 and 2.7 <= shown[1] <= 3.2
    count, shown = moves(1000 + steps * 0.1)  # far from zero: a margin, not a range from zero
    assert count <= 3 and shown[0] > 900
    assert steady_range((0.0, 1000.0), (1.0, 2.0))[1] < 3  # data that shrank are fitted again


def test_legends_keep_their_height_as_entries_come(qtbot):
    # A legend that grew with its entries re-laid out the plots, and every axis re-rendered.
    plots = LivePlots()
    plots.resize(1100, 700)  # room for the entries of each plot in one row
    qtbot.addWidget(plots)
    plots.show()
    before = {key: plot.legend.maximumHeight() for key, plot in plots.plots.items()}
    plots.handle_event(_started())
    plots.handle_event(_progress(0, 1))
    plots.handle_event(EpochEnd(0, {"loss": 0.5}, {"loss": 0.6, "acc": 0.4, "top5": 0.9}, 0.1, 0.4, True, 1.0, 0.0))
    plots.redraw()
    assert len(plots.plots["accuracy"].legend.items) == 3
    assert {key: plot.legend.maximumHeight() for key, plot in plots.plots.items()} == before
