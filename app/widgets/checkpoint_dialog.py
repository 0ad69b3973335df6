"""Add a checkpoint file as a source: the file, its architecture and its class count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtWidgets

from app import engine_catalog

CHECKPOINT_FILTER = "Model files (*.pt *.pth *.safetensors *.ckpt);;All files (*)"


class CheckpointSourceDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None, path: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Add a checkpoint source")
        self.setMinimumWidth(520)
        form = QtWidgets.QFormLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.path = QtWidgets.QLineEdit(path)
        self.path.setPlaceholderText("a .pt, .pth or .safetensors file")
        self.path.textChanged.connect(self._check)
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File", row)
        self.arch = QtWidgets.QComboBox()
        self.arch.addItem("read from the file", "")
        self.arch.setItemData(0, "Files exported by SSKT Studio name their architecture", 3)
        for entry in engine_catalog.architectures():
            self.arch.addItem(entry.name, entry.name)
            self.arch.setItemData(self.arch.count() - 1, entry.description, 3)  # ToolTipRole
        form.addRow("Architecture", self.arch)
        self.classes = QtWidgets.QSpinBox()
        self.classes.setRange(0, 100000)
        self.classes.setSpecialValueText("read from the file")
        self.classes.setToolTip("Class count of the checkpoint's classifier.")
        form.addRow("Classes", self.classes)
        self.name = QtWidgets.QLineEdit()
        self.name.setPlaceholderText("default: the file name")
        form.addRow("Name", self.name)
        self.message = QtWidgets.QLabel()
        self.message.setObjectName("fieldError")
        form.addRow(self.message)
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                                  | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Add source")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._check()

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Checkpoint file", self.path.text(), CHECKPOINT_FILTER)
        if path:
            self.path.setText(path)

    def _check(self) -> None:
        text = self.path.text().strip()
        problem = ""
        if not text:
            problem = "Choose a file."
        elif not text.startswith("builtin:") and not Path(text).expanduser().is_file():
            problem = "No such file."
        self.message.setText(problem if text else "")
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)

    def source(self) -> dict[str, Any]:
        return {"kind": "checkpoint", "path": self.path.text().strip(), "arch": self.arch.currentData() or "",
                "num_classes": self.classes.value() or None, "name": self.name.text().strip()}
