"""Compare methods: the current experiment run with several methods and seeds on the same
data (``sskt_engine.study.run_study``, what `sskt compare` does), then a table of mean ± std
and the validation curves of every run, a mean line in a ± std band per method.

The study runs in a worker thread (``app.worker``) and yields its events to the dialog; Stop
asks the study to stop after the current training step. The study folder (its state and every
run's curve) is read in worker threads too, after each run and at the end: the GUI thread only
draws what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from app import engine_catalog
from app.dialogs import show_error
from app.widgets.study_plot import StudyCurvesPlot
from app.worker import Worker, WorkerControl, WorkerError, start_worker
from sskt_engine.config import ExperimentConfig
from sskt_engine.errors import UserInputError
from sskt_engine.formatting import duration
from sskt_engine.metric_info import ACCURACY, MetricInfo

TABLE_COLUMNS = ("Method", "Runs", "Best val {}", "Final val {}", "Time per run", "Note")  # {}: the metric
SLOW_METHODS = ("maxl",)  # trains a second (label-generating) network beside the target: not ticked at first


def default_methods(names: list[str], config: ExperimentConfig) -> tuple[str, ...]:
    """The methods ticked when the dialog opens: those that can run with the experiment's
    sources and are not slow. KD is left to the person (it needs a teacher to be chosen), so a
    first study never lists a row as skipped for want of one."""
    from sskt_engine.study import DEFAULT_METHODS

    chosen = []
    for name in names:
        info = engine_catalog.entry(engine_catalog.methods(), name)
        needs = info.min_sources if info is not None else 0
        if name in DEFAULT_METHODS and name not in SLOW_METHODS and name != "kd" and len(config.sources) >= needs:
            chosen.append(name)
    return tuple(chosen) or tuple(n for n in names if n == "supervised")


def last_run_seconds(runs_root: Path, name: str) -> tuple[float, int] | None:
    """(wall time, epochs) of the newest finished run of the experiment ``name`` in the runs
    folder, for the time estimate; worker thread."""
    from sskt_engine.runs import FINISHED, RunFolder, list_runs

    try:
        infos = [i for i in list_runs(runs_root) if i.name == name and i.status == FINISHED]
    except OSError:
        return None
    for info in sorted(infos, key=lambda i: i.path.name, reverse=True):
        try:
            wall = RunFolder(info.path).summary().wall_time_s
        except Exception:  # noqa: BLE001 - an unreadable summary: try an older run
            continue
        if wall and info.epochs_completed:
            return float(wall), int(info.epochs_completed)
    return None


def time_estimate(runs: int, epochs: int, last: tuple[float, int] | None, slow: bool) -> str:
    """One line: how many runs, and how long they take judged by the last run of this experiment."""
    text = f"{runs} run{'s' if runs != 1 else ''} of {epochs} epoch{'s' if epochs != 1 else ''}"
    if last is None:
        text += ": each takes about as long as one Start of this experiment"
    else:
        wall, done = last
        text += f": about {duration(runs * wall * epochs / max(1, done))} (the last run of this experiment took " \
                f"{duration(wall)} for {done} epoch{'s' if done != 1 else ''})"
    if slow:
        text += "; MAXL runs take about twice as long"
    return text + "."


@dataclass(frozen=True)
class StudyView:
    """A study folder as the dialog shows it, read in a worker thread."""

    study_dir: Path
    state: dict[str, Any]
    curves: dict[str, dict[str, Any]] | None
    curves_problem: str = ""  # why the curves are missing (they are optional)


def read_curves(study_dir: Path, cache: dict) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """(the study's curves per method, or None and why); worker thread."""
    from sskt_engine.study import method_curves

    try:
        return method_curves(study_dir, cache=cache), ""
    except (UserInputError, OSError) as exc:  # a study folder changed under us: curves are optional
        return None, str(exc)


def read_study(study_dir: Path, cache: dict) -> StudyView:
    """Table state and curves of a study folder (worker thread); a folder that is not a
    readable study raises UserInputError."""
    from sskt_engine.study import load_study

    state = load_study(study_dir)
    curves, problem = read_curves(Path(study_dir), cache)
    return StudyView(Path(study_dir), state, curves, problem)


def run_study_and_read(spec: Any, runs_root: Path, trainer_class: Any, cache: dict,
                       control: WorkerControl, parallel: int = 1) -> StudyView:
    """The study's worker: every run of the study, then its folder read back for the table.
    ``parallel`` > 1: that many runs at once in child processes (``sskt_engine.study_jobs``)."""
    from sskt_engine.study import run_study
    from sskt_engine.study_jobs import ProcessRunner

    runner = ProcessRunner(parallel, spec.config.train.device) if parallel > 1 else None
    study_dir = run_study(spec, runs_root, on_event=control.yield_value, stop_event=control.quit_event,
                          trainer_class=trainer_class, runner=runner)
    return read_study(Path(study_dir), cache)


class CompareDialog(QtWidgets.QDialog):
    study_finished = QtCore.Signal(str, str)  # study folder, status
    study_opened = QtCore.Signal(str, str)  # an earlier study folder shown, its status ("", "error": unreadable)

    def __init__(self, config: ExperimentConfig, runs_root: Path, parent: QtWidgets.QWidget | None = None,
                 preset_path: str = "", trainer_class: Any = None):
        super().__init__(parent)
        self.config = config
        self.runs_root = Path(runs_root)
        self.preset_path = preset_path
        self.trainer_class = trainer_class
        self.study_dir: Path | None = None
        self.rows: list[dict[str, Any]] = []
        self._worker: Worker | None = None  # the study
        self._reader: Worker | None = None  # a study folder or its curves being read
        self._live_study_dir: Path | None = None  # known once the study's first run has started
        self._current_method = ""
        self._epochs = 0
        self._curves_cache: dict = {}  # runs' curves by metrics-file state: each run is read once
        self.setWindowTitle(f"Compare methods on {config.name}")
        self.setObjectName("compareDialog")
        self.setMinimumWidth(560)
        self._last_run: tuple[float, int] | None = None  # for the time estimate
        self._estimator: Worker | None = None
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

        names = [e.name for e in engine_catalog.methods()] or list(DEFAULT_METHODS)
        self.method_checks: dict[str, QtWidgets.QCheckBox] = {}
        ticked = default_methods(names, config)
        for name in names:
            box = QtWidgets.QCheckBox(name)
            box.setChecked(name in ticked)
            if name in SLOW_METHODS:
                box.setToolTip("Slow: trains a second network beside the target")
            elif name == "kd":
                box.setToolTip("Needs a teacher of the target's classes: tick it, then choose one under KD teacher")
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
        self.seeds.valueChanged.connect(self._update_estimate)
        form.addRow("Seeds", self.seeds)
        self.parallel = QtWidgets.QSpinBox()
        self.parallel.setObjectName("compareParallel")
        self.parallel.setRange(1, 16)
        self.parallel.setValue(1)
        self.parallel.setToolTip("Runs trained at the same time, each in its own process: one GPU each while there "
                                 "are GPUs, else the CPU cores shared out. With more than one, a run's curve "
                                 "appears when it ends (sskt compare --parallel N)")
        form.addRow("Runs at once", self.parallel)
        # Rows other than plain methods (issue 19): a source ablation, or a grid of settings
        self.rows_mode = QtWidgets.QComboBox()
        self.rows_mode.setObjectName("compareRowsMode")
        self.rows_mode.addItem("one row per method ticked above", "methods")
        self.rows_mode.addItem("ablate sources: each alone, all but one, all, and supervised", "ablate")
        self.rows_mode.addItem("grid: every combination of the settings below (methods ticked above)", "grid")
        self.rows_mode.currentIndexChanged.connect(self._update_buttons)
        form.addRow("Rows", self.rows_mode)
        self.grid_edit = QtWidgets.QLineEdit()
        self.grid_edit.setObjectName("compareGrid")
        self.grid_edit.setPlaceholderText("method.alpha=0.1,0.5,1; method.temperature=1,2,3")
        self.grid_edit.setToolTip("KEY=V1,V2,... separated by ';'. The best setting is chosen on a validation split "
                                  "held out of the training images (data.val_split, 0.1 unless set), never on the "
                                  "test split; the study's table.md says which split chose it")
        self.grid_edit.textChanged.connect(self._update_buttons)
        form.addRow("Grid", self.grid_edit)
        # KD needs a teacher of the target's classes; the study can train one per seed.
        self.teacher = QtWidgets.QComboBox()
        self.teacher.addItem("from the experiment's sources", "")
        for arch in engine_catalog.architectures():
            self.teacher.addItem(f"train a {arch.name} per seed (supervised, same labels)", arch.name)
        self.teacher.setToolTip("KD's teacher must know the target's classes. A trained teacher is a row of its "
                                "own in the table; without one, KD is listed as skipped with the reason.")
        self.teacher.currentIndexChanged.connect(self._update_estimate)  # a teacher is one more run per seed
        form.addRow("KD teacher", self.teacher)
        self.estimate = QtWidgets.QLabel()
        self.estimate.setObjectName("hint")
        self.estimate.setWordWrap(True)
        form.addRow("Time", self.estimate)
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
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.curves = StudyCurvesPlot()
        self._set_metric(ACCURACY)  # until the study's runs name theirs
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
        self._update_buttons()
        self._fit_screen()
        name, root = config.name, self.runs_root
        self._estimator = start_worker(lambda: last_run_seconds(root, name), returned=self._last_run_read,
                                       name="sskt-compare-estimate")

    def _fit_screen(self) -> None:
        """900 x 760 where the screen has room; at most 92 % of a smaller screen (1280 x 720)."""
        screen = (self.parentWidget().screen() if self.parentWidget() else self.screen()).availableGeometry()
        self.resize(min(900, int(screen.width() * 0.92)), min(760, int(screen.height() * 0.92)))

    def _last_run_read(self, last: tuple[float, int] | None) -> None:
        self._estimator = None
        self._last_run = last
        self._update_estimate()

    def _grid_items(self) -> list[str]:
        return [item.strip() for item in self.grid_edit.text().split(";") if item.strip()]

    def _row_count(self) -> int:
        """Rows per seed the chosen mode trains (an estimate: the engine builds the real list)."""
        mode = self.rows_mode.currentData() if hasattr(self, "rows_mode") else "methods"
        if mode == "ablate":
            n = len(self.config.sources)
            return 1 + (n if n > 1 else 0) + (n if n > 2 else 0) + 1
        if mode == "grid":
            combos = 1
            for item in self._grid_items():
                combos *= max(1, len([v for v in item.partition("=")[2].split(",") if v.strip()]))
            others = [m for m in self.methods() if m != "supervised"]
            return combos * len(others) + (1 if "supervised" in self.methods() else 0)
        return len(self.methods())

    def _update_estimate(self, *_args) -> None:
        methods = self.methods()
        teacher = 1 if "kd" in methods and self.teacher.currentData() else 0
        runs = self.seeds.value() * (self._row_count() + teacher)
        self.estimate.setText(time_estimate(runs, self.config.train.epochs, self._last_run,
                                            any(m in SLOW_METHODS for m in methods)))

    def methods(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.method_checks.items() if box.isChecked())

    def busy(self) -> bool:
        return self._worker is not None

    def _update_buttons(self, *_args) -> None:
        busy = self.busy()
        mode = self.rows_mode.currentData()
        ready = bool(self.config.sources) if mode == "ablate" else bool(self.methods()) and (
            mode != "grid" or bool(self._grid_items()))
        self.run_button.setEnabled(not busy and ready)
        self.rows_mode.setEnabled(not busy)
        self.grid_edit.setEnabled(not busy and mode == "grid")
        self.stop_button.setEnabled(busy and not self._worker.quit_requested())
        self.open_button.setEnabled(not busy)
        self.seeds.setEnabled(not busy)
        self.teacher.setEnabled(not busy and "kd" in self.methods())
        for box in self.method_checks.values():
            box.setEnabled(not busy)
        if hasattr(self, "estimate"):
            self._update_estimate()

    def start(self) -> None:
        mode = self.rows_mode.currentData()
        if self.busy() or (mode != "ablate" and not self.methods()):
            return
        from sskt_engine.errors import UserInputError
        from sskt_engine.study import StudySpec
        from sskt_engine.variant_specs import variant_study_spec

        seeds = tuple(self.config.train.seed + i for i in range(self.seeds.value()))
        teacher_arch = self.teacher.currentData() if "kd" in self.methods() and mode == "methods" else ""
        if mode == "methods":
            spec = StudySpec(config=self.config, methods=self.methods(), seeds=seeds, preset_path=self.preset_path,
                             teacher_arch=teacher_arch or "")
        else:
            try:  # checks every row's preset (a grid key the method lacks) before anything runs
                spec, _notes = variant_study_spec(self.config, ablate=mode == "ablate",
                                                  grid_items=self._grid_items() if mode == "grid" else (),
                                                  methods=self.methods(), seeds=len(seeds),
                                                  preset_path=self.preset_path)
            except UserInputError as exc:
                self.run_status.setText(str(exc))
                return
        root, trainer, cache = self.runs_root, self.trainer_class, self._curves_cache
        self.rows, self.study_dir = [], None
        self._live_study_dir = None
        self._current_method = ""
        self.table.setRowCount(0)
        self.curves.clear()
        self.run_status.clear()
        self.progress.setRange(0, len(seeds) * (len(spec.rows()) + (1 if teacher_arch else 0)))
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        parallel = self.parallel.value()
        self._worker = start_worker(lambda control: run_study_and_read(spec, root, trainer, cache, control,
                                                                       parallel),
                                    takes_control=True, yielded=self._on_event, returned=self._done,
                                    errored=self._failed, name="sskt-study")
        self._update_buttons()

    def stop(self) -> None:
        if self.busy():
            self._worker.quit()
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
            self._set_metric(event.headline)
            self.curves.start_live(self._current_method)
        elif isinstance(event, EpochEnd):
            metric = self.curves.value_metric
            value = event.val.get(metric.key)
            if value is not None:
                self.curves.add_live_point(event.epoch + 1, value)
                self.run_status.setText(f"{self._current_method}: epoch {event.epoch + 1}/{self._epochs}, "
                                        f"val {metric.short} {metric.format(value)}")
        elif isinstance(event, StudyRunEnded):
            self.progress.setValue(event.index)
            self.curves.end_live()
            if event.run_dir and self._live_study_dir is not None:
                self._show_curves(self._live_study_dir)

    def _set_metric(self, metric: MetricInfo) -> None:
        """Name the study's headline metric (its runs' task says which) in the table and the plot."""
        self.table.setHorizontalHeaderLabels([c.format(metric.short) for c in TABLE_COLUMNS])
        self.curves.set_metric(metric)

    def _fit_table(self) -> None:
        """Give the table the height of its rows (up to half the splitter); the plot takes the rest."""
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        wanted = rows + self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        total = sum(self.splitter.sizes()) or self.splitter.height()
        table = min(wanted, total // 2)
        self.splitter.setSizes([table, max(total - table, 0)])

    def _show_curves(self, study_dir: Path) -> None:
        """Read the study's curves in a worker and draw them when they arrive (after each run)."""
        if self._reader is not None:
            self._reader.cancel()  # a later state of the same folder replaces it
        cache = self._curves_cache
        self._reader = start_worker(lambda: read_curves(study_dir, cache), returned=self._curves_read,
                                    name="sskt-study-curves")

    def _curves_read(self, result: tuple[dict[str, dict[str, Any]] | None, str]) -> None:
        curves, problem = result
        if curves is not None:
            self.curves.show_curves(curves)
        else:
            self.run_status.setText(f"Curves unavailable: {problem}")

    def show_study(self, view: StudyView) -> str:
        """Fill the table and the curves from a study folder read by ``read_study`` (this
        dialog's study or `sskt compare`'s); returns the study's status."""
        state = view.state
        self.study_dir = view.study_dir
        self.rows = list(state.get("rows") or [])
        from sskt_engine.study import study_metric

        metric = study_metric(state)
        self._set_metric(metric)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            values = (row["method"], str(row["runs"]), metric.format_mean_std(row["best_mean"], row["best_std"]),
                      metric.format_mean_std(row["final_mean"], row["final_std"]), duration(row.get("wall_mean_s")),
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
        from sskt_engine.study_variants import variant_summary_line

        self.run_status.setText(variant_summary_line(state))  # a grid's choice, an ablation's gains
        if self._reader is not None:
            self._reader.cancel()  # the curves of an earlier state: these are newer
        if view.curves is not None:
            self.curves.show_curves(view.curves)
        else:
            self.run_status.setText(f"Curves unavailable: {view.curves_problem}")
        return status

    def open_study_dialog(self) -> None:
        start = self.runs_root / "studies"
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a study folder",
                                                            str(start if start.is_dir() else self.runs_root))
        if folder:
            self.open_study(Path(folder))

    def open_study(self, folder: Path) -> bool:
        """Read a study folder in a worker and show it once read (then ``study_opened``); an
        unreadable folder becomes an error message. False when a study is running."""
        if self.busy():
            return False
        if self._reader is not None:
            self._reader.cancel()
        self.open_button.setEnabled(False)
        cache = self._curves_cache
        self._reader = start_worker(lambda: read_study(Path(folder), cache), returned=self._study_read,
                                    errored=self._study_unreadable, finished=self._update_buttons,
                                    name="sskt-read-study")
        return True

    def _study_read(self, view: StudyView) -> None:
        status = self.show_study(view)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"Study {status}: {view.study_dir.name}")
        self.study_opened.emit(str(view.study_dir), status)

    def _study_unreadable(self, error: WorkerError) -> None:
        if isinstance(error.exception, UserInputError):
            show_error(self, "Cannot open the study", str(error.exception))
        else:
            show_error(self, "Cannot open the study", f"The study could not be read: {error.sentence}", error.detail)
        self.study_opened.emit("", "error")

    def _done(self, view: StudyView) -> None:
        self._worker = None
        status = self.show_study(view)
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"Study {status}")
        self._update_buttons()
        self.study_finished.emit(str(self.study_dir), status)

    def _failed(self, error: WorkerError) -> None:
        self._worker = None
        self.progress.setFormat("Did not run")
        self._update_buttons()
        if isinstance(error.exception, UserInputError):
            show_error(self, "Cannot compare", str(error.exception))
        else:
            show_error(self, "Compare failed", f"The study stopped because of an unexpected error: {error.sentence}",
                       error.detail)
        self.study_finished.emit("", "error")

    def reject(self) -> None:
        if self.busy():
            self.stop()  # closes once the study has stopped
            return
        super().reject()
