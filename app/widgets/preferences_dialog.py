"""Preferences: the runs folder, the device of new experiments, the theme and the CPU threads
training may use. Only collects the choices; the main window applies them (``apply_preferences``)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from app import engine_catalog
from app.palette import THEMES
from app.settings import AppSettings

THEME_LABELS = {"system": "Follow the desktop", "light": "Light", "dark": "Dark"}


class PreferencesDialog(QtWidgets.QDialog):
    def __init__(self, settings: AppSettings, runs_root: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferencesDialog")
        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        layout.addLayout(form)

        folder_row = QtWidgets.QHBoxLayout()
        self.runs_root = QtWidgets.QLineEdit(str(runs_root))
        self.runs_root.setToolTip("Where runs are written and listed (sskt train uses $SSKT_RUNS_DIR)")
        browse = QtWidgets.QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder_row.addWidget(self.runs_root, 1)
        folder_row.addWidget(browse)
        form.addRow("Runs folder", folder_row)

        self.device = QtWidgets.QComboBox()
        self.device.setEditable(True)
        self.device.addItems(list(dict.fromkeys(("auto", *engine_catalog.devices()))))
        self.device.setCurrentText(settings.default_device)
        self.device.setToolTip("train.device of a new experiment (File → New); auto picks CUDA, then MPS, then CPU")
        form.addRow("Device for new experiments", self.device)

        self.theme = QtWidgets.QComboBox()
        for theme in THEMES:
            self.theme.addItem(THEME_LABELS[theme], theme)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        form.addRow("Theme", self.theme)

        self.threads = QtWidgets.QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("PyTorch's choice (one per core)")
        self.threads.setValue(settings.threads)
        self.threads.setToolTip("CPU threads for training inside the app; on a busy machine 1 or 2 is often faster")
        form.addRow("Training threads", self.threads)

        self.problem = QtWidgets.QLabel()
        self.problem.setObjectName("fieldError")
        self.problem.setWordWrap(True)
        self.problem.hide()
        layout.addWidget(self.problem)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    def _choose_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Runs folder", self.runs_root.text())
        if folder:
            self.runs_root.setText(folder)

    def _accept(self) -> None:
        text = self.runs_root.text().strip()
        path = Path(text).expanduser() if text else None
        if path is None or (path.exists() and not path.is_dir()):
            self.problem.setText("The runs folder must be a folder (it is made when the first run starts).")
            self.problem.show()
            return
        self.accept()

    def values(self) -> dict:
        return {"runs_root": Path(self.runs_root.text().strip()).expanduser(), "device": self.device.currentText(),
                "theme": self.theme.currentData(), "threads": self.threads.value()}
