"""Live training curves (pyqtgraph): loss, accuracy, the sources' auxiliary losses, learning rate.

Events only append to numpy buffers; a ~30 Hz timer pushes changed buffers to the
curves with ``setData``. Peak downsampling and clip-to-view keep a redraw cheap at
100,000 points. Recorded runs chosen in the runs panel are drawn dashed on top.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.palette import FollowsPalette, PlotColors, plot_colors
from app.run_history import RunCurves, SeriesBuffer, series_for_epoch, series_for_progress
from app.run_labels import short_run_labels
from app.smoothing import ema
from app.x_axis import AXIS_LABELS, EPOCHS, STEPS, UNITS, WALL_TIME, RunClock, format_x
from app.widgets.clock_axis import ClockAxis
from app.widgets.steady_view_box import SteadyViewBox
from sskt_engine.events import EpochEnd, Event, Progress, RunStarted
from sskt_engine.metric_info import ACCURACY, MetricInfo
from sskt_engine.formatting import number

REDRAW_MS = 33
# A legend's height is fixed: its first row is its sample square's height, each further row adds
# less (verSpacing -8). A legend that grew with its entries would re-lay out the plots, and each
# re-layout re-renders every axis: the stall the first epoch end used to cause.
LEGEND_ROW_PX = 20
LEGEND_NEXT_ROW_PX = 12
LEGEND_COLUMNS = 4  # at most; fewer when the entries would not fit the plot's width
LEGEND_SAMPLE_PX = 20  # an entry: its sample line, the gap, its label
LEGEND_GAP_PX = 12
PLOTS = (("loss", "Loss on the target task"), ("accuracy", "Accuracy (%)"),
         ("sources", "Total and per-source losses"), ("lr", "Learning rate"))
FIXED_COLORS = {
    # mid-tones only: each must read on a white and on a dark plot background
    "train loss": "#1f77b4", "train target": "#1f77b4", "val loss": "#2ca02c", "train total": "#8a8a8a",
    "train acc": "#1f77b4", "val acc": "#2ca02c", "val top-5": "#9467bd", "lr": "#d62728",
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
OVERLAY_PALETTE = ("#6a3d9a", "#b15928", "#e31a1c", "#33a02c", "#1f78b4", "#ff7f00", "#a6761d", "#666666")
OVERLAY_KEYS = ("train loss", "train target", "val loss", "lr")  # and each run's headline metric, "val <short>"
TITLE_SIZE = "10pt"
SHORT_CURVE = 2  # a curve of this many points or fewer gets markers: a single point draws no line
SMOOTHING = (("off", 0.0), ("0.6", 0.6), ("0.8", 0.8), ("0.9", 0.9), ("0.95", 0.95), ("0.99", 0.99))


def _labelled_choice(row: QtWidgets.QHBoxLayout, label: str, name: str, items, tip: str,
                     chosen) -> QtWidgets.QComboBox:
    """A hint-styled label and a combo box of (text, value) items, added to ``row``; ``chosen(value)``
    runs when the person picks another item."""
    caption = QtWidgets.QLabel(label)
    caption.setObjectName("hint")
    box = QtWidgets.QComboBox()
    box.setObjectName(name)
    for text, value in items:
        box.addItem(text, value)
    box.setToolTip(tip)
    caption.setBuddy(box)
    box.currentIndexChanged.connect(lambda _i: chosen(box.currentData()))
    row.addWidget(caption)
    row.addWidget(box)
    return box


class _Curve:
    def __init__(self, plot: str, key: str, item: pg.PlotDataItem | None, buffer: SeriesBuffer | None = None,
                 style: dict | None = None, xs: dict[str, np.ndarray] | None = None, y: np.ndarray | None = None):
        self.plot = plot
        self.key = key
        self.item = item  # a live curve's item is made by the redraw timer (None until then)
        self.buffer = buffer
        self.style = style or {}  # the item's pen and symbols
        self.named = item is not None  # its legend entry is there
        self.dirty = False
        # a recorded run's curve: its x in each unit it has (app.x_axis), and its y
        self.xs = xs or {}
        self.y = y

    def data(self, unit: str = EPOCHS) -> tuple[np.ndarray, np.ndarray]:
        """The points as drawn in ``unit``: x increasing, points without a coordinate in it left out."""
        if self.buffer is not None:
            return _finite(self.buffer.x_in(unit), self.buffer.y)
        if self.y is not None:
            return _finite(self.xs.get(unit, np.empty(0)), self.y)
        x, y = self.item.getOriginalDataset()
        return (x if x is not None else np.empty(0)), (y if y is not None else np.empty(0))


class LivePlots(FollowsPalette, QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        # Smoothing of the noisy per-step training curves (an EMA, like TensorBoard's slider);
        # validation points, one per epoch, are drawn as measured.
        controls = QtWidgets.QHBoxLayout()
        controls.setContentsMargins(8, 4, 8, 0)
        controls.addStretch(1)
        self.smoothing_box = _labelled_choice(
            controls, "Smoothing", "smoothing", ((text, weight) for text, weight in SMOOTHING),
            "Exponential moving average of the training curves (weight of the previous point); the hover "
            "read-out shows the measured values", lambda weight: self.set_smoothing(weight))
        # x axis: epochs (the default), global steps, or the seconds the run has trained
        controls.addSpacing(12)
        self.x_axis_box = _labelled_choice(
            controls, "X axis", "xAxis", ((text, unit) for unit, text in UNITS),
            "Draw the curves over epochs, training steps or wall time (the seconds each run has trained, "
            "without the time a resumed run lay stopped)", lambda unit: self.set_x_unit(unit))
        layout.addLayout(controls)
        self.smoothing = 0.0
        self.x_unit = EPOCHS
        self.clock = RunClock()  # the live run's steps and seconds
        self._live_started = 0.0  # RunStarted.time of the attempt drawn live
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("livePlots")
        self.colors: PlotColors = plot_colors(self.palette())
        self.view.setBackground(self.colors.background)
        self._title_text: dict[str, str] = {}  # each plot's whole title (shown elided when narrow)
        self.view.ci.setSpacing(6)
        layout.addWidget(self.view)
        self.plots: dict[str, pg.PlotItem] = {}
        self.titles: dict[str, pg.LabelItem] = {}
        # what the live run's task calls its numbers (its RunStarted says); accuracy until then
        # (not "metric": that name would override QWidget.metric(), which Qt calls, e.g. in grab())
        self.val_metric: MetricInfo = ACCURACY
        self.train_metric: MetricInfo = ACCURACY
        for index, (key, title) in enumerate(PLOTS):
            # Each cell: title, then the legend as a row of its own, then the plot. A legend
            # inside the plot would hide curves wherever they happen to run.
            cell = self.view.addLayout(row=index // 2, col=index % 2)
            cell.setSpacing(0)
            label = cell.addLabel(title, row=0, col=0, color=self.colors.title, size=TITLE_SIZE)
            # size given: the legend never sizes (and moves) itself as entries come; the layout does
            legend = pg.LegendItem(size=(1, LEGEND_ROW_PX), offset=None, labelTextColor=self.colors.title,
                                   labelTextSize="8pt", pen=None, brush=None, verSpacing=-8,
                                   horSpacing=LEGEND_GAP_PX, colCount=3)
            legend.setMinimumWidth(0)  # entries never widen the column either
            legend.setPreferredWidth(0)
            policy = legend.sizePolicy()
            policy.setRetainSizeWhenHidden(True)  # hidden while empty, its row stays
            legend.setSizePolicy(policy)
            _fix_legend_rows(legend, 1)
            cell.addItem(legend, row=1, col=0)
            plot = cell.addPlot(row=2, col=0, viewBox=SteadyViewBox(), axisItems={"bottom": ClockAxis("bottom")})
            plot.legend = legend  # PlotItem adds and removes named curves here by itself
            plot.showGrid(x=True, y=True, alpha=0.18)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setLabel("bottom", AXIS_LABELS[EPOCHS], color=self.colors.muted)
            plot.getAxis("left").setWidth(52)
            for axis in ("left", "bottom"):
                # Axes (tick labels and the grid they draw) are most of a repaint: render each to a
                # cached pixmap that is redrawn only when its range changes, not on every new point.
                plot.getAxis(axis).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
                plot.getAxis(axis).enableAutoSIPrefix(False)
                # no numbers on an empty plot: its default 0..1 range would read as data
                plot.getAxis(axis).setStyle(showValues=False)
            cell.layout.setRowStretchFactor(2, 1)
            # Titles and legends must not decide the column widths: both columns share alike.
            label.updateMin = lambda: None  # LabelItem would pin its minimum width to the text's
            label.setMinimumWidth(0)
            label.setPreferredWidth(0)
            if key != "loss":
                plot.setXLink(self.plots["loss"])
            self.plots[key] = plot
            self.titles[key] = label
            self._title_text[key] = title
        self.plots["lr"].setLogMode(y=False)
        self.view.ci.layout.setRowStretchFactor(0, 3)
        self.view.ci.layout.setRowStretchFactor(1, 2)
        self.view.ci.layout.setColumnStretchFactor(0, 1)
        self.view.ci.layout.setColumnStretchFactor(1, 1)

        # Before the first curve: a hint over the empty plots (a QLabel, so it never clips).
        self._placeholder: QtWidgets.QLabel | None = QtWidgets.QLabel(
            "Press Start (Ctrl+R) to train: the curves grow here as it runs.\n"
            "Select runs in the Runs panel to compare their curves.", self.view)
        self._placeholder.setObjectName("plotsPlaceholder")
        self._placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._placeholder.setStyleSheet(self.colors.placeholder)
        self._placeholder.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.view.installEventFilter(self)
        self._no_sources = pg.TextItem("No source models in this run: the loss is the target loss.",
                                       color=self.colors.muted, anchor=(0.5, 0.5))
        self._no_sources.setPos(0.5, 0.5)
        self._no_sources.hide()
        self.plots["sources"].addItem(self._no_sources, ignoreBounds=True)

        self.curves: dict[str, _Curve] = {}
        self.overlays: dict[str, list[_Curve]] = {}
        self._color_index = 0
        self.steps_per_epoch = 0
        self.redraws = 0
        self._next_plot = 0  # the redraw timer serves the plots in turn
        self._span = 0  # the epochs the x axis spans (0: fit to what is drawn)
        self._x_right = 0.0  # the right end of the x range set last (0: auto-range)
        self.live_run_name = ""  # the folder of the run drawn live: never drawn again as an overlay

        self._hover_line: dict[str, pg.InfiniteLine] = {}
        self._hover_text: dict[str, pg.TextItem] = {}
        self._hover_dots: dict[str, pg.ScatterPlotItem] = {}
        for key, plot in self.plots.items():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888888", style=QtCore.Qt.PenStyle.DotLine))
            text = pg.TextItem(anchor=(0, 0))
            dots = pg.ScatterPlotItem(size=7)
            for item, z in ((line, 60), (dots, 61), (text, 62)):
                item.setZValue(z)
                item.hide()
                plot.addItem(item, ignoreBounds=True)
            self._hover_line[key], self._hover_text[key], self._hover_dots[key] = line, text, dots
        self._mouse_proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=60, slot=self._mouse_moved)
        self._hover_pos: QtCore.QPointF | None = None  # the mouse over the plots: the read-out follows new data
        self._apply_colors()

        # Armed by the first new point, fires once REDRAW_MS later: at most ~30 redraws a
        # second while data arrives, and no wake-ups at all while nothing changes.
        self.timer = QtCore.QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._redraw_step)

    # -- light or dark -------------------------------------------------------------------
    def _apply_colors(self) -> None:
        """Background, titles, axes, legends and the hover read-out in the palette's colours."""
        colors = self.colors
        self.view.setBackground(colors.background)
        for key, plot in self.plots.items():
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(colors.text)
                plot.getAxis(axis).setPen(colors.axis)
            plot.setLabel("bottom", AXIS_LABELS[self.x_unit], color=colors.muted)
            plot.legend.setLabelTextColor(colors.title)
            for _sample, label in plot.legend.items:
                label.setText(label.text, color=colors.title)
            text = self._hover_text[key]
            text.fill = pg.mkBrush(*colors.hover_fill)
            text.border = pg.mkPen(colors.hover_border)
            text.setColor(colors.title)
            self._hover_dots[key].setPen(pg.mkPen(colors.dot_outline))
        self._no_sources.setColor(colors.muted)
        if self._placeholder is not None:
            self._placeholder.setStyleSheet(colors.placeholder)
        for curve in self.curves.values():
            if "symbolPen" in curve.style:
                curve.style["symbolPen"] = pg.mkPen(colors.dot_outline)
                if curve.item is not None:
                    curve.item.setSymbolPen(curve.style["symbolPen"])
        self._fit_titles()

    def _fit_titles(self) -> None:
        """Each title elided to its plot's width: a long title (or a narrow window) never widens
        its column or runs into the next one."""
        for key, label in self.titles.items():
            font = QtGui.QFont(self.font())
            font.setPointSizeF(float(TITLE_SIZE.removesuffix("pt")))
            width = int(self.plots[key].width()) or 10_000
            text = QtGui.QFontMetrics(font).elidedText(self._title_text[key], QtCore.Qt.TextElideMode.ElideRight,
                                                      max(40, width))
            label.setText(text, color=self.colors.title, size=TITLE_SIZE)

    def title_text(self, key: str) -> str:
        """The title as shown (elided when the plot is narrow)."""
        return self.titles[key].text

    # -- events ------------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            if (self.live_run_name == Path(event.run_dir).name and self._live_started
                    and event.time <= self._live_started):
                # an earlier attempt of the resumed run drawn live (its history): only the clock needs it
                self.clock.started(event)
                return
            if event.start_epoch == 0:
                self.clear()
            self._live_started = event.time
            self.clock.started(event)
            self.live_run_name = Path(event.run_dir).name
            self._drop_overlay(self.live_run_name)  # drawn live from now on
            self.steps_per_epoch = event.steps_per_epoch
            self._set_metrics(event.headline, event.train_headline)
            self._no_sources.setVisible(not event.source_names)
            self.set_span(event.epochs)
        elif isinstance(event, Progress):
            self._add_points(series_for_progress(event, self.steps_per_epoch, self.train_metric),
                             *self.clock.position(event))
        elif isinstance(event, EpochEnd):
            self._add_points(series_for_epoch(event, self.val_metric), *self.clock.position(event))

    def set_span(self, epochs: int) -> None:
        """Let the x axis span 0..``epochs``: the run's whole width from its start, so the curves
        grow into it and the x axes (linked to the loss plot) stay put instead of re-rendering on
        every new point. The window sets it from the experiment before a run too: a run of the
        same length then starts without re-rendering them either."""
        self._span = max(1, int(epochs))
        self._fit_x()

    def _fit_x(self) -> None:
        """The x range: the span (of the run drawn live, or the experiment's while nothing is
        drawn), widened to the longest recorded run drawn over it (none: auto); recorded runs
        alone get the range of the longest of them."""
        right = self._span_in_unit() if self.live_run_name or not self.overlays else 0.0
        drawn = [c for group in self.overlays.values() for c in group]
        if self.x_unit == WALL_TIME and self.overlays:
            # no known length ahead: the live run's curves count as drawn so far (grown in _push_data)
            drawn += [c for c in self.curves.values() if c.item is not None]
        for curve in drawn:
            xs, _ = curve.data(self.x_unit)
            if len(xs):
                right = max(right, float(xs[-1]))
        if right <= 0:
            self._x_right = 0.0
            for plot in self.plots.values():
                plot.enableAutoRange(x=True)
            return
        if right == self._x_right:
            return  # unchanged: the axes keep their rendering
        self._x_right = right
        for plot in self.plots.values():
            plot.enableAutoRange(x=False)
        self.plots["loss"].setXRange(0, right, padding=0.02)

    def _span_in_unit(self) -> float:
        """The live run's (or experiment's) whole length in the x unit; 0 when not known ahead
        (wall time, or steps before a run said its steps per epoch): the range then fits the data."""
        if self.x_unit == EPOCHS:
            return float(self._span)
        if self.x_unit == STEPS:
            return float(self._span * self.steps_per_epoch)
        return 0.0

    def set_x_unit(self, unit: str) -> None:
        """Draw every curve, live and recorded, over ``unit`` (``app.x_axis``: epochs, steps, time)."""
        unit = unit if unit in AXIS_LABELS else EPOCHS
        index = self.x_axis_box.findData(unit)
        if index >= 0 and index != self.x_axis_box.currentIndex():
            self.x_axis_box.setCurrentIndex(index)  # calls back here once, with the same unit
        if unit == self.x_unit:
            return
        self.x_unit = unit
        for plot in self.plots.values():
            plot.setLabel("bottom", AXIS_LABELS[unit], color=self.colors.muted)
            plot.getAxis("bottom").set_clock(unit == WALL_TIME)
        for curve in self.curves.values():
            curve.dirty = True
        for group in self.overlays.values():
            for curve in group:
                x, y = curve.data(unit)
                curve.item.setData(x, y)
                _mark_if_short(curve.item, len(x), curve.item.opts.get("pen"))
        self._x_right = -1.0  # a new unit: the range is set again even if the number happens to match
        self._push_data()
        self._fit_x()
        self._refresh_hover()

    def _set_metrics(self, metric: MetricInfo, train_metric: MetricInfo) -> None:
        """Title the "accuracy" plot with what the run's task measures (accuracy, mAP, ...)."""
        self.val_metric, self.train_metric = metric, train_metric
        names = metric.label if train_metric.label == metric.label else f"{metric.label}, train {train_metric.label}"
        unit = f" ({metric.unit})" if metric.unit else ""
        self._title_text["accuracy"] = names[:1].upper() + names[1:] + unit
        self._fit_titles()

    def _add_points(self, points: Iterable[tuple[str, str, float, float]], step: float = math.nan,
                    seconds: float = math.nan) -> None:
        """Points of one event; ``step`` and ``seconds`` place them on the other x axes."""
        for plot, key, x, y in points:
            curve = self.curves.get(key) or self._new_curve(plot, key)
            curve.buffer.append(x, y, step, seconds)
            curve.dirty = True
        if not self.timer.isActive():
            self.timer.start()

    def _new_curve(self, plot: str, key: str) -> _Curve:
        color = FIXED_COLORS.get(key)
        if color is None:
            color = PALETTE[(3 + self._color_index) % len(PALETTE)] if plot != "sources" else \
                PALETTE[sum(1 for c in self.curves.values() if c.plot == "sources") % len(PALETTE)]
            self._color_index += plot != "sources"
        is_val = key.startswith("val")
        # Dense training curves use a 1 px (cosmetic) pen: Qt's antialiased wide pens cost
        # ~20x more per point. Validation curves have one point per epoch and can be bold.
        pen = pg.mkPen(color, width=2.0 if is_val else 1.0)
        kwargs = {"symbol": "o", "symbolSize": 6, "symbolBrush": color,
                  "symbolPen": pg.mkPen(self.colors.dot_outline)} if is_val else {}
        curve = _Curve(plot, key, None, SeriesBuffer(), {"pen": pen, **kwargs})
        self.curves[key] = curve
        return curve

    def _make_item(self, curve: _Curve) -> None:
        """The curve's plot item, its legend entry still to come (``_name_item``): each costs
        milliseconds, so the redraw timer does one of them per tick."""
        item = self.plots[curve.plot].plot(**curve.style)  # no name: no legend entry yet
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        curve.item = item
        curve.dirty = True
        if curve.plot == "sources":
            self._no_sources.hide()
        self._show_values(curve.plot, True)
        self._drop_placeholder()

    def _show_values(self, plot: str, shown: bool) -> None:
        """Tick numbers on a plot with something drawn; none on an empty one."""
        for axis in ("left", "bottom"):
            item = self.plots[plot].getAxis(axis)
            if item.style["showValues"] != shown:
                item.setStyle(showValues=shown)

    def has_values(self, plot: str) -> bool:
        return bool(self.plots[plot].getAxis("left").style["showValues"])

    def _name_item(self, curve: _Curve) -> None:
        """The curve's legend entry (its label is rich text: the costlier half of a new curve)."""
        curve.item.opts["name"] = curve.key
        self.plots[curve.plot].legend.addItem(curve.item, curve.key)
        curve.named = True
        self._sync_legends()

    def _drop_placeholder(self) -> None:
        if self._placeholder is not None:
            self._placeholder.deleteLater()
            self._placeholder = None

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt API)
        if obj is self.view and event.type() == QtCore.QEvent.Type.Leave:
            self._hover_pos = None  # the read-out goes with the mouse, never stays behind stale
            for key in self.plots:
                self._hide_hover(key)
        if obj is self.view and event.type() == QtCore.QEvent.Type.Resize:
            # once the layout has given the plots their new widths: legend entries per row
            QtCore.QTimer.singleShot(0, self._sync_legends)
        if obj is self.view and event.type() == QtCore.QEvent.Type.Resize and self._placeholder is not None:
            width = min(520, self.view.width() - 40)
            self._placeholder.setFixedWidth(max(120, width))
            self._placeholder.adjustSize()
            self._placeholder.move((self.view.width() - self._placeholder.width()) // 2,
                                   (self.view.height() - self._placeholder.height()) // 2)
        return super().eventFilter(obj, event)

    def _redraw_step(self) -> None:
        """The timer's work: one step per tick (~30 ms apart), the plots taking turns. A step is
        one of: make a new curve's item, add its legend entry, push one plot's changed buffers
        (which repaints that plot, and re-renders its y axis when the range moved). Doing all of
        it in one tick (every plot repainted, a group of new curves made: the first epoch end
        brings every validation curve) was the longest stall of the GUI thread during a run."""
        names = list(self.plots)
        for offset in range(len(names)):
            index = (self._next_plot + offset) % len(names)
            curves = [c for c in self.curves.values() if c.plot == names[index]]
            unmade = next((c for c in curves if c.item is None), None)
            unnamed = next((c for c in curves if c.item is not None and not c.named), None)
            if unmade is not None:
                self._make_item(unmade)
            elif unnamed is not None:
                self._name_item(unnamed)
            elif any(c.dirty for c in curves):
                self._push_data(names[index])
            else:
                continue
            self._next_plot = index + 1
            break
        if any(c.item is None or not c.named or c.dirty for c in self.curves.values()):
            self.timer.start()

    def redraw(self) -> None:
        """Everything at once: every curve item made and named, every changed buffer pushed."""
        for curve in self.curves.values():
            if curve.item is None:
                self._make_item(curve)
            if not curve.named:
                self._name_item(curve)
        self._push_data()

    def _push_data(self, plot: str | None = None) -> None:
        """Changed buffers to their curves: those of ``plot``, or of every plot."""
        changed = False
        for curve in self.curves.values():
            if curve.dirty and curve.item is not None and plot in (None, curve.plot):
                y = ema(curve.buffer.y, self.smoothing) if self.smoothing and curve.key.startswith("train") \
                    else curve.buffer.y
                x, y = _finite(curve.buffer.x_in(self.x_unit), y)
                curve.item.setData(x, y)
                _mark_if_short(curve.item, len(x), curve.style.get("pen"))
                curve.dirty = False
                changed = True
        if changed and self.x_unit == WALL_TIME and self.overlays:
            self._fit_x()  # the live run may outgrow the recorded ones: its length is not known ahead
        if changed:
            self.redraws += 1
            if self._hover_pos is not None:  # the read-out shows the newest numbers, not stale ones
                self._mouse_moved((self._hover_pos,))

    def set_smoothing(self, weight: float) -> None:
        """Redraw the training curves with this EMA weight (0: as measured)."""
        self.smoothing = float(weight or 0.0)
        index = self.smoothing_box.findData(self.smoothing)
        if index >= 0 and index != self.smoothing_box.currentIndex():
            self.smoothing_box.setCurrentIndex(index)
        for curve in self.curves.values():
            if curve.key.startswith("train"):
                curve.dirty = True
        self._push_data()

    def clear(self) -> None:
        for curve in self.curves.values():
            if curve.item is not None:
                self.plots[curve.plot].removeItem(curve.item)
        self.curves.clear()
        self._sync_legends()
        self._color_index = 0
        self.steps_per_epoch = 0
        self.live_run_name = ""
        self.clock = RunClock()
        self._live_started = 0.0
        for key, plot in self.plots.items():
            plot.enableAutoRange(y=True)
            self._show_values(key, any(c.plot == key for group in self.overlays.values() for c in group))

    def _sync_legends(self) -> None:
        self._fit_titles()
        for plot in self.plots.values():
            _elide_legend(plot)
            count = len(plot.legend.items)
            columns = _legend_columns(plot) if count else 1
            if count:
                plot.legend.setColumnCount(columns)
            _fix_legend_rows(plot.legend, max(1, math.ceil(count / columns)))
            plot.legend.setVisible(bool(count))

    def point_count(self, key: str) -> int:
        curve = self.curves.get(key)
        return len(curve.buffer) if curve else 0

    # -- recorded runs -----------------------------------------------------------------
    def set_overlays(self, runs: list[RunCurves]) -> None:
        """Draw recorded runs dashed, each named by its run's name (not its folder); replaces the
        previous overlays. The run drawn live is not drawn again."""
        for curves in self.overlays.values():
            for curve in curves:
                self.plots[curve.plot].removeItem(curve.item)
        self.overlays.clear()
        self._sync_legends()
        runs = [run for run in runs if not (self.live_run_name and run.name == self.live_run_name)]
        labels = short_run_labels([run.name for run in runs], display_names=[run.display_name for run in runs])
        for index, (run, label) in enumerate(zip(runs, labels)):
            color = OVERLAY_PALETTE[index % len(OVERLAY_PALETTE)]
            items = []
            for key in (*OVERLAY_KEYS, f"val {run.metric.short}"):
                if key not in run.series:
                    continue
                plot, x, y = run.series[key]
                xs = {EPOCHS: x, **run.axes.get(key, {})}
                is_val = key.startswith("val")
                pen = pg.mkPen(color, width=1.8 if is_val else 1.0,
                               style=QtCore.Qt.PenStyle.DashLine if is_val else QtCore.Qt.PenStyle.DotLine)
                kwargs = {"symbol": "t", "symbolSize": 6, "symbolBrush": color, "symbolPen": None} if is_val else {}
                curve = _Curve(plot, f"{label} · {key}", None, xs=xs, y=y)
                drawn_x, drawn_y = curve.data(self.x_unit)
                curve.item = item = self.plots[plot].plot(drawn_x, drawn_y, name=curve.key, pen=pen, **kwargs)
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
                _mark_if_short(item, len(drawn_x), pen)
                curve.named = True
                items.append(curve)
            self.overlays[run.name] = items
        self._after_overlays()

    def _drop_overlay(self, name: str) -> None:
        for curve in self.overlays.pop(name, []):
            self.plots[curve.plot].removeItem(curve.item)
        self._after_overlays()

    def _after_overlays(self) -> None:
        self._sync_legends()
        self._fit_x()
        for key in self.plots:
            self._show_values(key, any(c.plot == key for c in self.curves.values() if c.item is not None)
                              or any(c.plot == key for group in self.overlays.values() for c in group))
        if self.overlays:
            self._drop_placeholder()
        self._refresh_hover()

    def overlay_names(self) -> list[str]:
        """The legend names of the recorded runs' curves drawn now."""
        return [c.key for group in self.overlays.values() for c in group]

    # -- hover read-out ------------------------------------------------------------------
    def _refresh_hover(self) -> None:
        """The read-out under a resting mouse, again: after the x unit or the overlays changed it
        would otherwise name the old unit, or runs no longer drawn."""
        if self._hover_pos is not None:
            self._mouse_moved((self._hover_pos,))

    def _mouse_moved(self, args: tuple) -> None:
        pos = args[0]
        self._hover_pos = pos
        for key, plot in self.plots.items():
            vb = plot.getViewBox()
            if plot.sceneBoundingRect().contains(pos) and vb.sceneBoundingRect().contains(pos):
                self._show_hover(key, vb.mapSceneToView(pos))
            else:
                self._hide_hover(key)

    def _hide_hover(self, key: str) -> None:
        for item in (self._hover_line[key], self._hover_text[key], self._hover_dots[key]):
            item.hide()

    def _show_hover(self, key: str, point: QtCore.QPointF) -> None:
        x = point.x()
        rows, spots = [], []
        # names shortened so the box fits the plot's width (a narrow plot at 1280x720 cut it off)
        room = self.plots[key].getViewBox().sceneBoundingRect().width()
        name_chars = max(10, int((room - 120) / 6))
        curves = [c for c in self.curves.values() if c.plot == key]
        curves += [c for group in self.overlays.values() for c in group if c.plot == key]
        for curve in curves:
            xs, ys = curve.data(self.x_unit)
            if len(xs) == 0 or curve.item is None:
                continue
            i = int(np.searchsorted(xs, x))
            if i >= len(xs) or (i > 0 and abs(xs[i - 1] - x) <= abs(xs[i] - x)):
                i -= 1
            i = max(0, min(i, len(xs) - 1))
            color = curve.item.opts["pen"].color().name() if hasattr(curve.item.opts["pen"], "color") else "#888"
            name = curve.key if len(curve.key) <= name_chars else curve.key[: name_chars - 1] + "…"
            rows.append(f"<span style='color:{color}'>●</span> {html.escape(name)}: <b>{number(ys[i])}</b>"
                        f" <span style='color:{self.colors.muted}'>@ {format_x(self.x_unit, xs[i], named=False)}</span>")
            spots.append({"pos": (xs[i], ys[i]), "brush": pg.mkBrush(color)})
        if not rows:
            self._hide_hover(key)
            return
        text = self._hover_text[key]
        # the text's colour is the palette's (pyqtgraph's default is a light grey, unreadable on white)
        text.setHtml(f"<div style='font-size:8pt; color:{self.colors.title}'>{format_x(self.x_unit, x)}<br>"
                     + "<br>".join(rows) + "</div>")
        vb = self.plots[key].getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        # Keep the box inside the plot: to the right of the cursor where it fits there, else to its
        # left, else along the plot's left edge. Its width is in pixels (TextItem ignores zoom).
        cursor = vb.mapViewToScene(QtCore.QPointF(x, y1)).x()
        area = vb.sceneBoundingRect()
        room_right, room_left = area.right() - cursor, cursor - area.left()
        width = text.boundingRect().width()
        side = "right" if room_right >= width else "left" if room_left >= width else "edge"
        if side == "edge":  # fits on neither side of the cursor: along the plot's left edge
            text.setAnchor((0, 0))
            text.setPos(x0, y1)
        else:
            text.setAnchor((0, 0) if side == "right" else (1, 0))
            text.setPos(x, y1)
        self._hover_line[key].setPos(x)
        self._hover_dots[key].setData(spots)
        for item in (self._hover_line[key], text, self._hover_dots[key]):
            item.show()


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points that have an x in the unit drawn (a log without steps or times has NaN there)."""
    keep = np.isfinite(x)
    return (x, y) if keep.all() else (x[keep], y[keep])


def _legend_columns(plot: pg.PlotItem) -> int:
    """As many entries per row as fit the plot's width (at most LEGEND_COLUMNS)."""
    widths = [LEGEND_SAMPLE_PX + LEGEND_GAP_PX + label.item.boundingRect().width() for _sample, label
              in plot.legend.items]
    columns = min(LEGEND_COLUMNS, len(widths))
    while columns > 1 and max(widths) * columns > plot.width():
        columns -= 1
    return max(1, columns)


def _fix_legend_rows(legend: pg.LegendItem, rows: int) -> None:
    """Give the legend the height of ``rows`` rows; the layout only changes when that does."""
    _left, top, _right, bottom = legend.layout.getContentsMargins()
    height = round(top + bottom) + LEGEND_ROW_PX + LEGEND_NEXT_ROW_PX * (rows - 1)
    if legend.minimumHeight() != height or legend.maximumHeight() != height:
        legend.setMinimumHeight(height)
        legend.setPreferredHeight(height)
        legend.setMaximumHeight(height)


def _elide_legend(plot: pg.PlotItem) -> None:
    """Legend labels elided to the plot's width (the whole name stays in ``full_text``): a long
    name makes the legend taller at most, never the plot's column wider."""
    room = max(40, int(plot.width()) - LEGEND_SAMPLE_PX - LEGEND_GAP_PX - 4) if plot.width() > 0 else 10_000
    for _sample, label in plot.legend.items:
        full = getattr(label, "full_text", None)
        if full is None:
            full = label.full_text = label.text
        metrics = QtGui.QFontMetrics(label.item.font())
        text = full
        if metrics.horizontalAdvance(full) > room:
            # "<run> · <series>": the series and the run name's end (its start time) say the most
            run, sep, series = full.rpartition(" · ")
            keep = metrics.horizontalAdvance(sep + series)
            text = (metrics.elidedText(run, QtCore.Qt.TextElideMode.ElideMiddle, room - keep) + sep + series
                    if run and room - keep >= 40 else metrics.elidedText(full, QtCore.Qt.TextElideMode.ElideRight, room))
        if text != label.text:
            label.setText(text)


def _mark_if_short(item: pg.PlotDataItem, points: int, pen: object) -> None:
    """Markers on a curve of one or two points (a single point draws no line); off again once
    the line shows. Curves that always have markers keep them."""
    if getattr(item, "own_symbol", None) is None:
        item.own_symbol = item.opts.get("symbol") is not None
    if item.own_symbol:
        return
    short = points <= SHORT_CURVE
    if short and item.opts.get("symbol") is None:
        color = pen.color() if hasattr(pen, "color") else QtGui.QColor("#888888")
        item.setSymbol("o")
        item.setSymbolSize(5)
        item.setSymbolBrush(color)
        item.setSymbolPen(None)
    elif not short and item.opts.get("symbol") is not None:
        item.setSymbol(None)
