"""Sample images of the chosen dataset with their labels, loaded off the GUI thread."""

from __future__ import annotations

from typing import Callable

from PySide6 import QtCore, QtWidgets

from app import engine_catalog
from app.widgets.image_grid import ImageGrid
from app.worker import Worker, WorkerError, start_worker
from sskt_engine.config import DataConfig


class DatasetPreview(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel("Sample images")
        self.title.setObjectName("hint")
        self.button = QtWidgets.QPushButton("Show samples")
        self.button.setToolTip("Load 16 training images of this dataset with their labels.")
        self.button.clicked.connect(self.refresh)
        top.addWidget(self.title, 1)
        top.addWidget(self.button)
        layout.addLayout(top)
        self.grid = ImageGrid(cell=64)
        self.grid.set_message("")
        self.grid.hide()
        layout.addWidget(self.grid)
        self._config: Callable[[], DataConfig | None] = lambda: None
        self._task: Worker | None = None
        self._shown_for: DataConfig | None = None

    def set_config_source(self, getter: Callable[[], DataConfig | None]) -> None:
        self._config = getter

    def refresh(self) -> None:
        preview = engine_catalog.preview_function()
        cfg = self._config()
        self.grid.show()
        if preview is None:
            self.grid.set_message("The engine cannot show samples yet.")
            return
        if cfg is None:
            self.grid.set_message("Fix the dataset settings to see samples.")
            return
        if cfg == self._shown_for and self.grid.count():
            return
        if self._task is not None:
            self._task.cancel()
        self.grid.set_message("Loading samples…")
        self.button.setEnabled(False)
        self._shown_for = cfg
        self._task = start_worker(lambda: preview(cfg, count=16, seed=0), returned=self._loaded, errored=self._failed,
                                  name="sskt-dataset-preview")

    def config_changed(self) -> None:
        """Show fresh samples when the grid is already open."""
        if self.grid.isVisible() and self._config() != self._shown_for:
            QtCore.QTimer.singleShot(0, self.refresh)

    def _loaded(self, result) -> None:
        images, labels = result
        self._task = None
        self.button.setEnabled(True)
        self.button.setText("Refresh")
        # clips come as strips of frames: wide cells, as high as an image's
        self.grid.set_aspect(images.shape[2] / images.shape[1] if len(images) else 1.0)
        self.title.setText("Sample clips (frames left to right)" if self.grid.aspect > 1 else "Sample images")
        self.grid.set_images(images, labels)

    def _failed(self, error: WorkerError) -> None:
        self._task = None
        self._shown_for = None
        self.button.setEnabled(True)
        self.grid.set_message(str(error.exception) or type(error.exception).__name__)
