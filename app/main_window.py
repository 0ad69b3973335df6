"""The main window: setup on the left, run controls and live plots in the middle, runs on the right."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app import engine_catalog
from app.dialogs import ask_save_changes, ask_stop_run, show_error
from app.edit_history import EditHistory
from app.source_file_check import SourceFileChecker
from app.start_check import StartCheck
from app.widgets.getting_started import GettingStartedDialog
from app.widgets.preferences_dialog import PreferencesDialog
from app.preset_document import PresetDocument
from app.resources import app_icon
from app.process_run_controller import ProcessRunController
from app.run_controller import RunController, RunHistory
from app.run_history import RunCurves, load_run_curves
from app.settings import AppSettings
from app.widgets.compare_dialog import CompareDialog
from app.widgets.export_dialog import ExportDialog
from app.widgets.log_view import LogView
from app.widgets.plots import LivePlots
from app.widgets.results_view import ResultsView
from app.widgets.run_bar import RunBar
from app.widgets.runs_panel import RESUMABLE, RunsPanel
from app.widgets.setup_panel import SetupPanel
from app.worker import Worker, WorkerError, start_worker, wait_for_all
from sskt_engine.errors import PresetError
from sskt_engine.events import EpochEnd, Event, RunFinished, RunStarted
from sskt_engine.metric_info import ACCURACY
from sskt_engine.resources import builtin_presets, demo_preset, is_builtin, paper_presets
from sskt_engine.runs import RunFolder, default_runs_root

APP_NAME = "SSKT Studio"
PRESET_FILTER = "SSKT presets (*.yaml *.yml);;All files (*)"


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: AppSettings | None = None, *, trainer_class: Any = None,
                 preset: Path | None = None, runs_root: Path | None = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self.runs_root = Path(runs_root or self.settings.runs_root or default_runs_root())
        self.document = PresetDocument(self)
        self.edit_history = EditHistory(self.document, self)
        self.getting_started: GettingStartedDialog | None = None
        # The controller of the current (or last) run: in-process, or `sskt train --nproc N`.
        self.local_controller = RunController(trainer_class, self)
        self.process_controller = ProcessRunController(parent=self)
        self.controller: RunController | ProcessRunController = self.local_controller
        self._closing = False
        self._run_metric = ACCURACY  # the live run's headline metric, as its RunStarted names it
        self._run_selects_best = True  # RunStarted.selection "none": no best epoch to show
        self._last_run_dir: Path | None = None
        self.export_dialog: ExportDialog | None = None
        self.compare_dialog: CompareDialog | None = None
        self._overlay_worker: Worker | None = None  # reads the curves of the runs selected in the panel

        self._build_actions()
        self._build_widgets()
        self._build_menus()
        self._connect()
        self._restore_geometry()
        self._load_initial(preset)
        self._update_title()
        self._update_actions()
        self._update_undo()
        self.setAcceptDrops(True)  # a preset dropped on the window opens; a model file becomes a source

    # ----------------------------------------------------------------------------- building
    def _action(self, text: str, slot, shortcuts: list | None = None, tip: str = "",
                icon: QtWidgets.QStyle.StandardPixmap | None = None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcuts:
            action.setShortcuts([QtGui.QKeySequence(s) for s in shortcuts])
        if tip:
            keys = ", ".join(s.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
            action.setToolTip(f"{tip} ({keys})" if keys else tip)
            action.setStatusTip(tip)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever the focus is in the window
        return action

    def _build_actions(self) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        keys = QtGui.QKeySequence.StandardKey
        self.new_action = self._action("&New", self.new_preset, [keys.New], "Start from the default settings")
        self.open_action = self._action("&Open…", self.open_preset_dialog, [keys.Open], "Open a preset file")
        self.save_action = self._action("&Save", self.save_preset, [keys.Save], "Save the preset")
        self.save_as_action = self._action("Save &As…", self.save_preset_as, [keys.SaveAs],
                                           "Save the preset to a new file")
        self.quit_action = self._action("&Quit", self.close, [keys.Quit], "Quit SSKT Studio")
        self.start_action = self._action("&Start", self.start_run, ["Ctrl+R", "F5"], "Train with these settings",
                                         sp.SP_MediaPlay)
        # not a bare Esc: it would stop a run from anywhere, even while typing in a text field
        self.stop_action = self._action("S&top", self.stop_run, ["Ctrl+."],
                                        "Stop the run after the current step", sp.SP_MediaStop)
        self.resume_action = self._action("&Resume", self.resume_run, ["Ctrl+Shift+R"],
                                          "Continue a stopped or failed run in its own folder", sp.SP_MediaSeekForward)
        # form-level undo: a focused text field keeps Ctrl+Z for its own text (Qt gives it the key first)
        self.undo_action = self._action("&Undo", lambda: self.edit_history.undo(), [keys.Undo],
                                        "Undo the last change to the settings")
        self.redo_action = self._action("&Redo", lambda: self.edit_history.redo(), [keys.Redo],
                                        "Redo the change undone last")
        self.preferences_action = self._action("&Preferences…", self.open_preferences, [keys.Preferences],
                                               "Runs folder, device, theme and training threads")
        self.preferences_action.setMenuRole(QtGui.QAction.MenuRole.PreferencesRole)

    def _build_widgets(self) -> None:
        self.setDockOptions(QtWidgets.QMainWindow.DockOption.AnimatedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks)
        self.setup_panel = SetupPanel(self.document, lambda: self.runs_root)
        self.setup_dock = QtWidgets.QDockWidget("Experiment", self)
        self.setup_dock.setObjectName("setupDock")
        self.setup_dock.setWidget(self.setup_panel)
        self.setup_dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                                    | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.setup_dock.setMinimumWidth(330)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, self.setup_dock)

        self.runs_panel = RunsPanel(self.runs_root)
        self.runs_dock = QtWidgets.QDockWidget("Runs", self)
        self.runs_dock.setObjectName("runsDock")
        self.runs_dock.setWidget(self.runs_panel)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.runs_dock)

        buttons = []
        for action, name in ((self.start_action, "startButton"), (self.stop_action, "stopButton"),
                             (self.resume_action, "resumeButton")):
            button = QtWidgets.QToolButton()
            button.setObjectName(name)
            button.setDefaultAction(action)
            button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setIconSize(QtCore.QSize(18, 18))
            buttons.append(button)
        self.start_button, self.stop_button, self.resume_button = buttons
        self.run_bar = RunBar(*buttons)
        self.plots = LivePlots()
        self.results = ResultsView()
        # An explicit minimum: the layout of the results (a long title, a wide caption) must never
        # set the window's minimum width; on a 1280 px screen it would widen the window off-screen.
        self.results.setMinimumWidth(360)
        self.log = LogView()
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.plots, "Live curves")
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.log, "Log")
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.run_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.state_label = QtWidgets.QLabel("Idle")
        self.state_label.setObjectName("stateLabel")
        self.statusBar().addPermanentWidget(self.state_label)
        for problem in engine_catalog.problems:
            self.log.add(problem, "warning")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.builtin_menu = file_menu.addMenu("&Built-in Presets")
        for path in builtin_presets():
            action = self.builtin_menu.addAction(path.stem.replace("_", " ").replace("-", " "))
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_preset(p))
        paper = paper_presets()
        if paper:  # the paper's table rows, one per row and method: a submenu per dataset and network
            self.paper_menu = self.builtin_menu.addMenu("&Paper Replication")
            rows: dict[str, QtWidgets.QMenu] = {}
            for path in paper:
                row, _, method = path.stem.rpartition("-")
                if row not in rows:
                    rows[row] = self.paper_menu.addMenu(row)
                action = rows[row].addAction(method)
                action.setToolTip(str(path))
                action.triggered.connect(lambda _=False, p=path: self.open_preset(p))
        self.builtin_menu.setEnabled(bool(builtin_presets()) or bool(paper))
        self._fill_recent()
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.save_as_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.preferences_action)

        run_menu = bar.addMenu("&Run")
        for action in (self.start_action, self.stop_action, self.resume_action):
            run_menu.addAction(action)
        run_menu.addSeparator()
        self.compare_action = run_menu.addAction("&Compare Methods…", self.open_compare)
        self.compare_action.setShortcut(QtGui.QKeySequence("Ctrl+Shift+C"))
        self.compare_action.setToolTip("Run the current experiment with several methods and seeds on the same "
                                       "data and tabulate mean ± std")

        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.setup_dock.toggleViewAction())
        view_menu.addAction(self.runs_dock.toggleViewAction())
        view_menu.addSeparator()
        for index in range(self.tabs.count()):
            action = view_menu.addAction(self.tabs.tabText(index))
            action.setShortcut(QtGui.QKeySequence(f"Ctrl+{index + 1}"))
            action.triggered.connect(lambda _=False, i=index: self.tabs.setCurrentIndex(i))

        help_menu = bar.addMenu("&Help")
        self.getting_started_action = help_menu.addAction("&Getting Started", self.show_getting_started)
        self.getting_started_action.setShortcut(QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.HelpContents))
        help_menu.addAction("&User Models Folder…", self._user_models_notice)
        help_menu.addAction("&About SSKT Studio", self._about)

    def _connect(self) -> None:
        self.document.state_changed.connect(self._update_title)
        self.document.state_changed.connect(self._update_actions)
        self.document.changed.connect(self._update_actions)
        self.document.changed.connect(self._show_experiment_span)
        self.document.changed.connect(self._clear_stale_error)
        self.edit_history.changed.connect(self._update_undo)
        # source model files are read in the background as they are chosen; problems marked in the form
        self.source_checker = SourceFileChecker(self.document, parent=self)
        self.source_checker.checked.connect(self._show_source_problems)
        self.document.changed.connect(self._show_source_problems)
        self.document.replaced.connect(self._clear_stale_error)
        self.document.state_changed.connect(self._show_experiment_span)
        # Start first reads what the run would read (engine's check_experiment), in the background
        self.start_check = StartCheck(parent=self)
        self.start_check.refused.connect(self._start_refused)
        self.start_check.busy_changed.connect(lambda _busy: self._update_actions())
        for controller in (self.local_controller, self.process_controller):
            controller.event.connect(self._on_event)
            controller.failed.connect(self._on_failed)
            controller.notice.connect(self._on_notice)
            controller.finished.connect(self._on_finished)
            controller.busy_changed.connect(lambda _busy: self._update_actions())
        self.local_controller.history.connect(self._on_history)
        self.run_bar.problem_clicked.connect(self.setup_panel.focus_field)
        self.runs_panel.selection_changed.connect(self._runs_selected)
        self.runs_panel.results_requested.connect(self.show_results)
        self.runs_panel.open_preset_requested.connect(self.open_run_preset)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.export_requested.connect(self.export_run)
        self.results.export_requested.connect(self.export_run)
        self.runs_panel.runs_root_changed.connect(self._runs_root_changed)
        # a renamed run's overlay legend follows its new name
        self.runs_panel.labels_changed.connect(
            lambda path: path in self.runs_panel.selected_paths() and self._runs_selected(self.runs_panel.selected_paths()))

    # ----------------------------------------------------------------------------- state
    def _restore_geometry(self) -> None:
        geometry, state = self.settings.geometry, self.settings.window_state
        if geometry:
            self.restoreGeometry(QtCore.QByteArray.fromBase64(geometry.encode("ascii")))
        else:
            screen = self.screen().availableGeometry()
            self.resize(min(1480, int(screen.width() * 0.92)), min(920, int(screen.height() * 0.9)))
        if state:
            self.restoreState(QtCore.QByteArray.fromBase64(state.encode("ascii")))
        else:
            self.resizeDocks([self.setup_dock, self.runs_dock], [410, 340], QtCore.Qt.Orientation.Horizontal)

    def _load_initial(self, preset: Path | None) -> None:
        candidates = [preset] if preset else []
        if not preset and self.settings.last_preset:
            candidates.append(self.settings.last_preset)
        candidates.append(demo_preset())
        for path in candidates:
            if path is None or not Path(path).is_file():
                continue
            try:
                self.document.open(Path(path), read_only=is_builtin(Path(path)))
                return
            except PresetError as exc:
                self.log.add(f"Could not open {path}: {exc}", "warning")
        self.document.new()

    def _update_title(self) -> None:
        name = self.document.title
        if self.document.read_only:
            name += " (built-in)"
        self.setWindowTitle(f"{name}[*] — {APP_NAME}")
        self.setWindowModified(self.document.is_dirty())

    def start_problem(self) -> tuple[str, str, int]:
        """Why Start is disabled: (sentence, field path, count of further problems)."""
        if self.controller.is_running():
            return "", "", 0
        if self.controller.trainer_class() is None:
            return "the training engine is not available in this installation", "", 0
        if not self.document.is_valid():
            first = self.document.errors[0]
            return first.reason, first.path, len(self.document.errors) - 1
        return "", "", 0

    def _show_experiment_span(self, *_args: Any) -> None:
        """Idle plots span the experiment's epochs: its run then starts on axes already drawn."""
        config = self.document.config
        if config is not None and not self.controller.is_running():
            self.plots.set_span(config.train.epochs)

    def _update_undo(self) -> None:
        self.undo_action.setEnabled(self.edit_history.can_undo())
        self.redo_action.setEnabled(self.edit_history.can_redo())

    def _update_actions(self) -> None:
        running = self.controller.is_running()
        reason, path, more = self.start_problem()
        checking = self.start_check.busy()
        self.start_action.setEnabled(not running and not reason and not checking)
        self.run_bar.set_problem(reason, path, more, self._field_title(path))
        self.stop_action.setEnabled(checking or (running and not self.controller.stop_requested()))
        self.resume_action.setEnabled(not running and self._resume_target() is not None
                                      and self.local_controller.trainer_class() is not None)
        self.run_bar.processes.setEnabled(not running)
        self.state_label.setText("Stopping…" if running and self.controller.stop_requested() else
                                 "Training" if running else "Idle")

    def _field_title(self, path: str) -> str:
        """A preset path as the form names it: "Learning rate (Training)", "Source 2: Path"."""
        from app.widgets.field_editors import field_label
        from sskt_engine.key_paths import parse_key_path

        try:
            parts = parse_key_path(path) if path else ()
        except Exception:  # noqa: BLE001 - a path the form does not know: shown as it is
            return ""
        if not parts:
            return ""
        if parts[0] == "sources" and len(parts) >= 2 and isinstance(parts[1], int):
            field = field_label({"name": str(parts[2])}) if len(parts) >= 3 else ""
            return f"Source {parts[1] + 1}" + (f": {field}" if field else "")
        if parts[0] == "sources":
            return "Source models"
        editor = None if parts[0] == "sources" else self.setup_panel.editor_for(path)
        desc = getattr(editor, "desc", None)
        if not desc:
            return ""
        section = self.setup_panel.sections.get(str(parts[0])) if len(parts) > 1 else None
        title = section.header.text() if section is not None else ""
        return field_label(desc) + (f" ({title})" if title else "")

    def _resume_target(self) -> Path | None:
        paths = self.runs_panel.selected_paths()
        if len(paths) == 1:
            info = self.runs_panel.info(paths[0])
            return paths[0] if info and info.status in RESUMABLE else None
        if self._last_run_dir is not None and RunFolder(self._last_run_dir).status() in RESUMABLE:
            return self._last_run_dir
        return None

    # ----------------------------------------------------------------------------- presets
    def maybe_save(self) -> bool:
        """False when the person cancels; saves or discards otherwise."""
        if not self.document.is_dirty():
            return True
        answer = ask_save_changes(self, self.document.title)
        buttons = QtWidgets.QMessageBox.StandardButton
        if answer == buttons.Save:
            return self.save_preset()
        return answer == buttons.Discard

    def new_preset(self) -> None:
        if self.maybe_save():
            self.document.new()
            if self.settings.default_device != "auto":  # Preferences: the device of new experiments
                self.document.set(("train", "device"), self.settings.default_device)
                self.document._saved = copy.deepcopy(self.document.raw)  # still a fresh, unmodified preset
                self.document.state_changed.emit()
            self.statusBar().showMessage("New preset with the default settings", 4000)

    def open_preset_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = str(self.document.path.parent) if self.document.path else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open preset", start, PRESET_FILTER)
        if path:
            self.open_preset(Path(path), ask=False)

    def open_preset(self, path: Path, ask: bool = True) -> bool:
        if ask and not self.maybe_save():
            return False
        try:
            self.document.open(Path(path), read_only=is_builtin(Path(path)))
        except PresetError as exc:
            show_error(self, "Cannot open preset", str(exc))
            return False
        if not is_builtin(Path(path)):
            self.settings.add_recent(Path(path))
        self.settings.last_preset = Path(path).resolve()
        self.settings.save()
        self.statusBar().showMessage(f"Opened {path}", 4000)
        return True

    def save_preset(self) -> bool:
        if self.document.path is None or self.document.read_only:
            return self.save_preset_as()
        return self._save_to(self.document.path)

    def save_preset_as(self) -> bool:
        if not self._check_savable():
            return False
        folder = self.document.path.parent if self.document.path else Path.home()
        suggested = folder / f"{self.document.get(('name',)) or 'experiment'}.yaml"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save preset", str(suggested), PRESET_FILTER)
        if not path:
            return False
        path = Path(path)
        if path.suffix.lower() not in (".yaml", ".yml"):
            path = path.with_suffix(path.suffix + ".yaml") if path.suffix else path.with_suffix(".yaml")
        return self._save_to(path)

    def _check_savable(self) -> bool:
        if self.document.is_valid():
            return True
        first = self.document.errors[0]
        show_error(self, "Cannot save preset", f"Fix the marked fields before saving; {first.path or 'the preset'}: "
                   f"{first.reason}.")
        self.setup_panel.focus_field(first.path)
        return False

    def _save_to(self, path: Path) -> bool:
        if not self._check_savable():
            return False
        try:
            self.document.save(path)
        except OSError as exc:
            show_error(self, "Cannot save preset", f"{path} could not be written: {exc.strerror or exc}.")
            return False
        self.setup_panel.load_from_document()
        self.settings.add_recent(path)
        self.settings.last_preset = path.resolve()
        self.settings.save()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.settings.recent_presets if p.is_file()]
        for path in recent:
            action = self.recent_menu.addAction(path.name)
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_preset(p))
        if not recent:
            self.recent_menu.addAction("No recent presets").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self.settings.save()

    def open_run_preset(self, run_dir: Path) -> None:
        if not self.maybe_save():
            return
        try:
            cfg = RunFolder(run_dir).config()
        except PresetError as exc:
            show_error(self, "Cannot open the run's preset", str(exc))
            return
        self.document.adopt(cfg, f"preset of {Path(run_dir).name}")
        self.statusBar().showMessage(f"Loaded the settings of {Path(run_dir).name}; Save As to keep them", 6000)

    # ----------------------------------------------------------------------------- runs
    def start_run(self) -> None:
        """Check the preset's files and models (in the background), then start it as it was at the press."""
        if not self.start_action.isEnabled() or self.document.config is None or self.start_check.busy():
            return
        config, nproc = self.document.config, self.run_bar.processes.value()
        self.run_bar.set_preparing("Checking…")
        self.statusBar().showMessage("Checking the dataset and the model files before the run…")
        self.start_check.check(config, lambda: self._launch_run(config, nproc))
        self._update_actions()

    def _start_refused(self, sentence: str, problems: list) -> None:
        """The check found what the run would fail on: one sentence, and no run started."""
        sentence = self._in_form_words(sentence)
        self.run_bar.set_idle_if_preparing("Did not start")
        for problem in problems:
            self.log.add(problem, "error")
        self.statusBar().showMessage(sentence, 15000)
        self._error_shown = sentence
        if not self._closing:
            show_error(self, "Cannot start training", sentence[:1].upper() + sentence[1:])

    def _in_form_words(self, sentence: str) -> str:
        """The engine opens a problem with its preset path ("sources[0] (x.pt): ...", "target.path: ...");
        the window says it as the form names the field ("Source 1 (x.pt): ...", "Path (Target network): ...")."""
        match = re.match(r"(sources\[\d+\](?:\.\w+)?|[a-z_]+\.[a-z_]+)(?=[ :])", sentence)
        title = self._field_title(match.group(1)) if match else ""
        return title + sentence[match.end():] if title else sentence

    def _launch_run(self, config: Any, nproc: int) -> None:
        if self.controller.is_running() or self._closing:
            return
        if nproc > 1:
            self.process_controller.nproc = nproc
            self.controller = self.process_controller
        else:
            self.controller = self.local_controller
        self.log.add(f"Starting {config.name}" + (f" in {nproc} processes…" if nproc > 1 else "…"))
        if self.controller.start(config, self.runs_root):
            self.run_bar.set_preparing()
            self.tabs.setCurrentWidget(self.plots)
            self.statusBar().showMessage("Preparing data and models…")
        self._update_actions()

    def stop_run(self) -> None:
        if self.start_check.busy():  # still checking: nothing has started, so nothing will
            self.start_check.cancel()
            self.run_bar.set_idle_if_preparing("Did not start")
            self.statusBar().showMessage("Start cancelled", 5000)
            return
        if self.controller.is_running():
            self.controller.stop()
            self.statusBar().showMessage("Stopping after the current step…")
            self._update_actions()

    def resume_run(self, run_dir: Path | None = None) -> None:
        target = Path(run_dir) if isinstance(run_dir, (str, Path)) else self._resume_target()
        if target is None or self.controller.is_running():
            return
        self.controller = self.local_controller
        self.log.add(f"Resuming {target.name}…")
        if self.controller.resume(target, self.runs_root):
            self.run_bar.set_preparing()
            self.tabs.setCurrentWidget(self.plots)
            self.statusBar().showMessage(f"Resuming {target.name}…")
        self._update_actions()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run_metric = event.headline
            self._run_selects_best = event.selects_best
            self._last_run_dir = Path(event.run_dir)
            if event.start_epoch > 0:
                self.plots.clear()  # the earlier epochs follow as the run's history (read in its thread)
            self.statusBar().showMessage(f"Training {event.name} on {event.device}")
            self.runs_panel.live_run = Path(event.run_dir)
            self.runs_panel.refresh()
        self.plots.handle_event(event)
        self.run_bar.handle_event(event)
        self.log.handle_event(event)
        if isinstance(event, EpochEnd) and self.runs_panel.live_run is not None:
            # epochs done and best score from the event itself (the run's summary file follows it)
            self.runs_panel.note_epoch(self.runs_panel.live_run, event.epoch + 1,
                                       event.best_val_acc if self._run_selects_best else None,
                                       event.val.get(self._run_metric.key))
        if isinstance(event, RunFinished):
            metric = self._run_metric
            score = (f"best val {metric.short} {metric.format(event.best_val_acc)}" if self._run_selects_best
                     else f"final val {metric.short} {metric.format(event.final_val_acc)}")
            self.statusBar().showMessage(f"Run {event.status}: {score}", 10000)

    def _on_history(self, history: RunHistory) -> None:
        """A resumed run's earlier epochs, right after its RunStarted and before its new points."""
        for old in history.events:
            self.plots.handle_event(old)

    def _on_failed(self, message: str, detail: str) -> None:
        self.run_bar.set_idle_if_preparing("Did not start")
        self.log.add(message, "error")
        self.statusBar().showMessage(message, 15000)
        self._error_shown = message
        if not self._closing:
            show_error(self, "Training failed" if self.controller.run_dir else "Cannot start training",
                       message, detail)

    def _show_source_problems(self) -> None:
        if self.source_checker.problems():
            self.setup_panel.sources.set_errors(self.source_checker.apply(self.document.error_map()))

    def _clear_stale_error(self) -> None:
        """An error about the settings as they were goes once they change (it stays in the Log)."""
        if getattr(self, "_error_shown", "") and self.statusBar().currentMessage() == self._error_shown:
            self.statusBar().clearMessage()
        self._error_shown = ""

    def _on_notice(self, message: str) -> None:
        self.run_bar.set_idle_if_preparing(message[:1].upper() + message[1:])
        self.log.add(message)
        self.statusBar().showMessage(message, 15000)

    def _on_finished(self, run_dir: str, status: str) -> None:
        self.runs_panel.live_run = None
        self.runs_panel.refresh()
        if run_dir:
            self._last_run_dir = Path(run_dir)
            if status in ("finished", "stopped") and not self._closing:
                self.results.show_run(Path(run_dir))
        self._update_actions()

    def open_compare(self) -> CompareDialog | None:
        """The Compare dialog for the current experiment (a study of methods x seeds)."""
        if self.compare_dialog is not None and self.compare_dialog.busy():
            self.compare_dialog.raise_()
            return self.compare_dialog
        if self.document.config is None or not self.document.is_valid():
            show_error(self, "Cannot compare", "Fix the experiment's settings first: "
                       + (self.start_problem()[0] or "the settings are not valid") + ".")
            return None
        if self.compare_dialog is not None:
            self.compare_dialog.deleteLater()
        self.compare_dialog = CompareDialog(self.document.config, self.runs_root, self,
                                            preset_path=str(self.document.path or ""),
                                            trainer_class=self.local_controller.trainer_class())
        self.compare_dialog.study_finished.connect(lambda folder, status: folder and self.log.add(
            f"Study {status}: {folder}"))
        self.compare_dialog.show()
        return self.compare_dialog

    def export_run(self, run_dir: Path) -> ExportDialog:
        """The Export dialog for one run (not modal: training and browsing go on)."""
        if self.export_dialog is not None and self.export_dialog.busy():
            self.export_dialog.raise_()
            return self.export_dialog
        if self.export_dialog is not None:
            self.export_dialog.deleteLater()
        self.export_dialog = ExportDialog(Path(run_dir), self)
        self.export_dialog.exported.connect(lambda result: self.log.add(f"Exported {result.path}"))
        self.export_dialog.show()
        return self.export_dialog

    def show_results(self, run_dir: Path) -> None:
        self.results.show_run(Path(run_dir))
        self.tabs.setCurrentWidget(self.results)

    def _runs_selected(self, paths: list[Path]) -> None:
        live = Path(self.controller.run_dir) if self.controller.is_running() and self.controller.run_dir else None
        # the run drawn live (running, or just finished) is not drawn a second time as an overlay
        wanted = [p for p in paths if p != live and p.name != self.plots.live_run_name]
        if self._overlay_worker is not None:
            self._overlay_worker.cancel()  # a newer selection replaces it
            self._overlay_worker = None
        if not wanted:
            self.plots.set_overlays([])
        else:  # each run's whole metrics log: read off the GUI thread, drawn when it arrives
            self._overlay_worker = start_worker(lambda: [load_run_curves(p) for p in wanted],
                                                returned=self._overlays_loaded, errored=self._overlays_failed,
                                                name="sskt-run-curves")
        self._update_actions()

    def _overlays_loaded(self, runs: list[RunCurves]) -> None:
        self.plots.set_overlays(runs)
        for run in runs:  # a crash cut lines of its log: the curves have gaps, and the user is told
            if run.damaged_lines:
                self.log.add(f"{run.name}: {run.damaged_lines} damaged line(s) of metrics.jsonl were skipped; "
                             f"its curves miss those points", "warning")

    def _overlays_failed(self, error: WorkerError) -> None:
        self.log.add(f"Could not read the curves of the selected runs: {error.sentence}", "warning")

    def _runs_root_changed(self, root: Path) -> None:
        self.runs_root = Path(root)
        self.settings.runs_root = self.runs_root
        self.settings.save()

    # ----------------------------------------------------------------------------- preferences, help, drops
    def open_preferences(self) -> PreferencesDialog:
        dialog = PreferencesDialog(self.settings, self.runs_root, self)
        dialog.accepted.connect(lambda: self.apply_preferences(dialog.values()))
        dialog.open()
        return dialog

    def apply_preferences(self, values: dict) -> None:
        from app.main import configure_application

        self.settings.theme = values["theme"]
        self.settings.default_device = values["device"]
        self.settings.threads = values["threads"]
        if Path(values["runs_root"]) != self.runs_root:
            self.runs_panel.set_runs_root(Path(values["runs_root"]))
            self._runs_root_changed(Path(values["runs_root"]))
        self.settings.save()
        configure_application(QtWidgets.QApplication.instance(), self.settings.theme)
        apply_thread_count(self.settings.threads)

    def show_getting_started(self) -> GettingStartedDialog:
        if self.getting_started is None:
            keys = {name: action.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText) for name, action in
                    (("start", self.start_action), ("stop", self.stop_action), ("resume", self.resume_action),
                     ("compare", self.compare_action))}
            self.getting_started = GettingStartedDialog(keys, self)
            self.getting_started.open_demo_requested.connect(lambda: self.open_preset(demo_preset()))
        self.getting_started.show()
        self.getting_started.raise_()
        return self.getting_started

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802 (Qt API)
        presets, models = dropped_files(event.mimeData())
        if presets:
            self.open_preset(presets[0])
        if models:
            self.add_model_sources(models)
        if presets or models:
            event.acceptProposedAction()

    def add_model_sources(self, paths: list[Path]) -> None:
        """Model files dropped on the window become sources: checkpoints, or compiled programs
        (TorchScript, torch.export), as their contents say."""
        sources = list(self.document.get(("sources",)) or [])
        for path in paths:
            sources.append({"kind": source_kind_of(path), "path": str(path)})
        self.document.set_sources(sources)
        self.setup_panel.load_from_document()
        self.statusBar().showMessage(f"Added {len(paths)} source model(s): {', '.join(p.name for p in paths)}", 6000)

    # ----------------------------------------------------------------------------- closing
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if not self.maybe_save():
            event.ignore()
            return
        if self.controller.is_running():
            if not ask_stop_run(self):
                event.ignore()
                return
            self._closing = True
            self._stop_and_wait()
        self._closing = True
        self.settings.geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        self.settings.window_state = bytes(self.saveState().toBase64()).decode("ascii")
        if self.document.path is not None:
            self.settings.last_preset = self.document.path.resolve()
        elif self.document.read_only and self.document.title:
            builtin = next((p for p in builtin_presets() if p.name == self.document.title), None)
            self.settings.last_preset = builtin
        self.settings.runs_root = self.runs_root
        self.settings.save()
        self.plots.timer.stop()
        if self.compare_dialog is not None and self.compare_dialog.busy():
            self.compare_dialog.stop()
        if self._overlay_worker is not None:
            self._overlay_worker.cancel()
        wait_for_all(10000)
        event.accept()

    def _stop_and_wait(self) -> None:
        """Stop the run and wait for its thread, keeping the window painted meanwhile."""
        self.controller.stop()
        self._update_actions()
        self.statusBar().showMessage("Stopping the run…")
        progress = QtWidgets.QProgressDialog("Stopping the run…", "", 0, 0, self)
        progress.setCancelButton(None)
        progress.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)
        loop = QtCore.QEventLoop()
        self.controller.busy_changed.connect(loop.quit)
        if self.controller.is_running():
            loop.exec()
        self.controller.busy_changed.disconnect(loop.quit)
        progress.close()
        self.controller.wait()

    def _user_models_notice(self) -> None:
        """Where extra architectures come from, and the warning that those files are code."""
        from sskt_engine.plugins import USER_MODELS_NOTICE, user_models_dir

        QtWidgets.QMessageBox.information(
            self, "User models folder",
            f"<p>Architectures defined in <code>.py</code> files in <code>{user_models_dir()}</code> are loaded "
            f"when SSKT Studio starts and appear as target and source choices.</p><p><b>{USER_MODELS_NOTICE}</b></p>")

    def _about(self) -> None:
        from sskt_engine import __version__

        QtWidgets.QMessageBox.about(
            self, f"About {APP_NAME}",
            f"<h3>{APP_NAME} {__version__}</h3><p>Knowledge-transfer experiments (SSKT, KD, DML, MAXL) on your own "
            f"data: pick sources, a target and a dataset, then watch it train.</p>"
            f"<p>Runs folder: <code>{self.runs_root}</code></p>")


