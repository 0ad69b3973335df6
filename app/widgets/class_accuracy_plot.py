"""Accuracy of each class as horizontal bars, worst classes easy to spot."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from app.palette import FollowsPalette, PlotColors, plot_colors

MAX_NAMED_TICKS = 30


class ClassAccuracyPlot(FollowsPalette, QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        layout.addWidget(self.view)
        self.plot = self.view.addPlot()
        self.title = "Accuracy per class (%)"
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, alpha=0.2)
        self.plot.setXRange(0, 100, padding=0.02)
        self.colors: PlotColors = plot_colors(self.palette())
        self._apply_colors()
        self.bars: pg.BarGraphItem | None = None
        self.mean_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#c62828", width=1.5,
                                                                                style=pg.QtCore.Qt.PenStyle.DashLine))
        self.mean_line.hide()
        self.plot.addItem(self.mean_line)
        self.values = np.zeros(0)

    def _apply_colors(self) -> None:
        self.view.setBackground(self.colors.background)
        self.plot.setTitle(self.title, color=self.colors.title, size="10pt")
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen(self.colors.text)
            self.plot.getAxis(axis).setPen(self.colors.axis)

    def set_accuracies(self, accuracies: Sequence[float], class_names: Sequence[str], title: str | None = None) -> None:
        """Fractions in [0, 1], one per class; ``title`` names what they measure (the eval report says).
        A NaN is a class that has no value (a multi-label class without one positive validation
        image has no average precision): it gets no bar, "(no value)" beside its name, and stays
        out of the mean line."""
        if title:
            self.title = title
            self.plot.setTitle(title, color=self.colors.title, size="10pt")
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        self.values = 100.0 * np.asarray(accuracies, dtype=float)
        n = len(self.values)
        if n == 0:
            self.mean_line.hide()
            return
        names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
        known = np.isfinite(self.values)
        names = [name if ok else f"{name} (no value)" for name, ok in zip(names, known)]
        widths = np.where(known, self.values, 0.0)  # a NaN width would poison the item's bounds
        brushes = [pg.mkBrush("#c62828" if v < 50 else "#ef6c00" if v < 75 else "#1f77b4") for v in widths]
        self.bars = pg.BarGraphItem(x0=np.zeros(n), y=np.arange(n), height=0.72, width=widths, brushes=brushes,
                                    pen=pg.mkPen(None))
        self.plot.addItem(self.bars)
        step = 1 if n <= MAX_NAMED_TICKS else max(1, n // 20)
        self.plot.getAxis("left").setTicks([[(i, names[i]) for i in range(0, n, step)], []])
        if known.any():
            self.mean_line.setPos(float(np.mean(self.values[known])))
            self.mean_line.show()
        else:
            self.mean_line.hide()
        self.plot.setYRange(-0.6, n - 0.4, padding=0)
        self.plot.setXRange(0, 100, padding=0.02)
