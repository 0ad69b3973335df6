"""A grid of small images with a caption under each (dataset preview, validation predictions)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


def to_qimage(image: np.ndarray) -> QtGui.QImage:
    """uint8 [H, W, 3] -> a QImage that owns its pixels."""
    array = np.ascontiguousarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    height, width = array.shape[:2]
    return QtGui.QImage(array.data, width, height, 3 * width, QtGui.QImage.Format.Format_RGB888).copy()


class ImageGrid(QtWidgets.QWidget):
    """Painted, not built from labels: hundreds of cells stay cheap, and it wraps to the width."""

    def __init__(self, cell: int = 72, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.cell = cell
        self.aspect = 1.0  # cell width / height: frame strips of clips are wide
        self.caption_lines = 1
        self._images: list[QtGui.QImage] = []
        self._captions: list[str] = []
        self._colors: list[QtGui.QColor | None] = []
        self._tooltips: list[str] = []
        self._message = ""
        self.setMouseTracking(True)
        sp = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred)
        sp.setHeightForWidth(True)
        self.setSizePolicy(sp)

    def set_images(self, images: np.ndarray | Sequence[np.ndarray], captions: Sequence[str],
                   colors: Sequence[str | None] | None = None, tooltips: Sequence[str] | None = None,
                   caption_lines: int = 1) -> None:
        self._images = [to_qimage(img) for img in images]
        self._captions = list(captions)
        self._colors = [QtGui.QColor(c) if c else None for c in (colors or [None] * len(self._images))]
        self._tooltips = list(tooltips or self._captions)
        self.caption_lines = caption_lines
        self._message = ""
        self.updateGeometry()
        self.update()

    def set_message(self, text: str) -> None:
        self._images, self._captions, self._colors, self._tooltips = [], [], [], []
        self._message = text
        self.updateGeometry()
        self.update()

    def count(self) -> int:
        return len(self._images)

    def _metrics(self, width: int) -> tuple[int, int, int]:
        caption_h = self.fontMetrics().height() * self.caption_lines + 4
        cell_w = self._cell_width() + 8
        columns = max(1, width // cell_w)
        return columns, cell_w, self.cell + caption_h + 8

    def _cell_width(self) -> int:
        return round(self.cell * self.aspect)

    def set_aspect(self, aspect: float) -> None:
        """Cells ``aspect`` times as wide as high (1: square images)."""
        self.aspect = max(0.25, float(aspect))
        self.updateGeometry()
        self.update()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        if not self._images:
            return self.fontMetrics().height() * 2 + 8
        columns, _, cell_h = self._metrics(width)
        rows = (len(self._images) + columns - 1) // columns
        return rows * cell_h

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        width = 4 * (self._cell_width() + 8)
        return QtCore.QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802
        return QtCore.QSize(self._cell_width() + 8, self.fontMetrics().height() * 2)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.height() != self.heightForWidth(self.width()):
            self.updateGeometry()

    def _cell_at(self, pos: QtCore.QPoint) -> int:
        columns, cell_w, cell_h = self._metrics(self.width())
        index = (pos.y() // cell_h) * columns + pos.x() // cell_w
        return index if pos.x() < columns * cell_w and 0 <= index < len(self._images) else -1

    def event(self, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.ToolTip:
            index = self._cell_at(event.pos())
            if index >= 0:
                QtWidgets.QToolTip.showText(event.globalPos(), self._tooltips[index], self)
            else:
                QtWidgets.QToolTip.hideText()
            return True
        return super().event(event)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802
        painter = QtGui.QPainter(self)
        if not self._images:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap,
                             self._message)
            return
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, True)
        columns, cell_w, cell_h = self._metrics(self.width())
        fm = self.fontMetrics()
        for index, image in enumerate(self._images):
            row, column = divmod(index, columns)
            x, y = column * cell_w + 4, row * cell_h + 4
            target = QtCore.QRect(x, y, self._cell_width(), self.cell)
            painter.drawImage(target, image)
            color = self._colors[index] if index < len(self._colors) else None
            if color is not None:
                painter.setPen(QtGui.QPen(color, 2))
                painter.drawRect(target.adjusted(0, 0, -1, -1))
            painter.setPen(color if color is not None else self.palette().text().color())
            lines = self._captions[index].split("\n")[: self.caption_lines]
            for line_no, line in enumerate(lines):
                text = fm.elidedText(line, QtCore.Qt.TextElideMode.ElideRight, cell_w - 4)
                painter.drawText(QtCore.QRect(column * cell_w + 2, y + self.cell + 2 + line_no * fm.height(),
                                              cell_w - 4, fm.height()), QtCore.Qt.AlignmentFlag.AlignHCenter, text)
