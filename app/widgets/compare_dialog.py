"""Compare methods: the current experiment run with several methods and seeds on the same
data (``sskt_engine.study.run_study``, what `sskt compare` does), then a table of mean ± std.

The study runs in a background thread; its events come back through a queued signal. Stop
asks the study to stop after the current training step.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from app import engine_catalog
from app.background import BackgroundTask, run_in_background
from app.dialogs import show_error
from sskt_engine.config import ExperimentConfig
from sskt_engine.errors import UserInputError

TABLE_COLUMNS = ("Method", "Runs", "Best val acc", "Final val acc", "Note")


def _pct(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.2f}%" + (f" ± {100 * std:.2f}" if std is not None else "")


class _Events(QtCore.QObject):
    """Lives in the GUI thread; emitted from the study's thread, so delivery is queued."""

    event = QtCore.Signal(object)


class CompareDialog(QtWidgets.QDialog):
    study_finished = QtCore.Signal(str, str)  # study folder, status

    def __init__(self, config: ExperimentConfig, runs_root: Path, parent: QtWidgets.QWidget | None = None,
                 preset_path: str = "", trainer_class: Any = None):
        super().__init__(parent)
        self.config = config
        self.runs_root = Path(runs_root)
        self.preset_path = preset_path
        self.trainer_class = trainer_class
        self.study_dir: Path | None = None
        self.rows: list[dict[str, Any]] = []
        self._task: BackgroundTask | None = None
        self._stop = threading.Event()
        self.setWindowTitle(f"Compare methods on {config.name}")
        self.setObjectName("compareDialog")
        self.setMinimumWidth(600)
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel("Trains the current experiment once per method and seed on the same labelled "
                                 "subset, then tabulates mean ± std. Methods that cannot run with these sources "
                                 "are listed as skipped.")
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        layout.addWidget(intro)

        form = QtWidgets.QFormLayout()
        methods_box = QtWidgets.QWidget()
        methods_layout = QtWidgets.QHBoxLayout(methods_box)
        methods_layout.setContentsMargins(0, 0, 0, 0)
        from sskt_engine.study import DEFAULT_METHODS

        names = [e.key for e in engine_catalog.methods()] or list(DEFAULT_METHODS)
        self.method_checks: dict[str, QtWidgets.QCheckBox] = {}
        for name in names:
            box = QtWidgets.QCheckBox(name)
            box.setChecked(name in DEFAULT_METHODS)
            box.toggled.connect(self._update_buttons)
            self.method_checks[name] = box
            methods_layout.addWidget(box)
        methods_layout.addStretch(1)
        form.addRow("Methods", methods_box)
        self.seeds = QtWidgets.QSpinBox()
        self.seeds.setRange(1, 20)
        self.seeds.setValue(1)
        self.seeds.setToolTip(f"Seeds {config.train.seed}, {config.train.seed + 1}, …: each changes the labelled "
                              "subset, the initialisation and the shuffling")
        form.addRow("Seeds", self.seeds)
        layout.addLayout(form)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        layout.addWidget(self.progress)
        self.table = QtWidgets.QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setObjectName("compareTable")
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 1)
        self.folder_label = QtWidgets.QLabel()
        self.folder_label.setObjectName("hint")
        self.folder_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.folder_label)

        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.run_button = self.buttons.addButton("Run study", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.stop_button = self.buttons.addButton("Stop", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._events = _Events(self)
        self._events.event.connect(self._on_event)
        self._update_buttons()

    def methods(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.method_checks.items() if box.isChecked())

    def busy(self) -> bool:
        return self._task is not None

    def _update_buttons(self, *_args) -> None:
        busy = self.busy()
        self.run_button.setEnabled(not busy and bool(self.methods()))
        self.stop_button.setEnabled(busy and not self._stop.is_set())
        self.seeds.setEnabled(not busy)
        for box in self.method_checks.values():
            box.setEnabled(not busy)

    def start(self) -> None:
        if self.busy() or not self.methods():
            return
        from sskt_engine.study import StudySpec, run_study

        seeds = tuple(self.config.train.seed + i for i in range(self.seeds.value()))
        spec = StudySpec(config=self.config, methods=self.methods(), seeds=seeds, preset_path=self.preset_path)
        self._stop = threading.Event()
        stop, root, trainer, emit = self._stop, self.runs_root, self.trainer_class, self._events.event.emit
        self.rows, self.study_dir = [], None
        self.table.setRowCount(0)
        self.progress.setRange(0, len(seeds) * len(spec.methods))
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        self._task = run_in_background(
            lambda: run_study(spec, root, on_event=emit, stop_event=stop, trainer_class=trainer),
            self._done, self._failed)
        self._update_buttons()

    def stop(self) -> None:
        if self.busy():
            self._stop.set()
            self.progress.setFormat("Stopping…")
            self._update_buttons()

    @QtCore.Slot(object)
    def _on_event(self, event: Any) -> None:
        from sskt_engine.study import StudyRunEnded, StudyRunStarted

        if isinstance(event, StudyRunStarted):
            self.progress.setMaximum(event.total)
            self.progress.setValue(event.index - 1)
            self.progress.setFormat(f"Run {event.index}/{event.total}: {event.method}, seed {event.seed}")
        elif isinstance(event, StudyRunEnded):
            self.progress.setValue(event.index)

    def _done(self, study_dir: Path) -> None:
        from sskt_engine.study import load_study

        self._task = None
        self.study_dir = Path(study_dir)
        state = load_study(self.study_dir)
        self.rows = list(state.get("rows") or [])
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            values = (row["method"], str(row["runs"]), _pct(row["best_mean"], row["best_std"]),
                      _pct(row["final_mean"], row["final_std"]), row.get("note") or row["status"])
            for c, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(text)
                if c == 4:
                    item.setToolTip(text)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        status = str(state.get("status", ""))
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"Study {status}")
        self.folder_label.setText(f"Tables (md, csv, tex) in {self.study_dir}")
        self._update_buttons()
        self.study_finished.emit(str(self.study_dir), status)

    def _failed(self, exc: BaseException, detail: str) -> None:
        self._task = None
        self.progress.setFormat("Did not run")
        self._update_buttons()
        if isinstance(exc, UserInputError):
            show_error(self, "Cannot compare", str(exc))
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            show_error(self, "Compare failed", f"The study stopped because of an unexpected error: {first}", detail)
        self.study_finished.emit("", "error")

    def reject(self) -> None:
        if self.busy():
            self.stop()  # closes once the study has stopped
            return
        super().reject()
