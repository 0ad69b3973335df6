"""A titled section whose body folds away (the setup panel is long)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class CollapsibleSection(QtWidgets.QWidget):
    toggled = QtCore.Signal(bool)

    def __init__(self, title: str, body: QtWidgets.QWidget, *, expanded: bool = True,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("section")
        self.header = QtWidgets.QToolButton()
        self.header.setObjectName("sectionHeader")
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.header.toggled.connect(self.set_expanded)
        self.badge = QtWidgets.QLabel()
        self.badge.setObjectName("sectionBadge")
        self.badge.hide()
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.header, 1)
        top.addWidget(self.badge)
        self.body = body
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        frame = QtWidgets.QFrame()
        frame.setObjectName("sectionBody")
        inner = QtWidgets.QVBoxLayout(frame)
        inner.setContentsMargins(10, 4, 4, 8)
        inner.addWidget(body)
        self.frame = frame
        layout.addWidget(frame)
        self.set_expanded(expanded)

    def set_expanded(self, expanded: bool) -> None:
        self.header.setChecked(expanded)
        self.header.setArrowType(QtCore.Qt.ArrowType.DownArrow if expanded else QtCore.Qt.ArrowType.RightArrow)
        self.frame.setVisible(expanded)
        self.toggled.emit(expanded)

    def is_expanded(self) -> bool:
        return self.header.isChecked()

    def set_badge(self, text: str) -> None:
        """A short note beside the title (an error count while the section is folded)."""
        self.badge.setText(text)
        self.badge.setVisible(bool(text))