PRESET_SUFFIXES = (".yaml", ".yml")
MODEL_SUFFIXES = (".pt", ".pth", ".tar", ".safetensors", ".pt2", ".torchscript", ".ckpt")


def dropped_files(mime: QtCore.QMimeData) -> tuple[list[Path], list[Path]]:
    """(presets, model files) among the local files of a drag; both empty for anything else."""
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
    presets = [p for p in paths if p.suffix.lower() in PRESET_SUFFIXES]
    models = [p for p in paths if p.suffix.lower() in MODEL_SUFFIXES or p.name.endswith(".pth.tar")]
    return presets, models


def source_kind_of(path: Path) -> str:
    """"compiled" for a TorchScript or torch.export file, else "checkpoint" (read from its zip
    entries; a file that cannot be read is a checkpoint, and validation says what is wrong)."""
    from sskt_engine.model_files.files import EXPORTED_PROGRAM, TORCHSCRIPT, detect_format

    try:
        found = detect_format(path)
    except Exception:  # noqa: BLE001 - the source's own check reports it
        return "checkpoint"
    return "compiled" if found in (TORCHSCRIPT, EXPORTED_PROGRAM) else "checkpoint"


def apply_thread_count(threads: int) -> None:
    """Preferences' training threads (0: PyTorch's own choice), through the engine's --threads."""
    if threads > 0:
        import argparse

        from sskt_engine.cli import apply_threads

        apply_threads(argparse.Namespace(threads=threads))
