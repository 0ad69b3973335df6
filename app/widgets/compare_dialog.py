"""Compare methods: the current experiment run with several methods and seeds on the same
data (``sskt_engine.study.run_study``, what `sskt compare` does), then a table of mean ± std
and the validation curves of every run, a mean line in a ± std band per method.

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
from app.widgets.study_plot import StudyCurvesPlot
from sskt_engine.config import ExperimentConfig
from sskt_engine.errors import UserInputError

TABLE_COLUMNS = ("Method", "Runs", "Best val acc", "Final val acc", "Time per run", "Note")


def _pct(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.2f}%" + (f" ± {100 * std:.2f}" if std is not None else "")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{secs} s"


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
        self._live_study_dir: Path | None = None  # known once the study's first run has started
        self._current_method = ""
        self._epochs = 0
        self._curves_cache: dict = {}  # runs' curves by metrics-file state: each run is read once
        self._stop = threading.Event()
        self.setWindowTitle(f"Compare methods on {config.name}")
        self.setObjectName("compareDialog")
        self.setMinimumWidth(600)
        self.resize(900, 760)
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
        # KD needs a teacher of the target's classes; the study can train one per seed.
        self.teacher = QtWidgets.QComboBox()
        self.teacher.addItem("from the experiment's sources", "")
        for arch in engine_catalog.architectures():
            self.teacher.addItem(f"train a {arch.key} per seed (supervised, same labels)", arch.key)
        self.teacher.setToolTip("KD's teacher must know the target's classes. A trained teacher is a row of its "
                                "own in the table; without one, KD is listed as skipped with the reason.")
        form.addRow("KD teacher", self.teacher)
        layout.addLayout(form)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Not started")
        layout.addWidget(self.progress)
        self.run_status = QtWidgets.QLabel()
        self.run_status.setObjectName("hint")
        layout.addWidget(self.run_status)
        self.table = QtWidgets.QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setObjectName("compareTable")
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.curves = StudyCurvesPlot()
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.curves)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        layout.addWidget(self.splitter, 1)
        self.folder_label = QtWidgets.QLabel()
        self.folder_label.setObjectName("hint")
        self.folder_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.folder_label)

        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.run_button = self.buttons.addButton("Run study", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.stop_button = self.buttons.addButton("Stop", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button = self.buttons.addButton("Open Study…", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setToolTip("Show the table and curves of an earlier study (also one made by sskt compare)")
        self.open_button.clicked.connect(self.open_study_dialog)
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
        self.open_button.setEnabled(not busy)
        self.seeds.setEnabled(not busy)
        self.teacher.setEnabled(not busy and "kd" in self.methods())
        for box in self.method_checks.values():
            box.setEnabled(not busy)

    def start(self) -> None:
        if self.busy() or not self.methods():
            return
        from sskt_engine.study import StudySpec, run_study

        seeds = tuple(self.config.train.seed + i for i in range(self.seeds.value()))
        teacher_arch = self.teacher.currentData() if "kd" in self.methods() else ""
        spec = StudySpec(config=self.config, methods=self.methods(), seeds=seeds, preset_path=self.preset_path,
                         teacher_arch=teacher_arch or "")
        self._stop = threading.Event()
        stop, root, trainer, emit = self._stop, self.runs_root, self.trainer_class, self._events.event.emit
        self.rows, self.study_dir = [], None
        self._live_study_dir = None
        self._current_method = ""
        self.table.setRowCount(0)
        self.curves.clear()
        self.run_status.clear()
        self.progress.setRange(0, len(seeds) * (len(spec.methods) + (1 if teacher_arch else 0)))
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
        from sskt_engine.events import EpochEnd, RunStarted
        from sskt_engine.study import StudyRunEnded, StudyRunStarted

        if isinstance(event, StudyRunStarted):
            self._current_method = event.method
            self.progress.setMaximum(event.total)
            self.progress.setValue(event.index - 1)
            self.progress.setFormat(f"Run {event.index}/{event.total}: {event.method}, seed {event.seed}")
        elif isinstance(event, RunStarted):
            # every study run lives in <study>/runs/<run>: the study folder is known from the first run
            self._live_study_dir = Path(event.run_dir).parent.parent
            self._epochs = event.epochs
            self.curves.start_live(self._current_method)
        elif isinstance(event, EpochEnd):
            acc = event.val.get("acc")
            if acc is not None:
                self.curves.add_live_point(event.epoch + 1, acc)
                self.run_status.setText(f"{self._current_method}: epoch {event.epoch + 1}/{self._epochs}, "
                                        f"val acc {100 * acc:.2f}%")
        elif isinstance(event, StudyRunEnded):
            self.progress.setValue(event.index)
            self.curves.end_live()
            if event.run_dir and self._live_study_dir is not None:
                self._show_curves(self._live_study_dir)

    def _fit_table(self) -> None:
        """Give the table the height of its rows (up to half the splitter); the plot takes the rest."""
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        wanted = rows + self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        total = sum(self.splitter.sizes()) or self.splitter.height()
        table = min(wanted, total // 2)
        self.splitter.setSizes([table, max(total - table, 0)])

    def _show_curves(self, study_dir: Path) -> None:
        from sskt_engine.study import method_curves

        try:
            self.curves.show_curves(method_curves(study_dir, cache=self._curves_cache))
        except (UserInputError, OSError) as exc:  # a study folder changed under us: curves are optional
            self.run_status.setText(f"Curves unavailable: {exc}")

    def show_study(self, study_dir: Path) -> str:
        """Fill the table and the curves from a study folder (this dialog's or `sskt compare`'s);
        returns the study's status. A folder that is not a readable study raises UserInputError."""
        from sskt_engine.study import load_study

        state = load_study(study_dir)
        self.study_dir = Path(study_dir)
        self.rows = list(state.get("rows") or [])
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            values = (row["method"], str(row["runs"]), _pct(row["best_mean"], row["best_std"]),
                      _pct(row["final_mean"], row["final_std"]), _duration(row.get("wall_mean_s")),
                      row.get("note") or row["status"])
            for c, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(text)
                if c == len(values) - 1:
                    item.setToolTip(text)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(len(TABLE_COLUMNS) - 1,
                                                           QtWidgets.QHeaderView.ResizeMode.Stretch)
        self._fit_table()
        status = str(state.get("status", ""))
        self.folder_label.setText(f"Tables (md, csv, tex) in {self.study_dir}")
        self.run_status.clear()
        self._show_curves(self.study_dir)
        return status

    def open_study_dialog(self) -> None:
        start = self.runs_root / "studies"
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a study folder",
                                                            str(start if start.is_dir() else self.runs_root))
        if folder:
            self.open_study(Path(folder))

    def open_study(self, folder: Path) -> bool:
        if self.busy():
            return False
        try:
            status = self.show_study(folder)
        except UserInputError as exc:
            show_error(self, "Cannot open the study", str(exc))
            return False
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"Study {status}: {Path(folder).name}")
        return True

    def _done(self, study_dir: Path) -> None:
        self._task = None
        status = self.show_study(Path(study_dir))
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"Study {status}")
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
