"""Use an earlier run's trained network as a source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from sskt_engine.runs import FINISHED, STOPPED, list_runs


class RunSourceDialog(QtWidgets.QDialog):
    def __init__(self, runs_root: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add an earlier run as a source")
        self.resize(600, 380)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel(f"Runs in {runs_root}:"))
        self.table = QtWidgets.QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["Run", "Status", "Method", "Best"])
        self.table.itemDoubleClicked.connect(lambda *_: self.accept())
        layout.addWidget(self.table, 1)
        for info in list_runs(runs_root):
            if info.status not in (FINISHED, STOPPED):
                continue
            best = info.metric.format(info.best_score, missing="")
            item = QtWidgets.QTreeWidgetItem([info.path.name, info.status, info.method, best])
            item.setData(0, QtCore.Qt.ItemDataRole.UserRole, str(info.path))
            self.table.addTopLevelItem(item)
        for column in range(4):
            self.table.resizeColumnToContents(column)
        if self.table.topLevelItemCount():
            self.table.setCurrentItem(self.table.topLevelItem(0))
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Checkpoint"))
        self.checkpoint = QtWidgets.QComboBox()
        self.checkpoint.addItems(["best", "last"])
        row.addWidget(self.checkpoint)
        row.addStretch(1)
        browse = QtWidgets.QPushButton("Other folder…")
        browse.clicked.connect(self._browse)
        row.addWidget(browse)
        layout.addLayout(row)
        self._other: str | None = None
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add source")
        self.add_button.setEnabled(self.table.currentItem() is not None)  # nothing to add: it would do nothing
        self.table.currentItemChanged.connect(lambda item, _old: self.add_button.setEnabled(item is not None))
        if not self.table.topLevelItemCount():
            # an empty table alone reads as broken: say why it is empty and what to do
            self.table.hide()
            self.empty = QtWidgets.QLabel(f"No finished or stopped runs in {runs_root} yet. Train one first, or "
                                          "choose a run folder elsewhere with Other folder….")
            self.empty.setObjectName("hint")
            self.empty.setWordWrap(True)
            layout.insertWidget(1, self.empty, 1)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Run folder")
        if folder:
            self._other = folder
            self.accept()

    def source(self) -> dict[str, Any] | None:
        path = self._other
        if path is None:
            item = self.table.currentItem()
            if item is None:
                return None
            path = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        return {"kind": "run", "path": path, "checkpoint": self.checkpoint.currentText()}
