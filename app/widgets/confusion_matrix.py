"""The confusion matrix as a heat map: rows are true classes, columns predictions.

Each row is normalised (the share of a class predicted as each class), so rare classes read as
clearly as common ones: the colours and the numbers in the cells are that share in percent,
and a colour key beside the matrix says so. Hovering a cell gives its count and share. Class
names are elided to their cell's width, so neighbouring names never run together.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.palette import FollowsPalette, PlotColors, plot_colors

MAX_NAMED_TICKS = 20
MAX_CELL_TEXT = 12
COLOR_MAP = pg.ColorMap([0.0, 0.5, 1.0], ["#f7fbff", "#6baed6", "#08306b"])
TITLE = "Confusion matrix (% of true class)"


class ConfusionMatrixPlot(FollowsPalette, QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.readout = QtWidgets.QLabel("Hover a cell for its count.")
        self.readout.setObjectName("hint")
        self.colors: PlotColors = plot_colors(self.palette())
        self.view = pg.GraphicsLayoutWidget()
        layout.addWidget(self.view, 1)
        layout.addWidget(self.readout)
        self.plot = self.view.addPlot(row=0, col=0)
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        # the title never decides the plot's width (it would push the colour key out of view)
        self.plot.titleLabel.updateMin = lambda: None
        self.plot.titleLabel.setMinimumWidth(0)
        self.plot.titleLabel.setPreferredWidth(0)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(COLOR_MAP.getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        # the colour key: what a colour means (0-100 % of the true class), not interactive
        self.color_bar = pg.ColorBarItem(values=(0, 100), colorMap=COLOR_MAP, interactive=False, width=12,
                                         colorMapMenu=False)
        self.view.addItem(self.color_bar, row=0, col=1)
        self._texts: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.share = np.zeros((0, 0), dtype=float)
        self.class_names: list[str] = []
        self._apply_colors()
        self._proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30, slot=self._hover)
        # names are elided to a cell's width on screen: it changes with the widget's size (aspect locked)
        self.plot.getViewBox().sigRangeChanged.connect(self._fit_tick_names)

    def _apply_colors(self) -> None:
        colors = self.colors
        self.view.setBackground(colors.background)
        self.plot.setTitle(TITLE, color=colors.title, size="10pt")
        self.plot.setLabel("left", "true class", color=colors.muted)
        self.plot.setLabel("bottom", "predicted class", color=colors.muted)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen(colors.text)
            self.plot.getAxis(axis).setPen(colors.axis)
        for axis in ("left", "right", "bottom", "top"):
            if self.color_bar.getAxis(axis) is not None:
                self.color_bar.getAxis(axis).setTextPen(colors.text)
                self.color_bar.getAxis(axis).setPen(colors.axis)
        self.color_bar.getAxis("right").setLabel("% of true class", color=colors.muted)

    def set_matrix(self, matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> None:
        for text in self._texts:
            self.plot.removeItem(text)
        self._texts.clear()
        self.matrix = np.asarray(matrix, dtype=np.int64).reshape(len(matrix), -1) if len(matrix) else \
            np.zeros((0, 0), dtype=np.int64)
        n = self.matrix.shape[0]
        self.class_names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
        if n == 0:
            self.share = np.zeros((0, 0), dtype=float)
            self.image.clear()
            return
        totals = self.matrix.sum(axis=1, keepdims=True)
        share = np.divide(self.matrix, totals, out=np.zeros(self.matrix.shape, dtype=float), where=totals > 0)
        self.share = share
        self.image.setImage(share, levels=(0.0, 1.0))
        self.image.setRect(QtCore.QRectF(0, 0, n, n))
        if n <= MAX_CELL_TEXT:
            for r in range(n):
                for c in range(n):
                    if self.matrix[r, c] == 0:
                        continue
                    color = "#ffffff" if share[r, c] > 0.55 else "#222222"  # on the cell's own colour
                    text = pg.TextItem(cell_text(share[r, c]), color=color, anchor=(0.5, 0.5))
                    text.setPos(c + 0.5, r + 0.5)
                    self.plot.addItem(text)
                    self._texts.append(text)
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
        self._fit_tick_names()

    def cell_texts(self) -> list[str]:
        return [text.textItem.toPlainText() for text in self._texts]

    def tick_names(self, axis: str = "bottom") -> list[str]:
        ticks = self.plot.getAxis(axis)._tickLevels
        return [name for _pos, name in ticks[0]] if ticks else []

    def _fit_tick_names(self, *_args) -> None:
        """Class names under their columns, elided to a cell's width (and beside their rows, to
        the axis' width): long names never run into each other."""
        n = self.matrix.shape[0]
        if n == 0:
            return
        step = 1 if n <= MAX_NAMED_TICKS else max(1, n // 10)
        named = n <= MAX_NAMED_TICKS
        metrics = QtGui.QFontMetrics(self.plot.getAxis("bottom").style.get("tickFont") or self.font())
        view = self.plot.getViewBox()
        cell = view.width() / max(1, view.viewRange()[0][1] - view.viewRange()[0][0]) * step if view.width() else 80
        column_room = max(12, int(cell) - 6)
        row_room = 90  # the left axis is given this much room below

        def ticks(room: int) -> list[tuple[float, str]]:
            return [(i + 0.5, metrics.elidedText(self.class_names[i] if named else str(i),
                                                 QtCore.Qt.TextElideMode.ElideRight, room))
                    for i in range(0, n, step)]

        self.plot.getAxis("bottom").setTicks([ticks(column_room), []])
        self.plot.getAxis("left").setTicks([ticks(row_room), []])
        widest = max(metrics.horizontalAdvance(name) for _pos, name in ticks(row_room))
        self.plot.getAxis("left").setWidth(min(row_room, widest) + 28)

    def _hover(self, args: tuple) -> None:
        n = self.matrix.shape[0]
        pos = args[0]
        if n == 0 or not self.plot.getViewBox().sceneBoundingRect().contains(pos):
            return
        point = self.plot.getViewBox().mapSceneToView(pos)
        c, r = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= r < n and 0 <= c < n:
            total = int(self.matrix[r].sum())
            share = 100.0 * self.matrix[r, c] / total if total else 0.0
            self.readout.setText(f"true <b>{self.class_names[r]}</b> → predicted <b>{self.class_names[c]}</b>: "
                                 f"{self.matrix[r, c]} of {total} ({share:.1f}%)")


def cell_text(share: float) -> str:
    """A cell's share as the key reads it: whole percent, "<1" for a share that rounds to 0."""
    value = 100.0 * share
    return "<1" if 0 < value < 0.5 else f"{value:.0f}"
