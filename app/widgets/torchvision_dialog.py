"""Pick a torchvision model and weights as a source; shows which weights are cached here."""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app import engine_catalog


class TorchvisionSourceDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None, catalog: list[dict[str, Any]] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add a torchvision source")
        self.resize(640, 460)
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel("Pretrained ImageNet models from torchvision. Weights that are not cached "
                                 "on this machine are downloaded when a run starts, which needs a network.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter models…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        layout.addWidget(self.filter)
        self.table = QtWidgets.QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setHeaderLabels(["Model", "Weights", "On this machine", "Classes", "Input"])
        self.table.itemDoubleClicked.connect(lambda *_: self.accept())
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.table, 1)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Add source")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._fill(catalog)
        self._selection_changed()

    def _fill(self, catalog: list[dict[str, Any]] | None) -> None:
        if catalog is None:
            QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
            try:
                catalog = engine_catalog.torchvision_catalog()
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                self.message.setText(f"The torchvision catalog could not be read: {exc}")
                catalog = []
            finally:
                QtWidgets.QApplication.restoreOverrideCursor()
        green = QtGui.QColor("#2e7d32")
        grey = QtGui.QColor("#777777")
        for model in catalog:
            for weights in model.get("weights", []):
                cached = bool(model.get("cached", {}).get(weights))
                item = QtWidgets.QTreeWidgetItem([
                    str(model["model"]), str(weights), "cached" if cached else "download needed",
                    str(model.get("num_classes", "")), str(model.get("input_size", "")),
                ])
                item.setForeground(2, green if cached else grey)
                item.setData(0, QtCore.Qt.ItemDataRole.UserRole, (model["model"], weights))
                self.table.addTopLevelItem(item)
        for column in range(self.table.columnCount()):
            self.table.resizeColumnToContents(column)
        if self.table.topLevelItemCount():
            first_cached = next((self.table.topLevelItem(i) for i in range(self.table.topLevelItemCount())
                                 if self.table.topLevelItem(i).text(2) == "cached"), self.table.topLevelItem(0))
            self.table.setCurrentItem(first_cached)

    def _apply_filter(self, text: str) -> None:
        text = text.lower().strip()
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            item.setHidden(bool(text) and text not in item.text(0).lower() and text not in item.text(1).lower())

    def _selection_changed(self) -> None:
        ok = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.selected() is not None)

    def selected(self) -> tuple[str, str] | None:
        item = self.table.currentItem()
        if item is None or item.isHidden():
            return None
        return item.data(0, QtCore.Qt.ItemDataRole.UserRole)

    def source(self) -> dict[str, Any] | None:
        chosen = self.selected()
        if chosen is None:
            return None
        return {"kind": "torchvision", "arch": chosen[0], "weights": chosen[1]}
