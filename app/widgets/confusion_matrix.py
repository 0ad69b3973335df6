"""The confusion matrix as a heat map: rows are true classes, columns predictions.

Colours show each row normalised (the share of a class predicted as each class), so
rare classes read as clearly as common ones; hovering a cell gives count and share.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

MAX_NAMED_TICKS = 20
MAX_CELL_TEXT = 12


class ConfusionMatrixPlot(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.readout = QtWidgets.QLabel("Hover a cell for its count.")
        self.readout.setObjectName("hint")
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        layout.addWidget(self.view, 1)
        layout.addWidget(self.readout)
        self.plot = self.view.addPlot()
        self.plot.setTitle("Confusion matrix (row-normalised)", color="#333333", size="10pt")
        self.plot.setLabel("left", "true class", color="#555555")
        self.plot.setLabel("bottom", "predicted class", color="#555555")
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("#444444")
            self.plot.getAxis(axis).setPen("#999999")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.ColorMap([0.0, 0.5, 1.0], ["#f7fbff", "#6baed6", "#08306b"]).getLookupTable(
            nPts=256))
        self.plot.addItem(self.image)
        self._texts: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.class_names: list[str] = []
        self._proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30, slot=self._hover)

    def set_matrix(self, matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> None:
        for text in self._texts:
            self.plot.removeItem(text)
        self._texts.clear()
        self.matrix = np.asarray(matrix, dtype=np.int64).reshape(len(matrix), -1) if len(matrix) else \
            np.zeros((0, 0), dtype=np.int64)
        n = self.matrix.shape[0]
        self.class_names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
        if n == 0:
            self.image.clear()
            return
        totals = self.matrix.sum(axis=1, keepdims=True)
        share = np.divide(self.matrix, totals, out=np.zeros(self.matrix.shape, dtype=float), where=totals > 0)
        self.share = share
        self.image.setImage(share, levels=(0.0, 1.0))
        self.image.setRect(QtCore.QRectF(0, 0, n, n))
        names = self.class_names if n <= MAX_NAMED_TICKS else None
        step = 1 if n <= MAX_NAMED_TICKS else max(1, n // 10)
        ticks = [(i + 0.5, (names[i] if names else str(i))) for i in range(0, n, step)]
        self.plot.getAxis("bottom").setTicks([ticks, []])
        self.plot.getAxis("left").setTicks([ticks, []])
        if n <= MAX_CELL_TEXT:
            for r in range(n):
                for c in range(n):
                    if self.matrix[r, c] == 0:
                        continue
                    color = "#ffffff" if share[r, c] > 0.55 else "#222222"
                    text = pg.TextItem(str(self.matrix[r, c]), color=color, anchor=(0.5, 0.5))
                    text.setPos(c + 0.5, r + 0.5)
                    self.plot.addItem(text)
                    self._texts.append(text)
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)

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
