"""Validation accuracy (the study's headline metric) of a study's runs: per method a mean line inside a ± std band, every run
of the method as a faint line, and the run in progress drawn dashed as its epochs end.

The numbers come from ``sskt_engine.study.method_curves`` (mean and sample std per epoch);
this widget only draws them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from app.palette import FollowsPalette, plot_colors
from app.widgets.plots import PALETTE
from sskt_engine.metric_info import ACCURACY, MetricInfo

BAND_ALPHA = 45  # of 255: the band shows the spread without hiding the lines under it
RUN_ALPHA = 90


def _pen(color: str, width: float, alpha: int = 255, dashed: bool = False) -> QtGui.QPen:
    qcolor = QtGui.QColor(color)
    qcolor.setAlpha(alpha)
    pen = pg.mkPen(qcolor, width=width)
    if dashed:
        pen.setStyle(pg.QtCore.Qt.PenStyle.DashLine)
    return pen


class StudyCurvesPlot(FollowsPalette, QtWidgets.QWidget):
    palette_attr = "theme"  # (self.colors: each method's colour)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("studyPlot")
        self.theme = plot_colors(self.palette())  # (self.colors: each method's colour)
        # the legend is a row of its own above the plot: inside it, it covered curves
        self.legend = pg.LegendItem(offset=None, colCount=3, labelTextSize="8pt", pen=None, brush=None)
        self.view.addItem(self.legend, row=0, col=0)
        self.plot = self.view.addPlot(row=1, col=0)
        self.plot.legend = self.legend  # named curves go there by themselves
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "epoch")
        self.view.ci.layout.setRowStretchFactor(1, 1)
        layout.addWidget(self.view)
        self._title = "Validation accuracy (%) per epoch: mean ± std over seeds"
        # (not "metric": that name would override QWidget.metric(), which Qt calls, e.g. in grab())
        self.value_metric = ACCURACY
        self.colors: dict[str, str] = {}
        self.method_items: dict[str, list[pg.GraphicsObject]] = {}
        self.live_item: pg.PlotDataItem | None = None
        self.live_points: tuple[list[float], list[float]] = ([], [])
        self.live_method = ""
        self._apply_colors()

    def _apply_colors(self) -> None:
        colors = self.theme
        self.view.setBackground(colors.background)
        self.plot.setTitle(self._title, color=colors.title)
        self.plot.setLabel("bottom", "epoch", color=colors.muted)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen(colors.text)
            self.plot.getAxis(axis).setPen(colors.axis)
        self.legend.setLabelTextColor(colors.title)
        for _sample, label in self.legend.items:
            label.setText(label.text, color=colors.title)

    def color(self, method: str) -> str:
        if method not in self.colors:
            self.colors[method] = PALETTE[len(self.colors) % len(PALETTE)]
        return self.colors[method]

    def clear(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.method_items.clear()
        self.live_item = None
        self.live_points = ([], [])

    def show_curves(self, curves: dict[str, dict[str, Any]]) -> None:
        """Redraw from ``method_curves`` output: {method: {runs, epochs, mean, std}}."""
        live = self.live_points
        self.clear()
        for method, entry in curves.items():
            if not entry.get("epochs"):
                continue
            color = self.color(method)
            items: list[pg.GraphicsObject] = []
            for run in entry["runs"]:
                faint = self.plot.plot(run["epochs"], [self.value_metric.scaled(v) for v in run["values"]],
                                       pen=_pen(color, 1, RUN_ALPHA))
                items.append(faint)
            epochs = np.asarray(entry["epochs"], dtype=float)
            mean = self.value_metric.scaled(np.asarray(entry["mean"], dtype=float))
            std = self.value_metric.scaled(np.asarray(entry["std"], dtype=float))
            if len(entry["runs"]) > 1:
                upper = pg.PlotDataItem(epochs, mean + std, pen=pg.mkPen(None))
                lower = pg.PlotDataItem(epochs, mean - std, pen=pg.mkPen(None))
                fill = QtGui.QColor(color)
                fill.setAlpha(BAND_ALPHA)
                band = pg.FillBetweenItem(upper, lower, brush=pg.mkBrush(fill))
                for item in (upper, lower, band):
                    self.plot.addItem(item)
                items += [upper, lower, band]
            runs = len(entry["runs"])
            items.append(self.plot.plot(epochs, mean, pen=_pen(color, 2.5),
                                        name=f"{method} (mean of {runs} run{'s' if runs != 1 else ''})"))
            self.method_items[method] = items
        if live[0]:
            self._draw_live(*live)

    def start_live(self, method: str) -> None:
        """A run of ``method`` began: its epochs are drawn dashed as they end."""
        self.end_live()
        self.live_method = method

    def end_live(self) -> None:
        """The run ended: its curve is part of the method's curves from the next ``show_curves``."""
        if self.live_item is not None:
            self.plot.removeItem(self.live_item)
            self.legend.removeItem(self.live_item)
        self.live_item = None
        self.live_points = ([], [])

    def set_metric(self, metric: MetricInfo) -> None:
        """What the curves measure: the study's headline metric (its runs' task names it)."""
        self.value_metric = metric
        unit = f" ({metric.unit})" if metric.unit else ""
        self._title = f"Validation {metric.label}{unit} per epoch: mean ± std over seeds"
        self.plot.setTitle(self._title, color=self.theme.title)

    def add_live_point(self, epoch: int, val_acc: float) -> None:
        xs, ys = self.live_points
        xs.append(float(epoch))
        ys.append(self.value_metric.scaled(float(val_acc)))
        self._draw_live(xs, ys)

    def _draw_live(self, xs: list[float], ys: list[float]) -> None:
        self.live_points = (xs, ys)
        if self.live_item is None:
            self.live_item = self.plot.plot(xs, ys, pen=_pen(self.color(self.live_method), 1.5, dashed=True),
                                            name=f"{self.live_method} (running)")
        else:
            self.live_item.setData(xs, ys)
