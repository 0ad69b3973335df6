"""Live training curves (pyqtgraph): loss, accuracy, the sources' auxiliary losses, learning rate.

Events only append to numpy buffers; a ~30 Hz timer pushes changed buffers to the
curves with ``setData``. Peak downsampling and clip-to-view keep a redraw cheap at
100,000 points. Recorded runs chosen in the runs panel are drawn dashed on top.
"""

from __future__ import annotations

import html
from typing import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.run_history import RunCurves, SeriesBuffer, series_for_epoch, series_for_progress
from sskt_engine.events import EpochEnd, Event, Progress, RunStarted

REDRAW_MS = 33
PLOTS = (("loss", "Loss on the target task"), ("accuracy", "Accuracy (%)"),
         ("sources", "Total loss and auxiliary losses (per source)"), ("lr", "Learning rate"))
FIXED_COLORS = {
    "train loss": "#1f77b4", "train target": "#1f77b4", "val loss": "#2ca02c", "train total": "#444444",
    "train acc": "#1f77b4", "val acc": "#2ca02c", "val top-5": "#9467bd", "lr": "#d62728",
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
OVERLAY_PALETTE = ("#6a3d9a", "#b15928", "#e31a1c", "#33a02c", "#1f78b4", "#ff7f00", "#a6761d", "#666666")
OVERLAY_KEYS = ("train loss", "train target", "val loss", "val acc", "lr")


class _Curve:
    def __init__(self, plot: str, key: str, item: pg.PlotDataItem, buffer: SeriesBuffer | None = None):
        self.plot = plot
        self.key = key
        self.item = item
        self.buffer = buffer
        self.dirty = False

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        if self.buffer is not None:
            return self.buffer.x, self.buffer.y
        x, y = self.item.getOriginalDataset()
        return (x if x is not None else np.empty(0)), (y if y is not None else np.empty(0))


class LivePlots(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("livePlots")
        self.view.setBackground("w")
        self.view.ci.setSpacing(6)
        layout.addWidget(self.view)
        self.plots: dict[str, pg.PlotItem] = {}
        for index, (key, title) in enumerate(PLOTS):
            # Each cell: title, then the legend as a row of its own, then the plot. A legend
            # inside the plot would hide curves wherever they happen to run.
            cell = self.view.addLayout(row=index // 2, col=index % 2)
            cell.setSpacing(0)
            label = cell.addLabel(title, row=0, col=0, color="#333333", size="10pt")
            legend = pg.LegendItem(offset=None, labelTextColor="#333333", labelTextSize="8pt", pen=None,
                                   brush=None, verSpacing=-8, horSpacing=12, colCount=3)
            cell.addItem(legend, row=1, col=0)
            plot = cell.addPlot(row=2, col=0)
            plot.legend = legend  # PlotItem adds and removes named curves here by itself
            plot.showGrid(x=True, y=True, alpha=0.18)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setLabel("bottom", "epoch", color="#555555")
            plot.getAxis("left").setWidth(52)
            for axis in ("left", "bottom"):
                # Axes (tick labels and the grid they draw) are most of a repaint: render each to a
                # cached pixmap that is redrawn only when its range changes, not on every new point.
                plot.getAxis(axis).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
                plot.getAxis(axis).setTextPen("#444444")
                plot.getAxis(axis).setPen("#999999")
                plot.getAxis(axis).enableAutoSIPrefix(False)
            cell.layout.setRowStretchFactor(2, 1)
            # Titles and legends must not decide the column widths: both columns share alike.
            label.updateMin = lambda: None  # LabelItem would pin its minimum width to the text's
            label.setMinimumWidth(0)
            label.setPreferredWidth(0)
            if key != "loss":
                plot.setXLink(self.plots["loss"])
            self.plots[key] = plot
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
        self._placeholder.setStyleSheet("color: #777777; background: rgba(255, 255, 255, 215); padding: 10px;"
                                        " border: 1px solid #dddddd; border-radius: 6px;")
        self._placeholder.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.view.installEventFilter(self)
        self._no_sources = pg.TextItem("No source models in this run: the loss is the target loss.",
                                       color="#888888", anchor=(0.5, 0.5))
        self._no_sources.setPos(0.5, 0.5)
        self._no_sources.hide()
        self.plots["sources"].addItem(self._no_sources, ignoreBounds=True)

        self.curves: dict[str, _Curve] = {}
        self.overlays: dict[str, list[_Curve]] = {}
        self._color_index = 0
        self.steps_per_epoch = 0
        self.redraws = 0

        self._hover_line: dict[str, pg.InfiniteLine] = {}
        self._hover_text: dict[str, pg.TextItem] = {}
        self._hover_dots: dict[str, pg.ScatterPlotItem] = {}
        for key, plot in self.plots.items():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888888", style=QtCore.Qt.PenStyle.DotLine))
            text = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 225), border=pg.mkPen("#bbbbbb"))
            dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen("w"))
            for item, z in ((line, 60), (dots, 61), (text, 62)):
                item.setZValue(z)
                item.hide()
                plot.addItem(item, ignoreBounds=True)
            self._hover_line[key], self._hover_text[key], self._hover_dots[key] = line, text, dots
        self._mouse_proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=60, slot=self._mouse_moved)

        # Armed by the first new point, fires once REDRAW_MS later: at most ~30 redraws a
        # second while data arrives, and no wake-ups at all while nothing changes.
        self.timer = QtCore.QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.redraw)

    # -- events ------------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            if event.start_epoch == 0:
                self.clear()
            self.steps_per_epoch = event.steps_per_epoch
            self._no_sources.setVisible(not event.source_names)
            # The whole run's width from the start: the curves grow into it, and the x axes
            # (linked to the loss plot) stay put instead of re-rendering on every new point.
            for plot in self.plots.values():
                plot.enableAutoRange(x=False)
            self.plots["loss"].setXRange(0, max(1, event.epochs), padding=0.02)
        elif isinstance(event, Progress):
            self._add_points(series_for_progress(event, self.steps_per_epoch))
        elif isinstance(event, EpochEnd):
            self._add_points(series_for_epoch(event))

    def _add_points(self, points: Iterable[tuple[str, str, float, float]]) -> None:
        for plot, key, x, y in points:
            curve = self.curves.get(key) or self._new_curve(plot, key)
            curve.buffer.append(x, y)
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
        kwargs = {"symbol": "o", "symbolSize": 6, "symbolBrush": color, "symbolPen": pg.mkPen("w")} if is_val else {}
        item = self.plots[plot].plot(name=key, pen=pen, **kwargs)
        self._sync_legends()
        if plot == "sources":
            self._no_sources.hide()
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        curve = _Curve(plot, key, item, SeriesBuffer())
        self.curves[key] = curve
        self._drop_placeholder()
        return curve

    def _drop_placeholder(self) -> None:
        if self._placeholder is not None:
            self._placeholder.deleteLater()
            self._placeholder = None

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt API)
        if obj is self.view and event.type() == QtCore.QEvent.Type.Resize and self._placeholder is not None:
            width = min(520, self.view.width() - 40)
            self._placeholder.setFixedWidth(max(120, width))
            self._placeholder.adjustSize()
            self._placeholder.move((self.view.width() - self._placeholder.width()) // 2,
                                   (self.view.height() - self._placeholder.height()) // 2)
        return super().eventFilter(obj, event)

    def redraw(self) -> None:
        """Push changed buffers to their curves; runs from the timer, never per event."""
        changed = False
        for curve in self.curves.values():
            if curve.dirty:
                curve.item.setData(curve.buffer.x, curve.buffer.y)
                curve.dirty = False
                changed = True
        if changed:
            self.redraws += 1

    def clear(self) -> None:
        for curve in self.curves.values():
            self.plots[curve.plot].removeItem(curve.item)
        self.curves.clear()
        self._sync_legends()
        self._color_index = 0
        self.steps_per_epoch = 0
        for plot in self.plots.values():
            plot.enableAutoRange()

    def _sync_legends(self) -> None:
        for plot in self.plots.values():
            count = len(plot.legend.items)
            if count:
                plot.legend.setColumnCount(min(4, count))
            plot.legend.setVisible(bool(count))

    def point_count(self, key: str) -> int:
        curve = self.curves.get(key)
        return len(curve.buffer) if curve else 0

    # -- recorded runs -----------------------------------------------------------------
    def set_overlays(self, runs: list[RunCurves]) -> None:
        """Draw recorded runs dashed; replaces the previous overlays."""
        for curves in self.overlays.values():
            for curve in curves:
                self.plots[curve.plot].removeItem(curve.item)
        self.overlays.clear()
        self._sync_legends()
        for index, run in enumerate(runs):
            color = OVERLAY_PALETTE[index % len(OVERLAY_PALETTE)]
            items = []
            for key in OVERLAY_KEYS:
                if key not in run.series:
                    continue
                plot, x, y = run.series[key]
                is_val = key.startswith("val")
                pen = pg.mkPen(color, width=1.8 if is_val else 1.0,
                               style=QtCore.Qt.PenStyle.DashLine if is_val else QtCore.Qt.PenStyle.DotLine)
                kwargs = {"symbol": "t", "symbolSize": 6, "symbolBrush": color, "symbolPen": None} if is_val else {}
                item = self.plots[plot].plot(x, y, name=f"{_short(run.name)} · {key}", pen=pen, **kwargs)
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
                items.append(_Curve(plot, f"{run.name} · {key}", item))
            self.overlays[run.name] = items
        self._sync_legends()
        if runs:
            self._drop_placeholder()

    # -- hover read-out ------------------------------------------------------------------
    def _mouse_moved(self, args: tuple) -> None:
        pos = args[0]
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
        curves = [c for c in self.curves.values() if c.plot == key]
        curves += [c for group in self.overlays.values() for c in group if c.plot == key]
        for curve in curves:
            xs, ys = curve.data()
            if len(xs) == 0:
                continue
            i = int(np.searchsorted(xs, x))
            if i >= len(xs) or (i > 0 and abs(xs[i - 1] - x) <= abs(xs[i] - x)):
                i -= 1
            i = max(0, min(i, len(xs) - 1))
            color = curve.item.opts["pen"].color().name() if hasattr(curve.item.opts["pen"], "color") else "#333"
            rows.append(f"<span style='color:{color}'>●</span> {html.escape(curve.key)}: <b>{_fmt(ys[i])}</b>"
                        f" <span style='color:#888'>@ {xs[i]:.2f}</span>")
            spots.append({"pos": (xs[i], ys[i]), "brush": pg.mkBrush(color)})
        if not rows:
            self._hide_hover(key)
            return
        text = self._hover_text[key]
        text.setHtml(f"<div style='font-size:8pt'>epoch {x:.2f}<br>" + "<br>".join(rows) + "</div>")
        (x0, x1), (y0, y1) = self.plots[key].getViewBox().viewRange()
        # Keep the box inside the plot: flip it to the left of the cursor in the right half.
        text.setAnchor((1, 0) if x > (x0 + x1) / 2 else (0, 0))
        text.setPos(x, y1)
        self._hover_line[key].setPos(x)
        self._hover_dots[key].setData(spots)
        for item in (self._hover_line[key], text, self._hover_dots[key]):
            item.show()


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
