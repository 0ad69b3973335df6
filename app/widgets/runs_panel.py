"""Every run in the runs folder (the GUI's and the CLI's): status, best accuracy, actions.

Selecting runs overlays their curves on the plots. The list follows the folder: a file
watcher notices new runs and a slow timer refreshes while any run is still going. Every
read of the folder happens in a worker thread: a folder of hundreds of runs takes tens of
milliseconds to list, a visible stall if the GUI thread did it while a run trains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.widgets import run_label_dialogs
from app.widgets.elided_label import ElidedLabel
from app.worker import Worker, WorkerError, start_worker
from sskt_engine.errors import UserInputError
from sskt_engine.run_labels import parse_tags, update_labels
from sskt_engine.runs import FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED, RunFolder, RunInfo, list_runs

STATUS_COLORS = {RUNNING: "#1565c0", FINISHED: "#2e7d32", STOPPED: "#ef6c00", FAILED: "#c62828",
                 INTERRUPTED: "#8d6e63"}
RESUMABLE = (STOPPED, FAILED, INTERRUPTED)
COLUMNS = ("Run", "Started", "Status", "Best", "Final", "Method", "Epochs", "Tags")
HIDDEN_COLUMNS = ("Final", "Epochs", "Tags")  # at first; the header's context menu shows them (Tags: also
TAGS_COLUMN = COLUMNS.index("Tags")            # the first time the user tags a run)
SEARCH_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2  # what the filter reads beyond the columns: name, note
TAGS_COLUMN_PX = 100  # the Tags column's first width (long tag lists are elided, never widen the table)
RUN_COLUMN_MIN_PX = 140  # the run's name keeps this much when the Tags column is shown for the user
TRASH = ".trash"  # deleted runs go here, inside the runs folder: restorable, and never a copy across disks
EMPTY_TEXT = "No runs yet. Runs started here or with `sskt train` appear in this list."
HINT_TEXT = "Select several runs to compare their curves on the plots."


def _started(folder_name: str) -> str:
    """'20261125-151630-demo' -> '25 Nov 15:16' (run folders start with their start time)."""
    try:
        stamp = datetime.strptime(folder_name[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return ""
    return stamp.strftime("%H:%M") if stamp.date() == date.today() else stamp.strftime("%d %b %H:%M")


def _has_checkpoint(path: Path) -> bool:
    folder = RunFolder(path)
    return any(folder.checkpoint_path(which).is_file() for which in ("best", "last"))


@dataclass(frozen=True)
class RunRow:
    """What a row shows, read from the run folder in a worker thread."""

    info: RunInfo
    has_checkpoint: bool


def read_rows(root: Path) -> tuple[Path, list[RunRow]]:
    """Every run of ``root`` (worker thread); the root comes back to tell a stale answer."""
    return root, [RunRow(info, _has_checkpoint(info.path)) for info in list_runs(root)]


def read_row(path: Path) -> tuple[Path, RunRow | None]:
    """One run's row (worker thread); None when the folder is gone or not a run."""
    folder = RunFolder(path)
    if not folder.exists():
        return path, None
    info = folder.info()
    return path, RunRow(info, _has_checkpoint(info.path))


class _SortItem(QtWidgets.QTreeWidgetItem):
    def __lt__(self, other: QtWidgets.QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else 0
        mine = self.data(column, QtCore.Qt.ItemDataRole.UserRole + 1)
        theirs = other.data(column, QtCore.Qt.ItemDataRole.UserRole + 1)
        if mine is not None and theirs is not None:
            return mine < theirs
        return self.text(column) < other.text(column)


class RunsPanel(QtWidgets.QWidget):
    selection_changed = QtCore.Signal(list)  # list[Path]
    results_requested = QtCore.Signal(Path)
    open_preset_requested = QtCore.Signal(Path)
    resume_requested = QtCore.Signal(Path)
    export_requested = QtCore.Signal(Path)
    runs_root_changed = QtCore.Signal(Path)
    labels_changed = QtCore.Signal(Path)  # a run's display name, tags or note were changed here
    listed = QtCore.Signal()  # the tree shows a fresh listing of the runs folder

    def __init__(self, runs_root: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.runs_root = Path(runs_root)
        self._infos: dict[Path, RunInfo] = {}
        self._checkpoints: dict[Path, bool] = {}
        self._lister: Worker | None = None  # one listing at a time ...
        self._list_again = False  # ... and requests meanwhile fold into one more after it
        self._row_reader: Worker | None = None
        self._rows_wanted: list[Path] = []  # rows to re-read after the current one
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)

        folder_row = QtWidgets.QHBoxLayout()
        self.folder_label = ElidedLabel()  # a long path is elided in its middle, never cut mid-word
        self.folder_label.setObjectName("hint")
        change = QtWidgets.QToolButton()
        change.setText("Change…")
        change.setToolTip("Choose the folder that holds the runs")
        change.clicked.connect(self._choose_root)
        refresh = QtWidgets.QToolButton()
        refresh.setText("Refresh")
        refresh.clicked.connect(self.refresh)
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(refresh)
        folder_row.addWidget(change)
        layout.addLayout(folder_row)

        self.filter = QtWidgets.QLineEdit()
        self.filter.setObjectName("runsFilter")
        self.filter.setPlaceholderText("Filter runs (name, tag, note, method, status)…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        layout.addWidget(self.filter)

        self.tree = QtWidgets.QTreeWidget()
        self.tree.setObjectName("runsTree")
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(1, QtCore.Qt.SortOrder.DescendingOrder)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            self.tree.header().setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setSectionResizeMode(TAGS_COLUMN, QtWidgets.QHeaderView.ResizeMode.Interactive)
        self.tree.setColumnWidth(TAGS_COLUMN, TAGS_COLUMN_PX)
        for name in HIDDEN_COLUMNS:
            self.tree.setColumnHidden(COLUMNS.index(name), True)
        # choose columns: the header's context menu
        self.tree.header().setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.header().customContextMenuRequested.connect(self._columns_menu)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _c: self.results_requested.emit(self._path(item)))
        self.tree.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        layout.addWidget(self.tree, 1)
        self.tree.viewport().installEventFilter(self)  # its width decides how the name column sizes

        self.empty_label = QtWidgets.QLabel(EMPTY_TEXT)
        self.empty_label.setObjectName("hint")
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)

        buttons = QtWidgets.QHBoxLayout()
        self.results_button = QtWidgets.QPushButton("Results")
        self.results_button.setToolTip("Per-class accuracy, confusion matrix and predictions of the run")
        self.results_button.clicked.connect(lambda: self._emit_single(self.results_requested))
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.resume_button.setToolTip("Continue a stopped or failed run in its own folder")
        self.resume_button.clicked.connect(lambda: self._emit_single(self.resume_requested))
        self.export_button = QtWidgets.QPushButton("Export…")
        self.export_button.setToolTip("Save the run's trained network as pt, safetensors, TorchScript or ONNX")
        self.export_button.clicked.connect(lambda: self._emit_single(self.export_requested))
        self.open_preset_action = QtGui.QAction("Open preset", self)
        self.open_preset_action.setToolTip("Load the settings this run was trained with into the form")
        self.open_preset_action.triggered.connect(lambda: self._emit_single(self.open_preset_requested))
        self.delete_action = QtGui.QAction("Delete…", self)
        self.delete_action.setShortcut(QtGui.QKeySequence.StandardKey.Delete)
        self.delete_action.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.delete_action.triggered.connect(self.delete_selected)
        self.addAction(self.delete_action)
        self.reveal_action = QtGui.QAction("Show in file manager", self)
        self.reveal_action.triggered.connect(self._reveal)
        # A user's labels (labels.json in the run folder): editable while the run trains, since
        # the trainer never writes that file.
        self.rename_action = QtGui.QAction("Rename…", self)
        self.rename_action.setToolTip("The name this run is shown with (its folder keeps its name)")
        self.rename_action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_F2))
        self.rename_action.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.rename_action.triggered.connect(self.rename_selected)
        self.addAction(self.rename_action)
        self.tags_action = QtGui.QAction("Tags…", self)
        self.tags_action.setToolTip("Words to find and group runs by (the filter matches them)")
        self.tags_action.triggered.connect(self.tag_selected)
        self.note_action = QtGui.QAction("Note…", self)
        self.note_action.setToolTip("A free-text note kept in the run folder")
        self.note_action.triggered.connect(self.note_selected)
        self.more_button = QtWidgets.QPushButton("More")
        more = QtWidgets.QMenu(self.more_button)
        for action in (self.rename_action, self.tags_action, self.note_action):
            more.addAction(action)
        more.addSeparator()
        more.addAction(self.open_preset_action)
        more.addAction(self.reveal_action)
        more.addSeparator()
        more.addAction(self.delete_action)
        self.more_button.setMenu(more)
        for button in (self.results_button, self.resume_button, self.export_button, self.more_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.hint = QtWidgets.QLabel(HINT_TEXT)
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)

        self.watcher = QtCore.QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(lambda _p: self._refresh_soon.start())
        self._refresh_soon = QtCore.QTimer(self)
        self._refresh_soon.setSingleShot(True)
        self._refresh_soon.setInterval(300)
        self._refresh_soon.timeout.connect(self.refresh)
        self.live_run: Path | None = None  # this window's own run: its events update the list
        self._poll = QtCore.QTimer(self)
        self._poll.setInterval(3000)
        self._poll.timeout.connect(self._poll_refresh)
        self.set_runs_root(self.runs_root)

    # -- folder ---------------------------------------------------------------------------
    def set_runs_root(self, root: Path) -> None:
        self.runs_root = Path(root)
        self.folder_label.set_full_text(f"Runs in {self.runs_root}")
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        if self.runs_root.is_dir():
            self.watcher.addPath(str(self.runs_root))
        self.refresh()

    def _choose_root(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Runs folder", str(self.runs_root))
        if folder:
            self.set_runs_root(Path(folder))
            self.runs_root_changed.emit(Path(folder))

    # -- list -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """List the runs folder again in a worker thread; the tree is refilled when the list
        arrives (``listed``)."""
        if self.runs_root.is_dir() and str(self.runs_root) not in self.watcher.directories():
            self.watcher.addPath(str(self.runs_root))
        if self._lister is not None:
            self._list_again = True
            return
        root = self.runs_root
        self._lister = start_worker(lambda: read_rows(root), returned=self._listed, errored=self._listing_failed,
                                    finished=self._listing_ended, name="sskt-list-runs")

    def is_listing(self) -> bool:
        """True while a listing is under way or asked for (tests wait on it)."""
        return self._lister is not None

    def _listing_ended(self) -> None:
        self._lister = None
        if self._list_again:
            self._list_again = False
            self.refresh()

    def _listing_failed(self, error: WorkerError) -> None:
        self.empty_label.setText(f"The runs folder could not be read: {error.sentence}")
        self.empty_label.show()

    def _listed(self, result: tuple[Path, list[RunRow]]) -> None:
        root, rows = result
        if root != self.runs_root:
            return  # the folder changed meanwhile; its own listing follows
        selected = set(self.selected_paths())
        current = self.tree.currentItem()
        current_path = self._path(current) if current else None
        infos = [row.info for row in rows]
        self._infos = {info.path: info for info in infos}
        self._checkpoints = {row.info.path: row.has_checkpoint for row in rows}
        self.tree.blockSignals(True)
        self.tree.setSortingEnabled(False)
        self.tree.clear()
        for info in infos:
            item = _SortItem([""] * len(COLUMNS))
            self._fill_item(item, info)
            self.tree.addTopLevelItem(item)
            if info.path in selected:
                item.setSelected(True)
            if info.path == current_path:
                self.tree.setCurrentItem(item, 0, QtCore.QItemSelectionModel.SelectionFlag.NoUpdate)
        self.tree.setSortingEnabled(True)
        self.tree.blockSignals(False)
        self.empty_label.setText(EMPTY_TEXT)
        self.empty_label.setVisible(not infos)
        if any(info.status == RUNNING for info in infos):
            self._poll.start()
        else:
            self._poll.stop()
        self._update_buttons()
        if set(self.selected_paths()) != selected:
            self._selection_changed()
        self._fit_name_column()
        self.listed.emit()

    def _fill_item(self, item: QtWidgets.QTreeWidgetItem, info: RunInfo) -> None:
        epochs = f"{info.epochs_completed}/{info.epochs}" if info.epochs else str(info.epochs_completed)
        # Epochs only where they say something: how far an unfinished run got.
        status = info.status if info.status == FINISHED else f"{info.status} {epochs}"
        for column, text in enumerate((info.display_name or info.path.name, _started(info.path.name), status,
                                       info.metric.format(info.best_score, missing=""),
                                       info.metric.format(info.final_score, missing=""), info.method or "", epochs,
                                       " ".join(info.labels.tags))):
            item.setText(column, text)
        item.setData(0, SEARCH_ROLE, " ".join((info.name, info.labels.note)))
        item.setData(4, QtCore.Qt.ItemDataRole.UserRole + 1, info.final_score if info.final_score is not None
                     else -1.0)
        item.setData(6, QtCore.Qt.ItemDataRole.UserRole + 1, info.epochs_completed)
        item.setTextAlignment(4, QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        item.setHidden(not self._matches(item))
        item.setData(0, QtCore.Qt.ItemDataRole.UserRole + 1, info.path.name)  # sort by folder: by time
        item.setData(1, QtCore.Qt.ItemDataRole.UserRole + 1, info.path.name)
        item.setData(0, QtCore.Qt.ItemDataRole.UserRole, str(info.path))
        item.setData(3, QtCore.Qt.ItemDataRole.UserRole + 1, info.best_score if info.best_score is not None
                     else -1.0)
        item.setForeground(2, QtGui.QColor(STATUS_COLORS.get(info.status, "#333333")))
        tip = (f"{info.path}\nmethod {info.method or '?'} · started {info.started or '?'} · epochs {epochs}\n"
               f"best val {info.metric.short} {info.metric.format(info.best_score)} · final "
               f"{info.metric.format(info.final_score)}"
               + (f"\n{info.message}" if info.message else "")
               + (f"\nrun's own name: {info.name}" if info.labels.name else "")
               + (f"\ntags: {' '.join(info.labels.tags)}" if info.labels.tags else "")
               + (f"\nnote: {_note_tip(info.labels.note)}" if info.labels.note else "")
               + (f"\n{info.labels_warning}" if info.labels_warning else ""))
        for column in range(len(COLUMNS)):
            item.setToolTip(column, tip)
        item.setTextAlignment(3, QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)

    def note_epoch(self, path: Path, epochs_completed: int, best_score: float | None,
                   final_score: float | None = None) -> None:
        """The live run's row from its EpochEnd, at once: its summary file is written after the
        event, so reading it now would show the epoch before (the row lagged one epoch behind)."""
        path = Path(path)
        info = self._infos.get(path)
        item = self._item(path)
        if info is None or item is None:
            if self._lister is None:  # not listed, and no listing under way that will show it: read it
                self.update_run(path)
            return
        info = replace(info, epochs_completed=max(info.epochs_completed, int(epochs_completed)),
                       best_score=best_score if best_score is not None and best_score >= 0 else info.best_score,
                       final_score=final_score if final_score is not None else info.final_score)
        self._infos[path] = info
        self._fill_item(item, info)

    def _item(self, path: Path) -> QtWidgets.QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if self._path(item) == path:
                return item
        return None

    # -- columns and filter ---------------------------------------------------------------
    def _columns_menu(self, pos: QtCore.QPoint) -> None:
        menu = QtWidgets.QMenu(self)
        for column, name in enumerate(COLUMNS):
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(not self.tree.isColumnHidden(column))
            action.setEnabled(column != 0)  # the run's name always shows
            action.toggled.connect(lambda shown, c=column: self._show_column(c, shown))
        menu.exec(self.tree.header().mapToGlobal(pos))

    def _show_column(self, column: int, shown: bool) -> None:
        self.tree.setColumnHidden(column, not shown)
        self._fit_name_column()

    def _fit_name_column(self) -> None:
        """The run's name takes the room the other columns leave, but never less than
        RUN_COLUMN_MIN_PX: in a narrow panel (1280x720) the table scrolls sideways instead of
        cutting every name to a few letters."""
        header = self.tree.header()
        others = sum(header.sectionSize(c) for c in range(1, len(COLUMNS)) if not self.tree.isColumnHidden(c))
        stretch = self.tree.viewport().width() - others >= RUN_COLUMN_MIN_PX
        mode = QtWidgets.QHeaderView.ResizeMode.Stretch if stretch else QtWidgets.QHeaderView.ResizeMode.Interactive
        if header.sectionResizeMode(0) != mode:
            header.setSectionResizeMode(0, mode)
        if not stretch and header.sectionSize(0) != RUN_COLUMN_MIN_PX:
            self.tree.setColumnWidth(0, RUN_COLUMN_MIN_PX)

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt API)
        if obj is self.tree.viewport() and event.type() == QtCore.QEvent.Type.Resize:
            QtCore.QTimer.singleShot(0, self, self._fit_name_column)  # after the header has its new width
        return super().eventFilter(obj, event)

    def _matches(self, item: QtWidgets.QTreeWidgetItem) -> bool:
        words = self.filter.text().lower().split() if hasattr(self, "filter") else []
        if not words:
            return True
        text = " ".join(item.text(c) for c in range(len(COLUMNS))).lower() + " " + \
            str(item.data(0, QtCore.Qt.ItemDataRole.UserRole)).lower() + " " + str(item.data(0, SEARCH_ROLE) or "").lower()
        return all(word in text for word in words)

    def _apply_filter(self, *_args) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            hidden = not self._matches(item)
            item.setHidden(hidden)
            if hidden and item.isSelected():
                item.setSelected(False)  # a run the filter hides is not compared either

    def visible_runs(self) -> list[Path]:
        return [self._path(self.tree.topLevelItem(i)) for i in range(self.tree.topLevelItemCount())
                if not self.tree.topLevelItem(i).isHidden()]

    def update_run(self, path: Path) -> None:
        """Refresh one run's row (the live run, once per epoch), read in a worker thread:
        re-listing every run folder of a large runs folder each epoch would be wasted work."""
        path = Path(path)
        if self._row_reader is not None:
            if path not in self._rows_wanted:
                self._rows_wanted.append(path)
            return
        self._row_reader = start_worker(lambda: read_row(path), returned=self._row_read,
                                        finished=self._row_read_ended, name="sskt-read-run")

    def _row_read_ended(self) -> None:
        self._row_reader = None
        if self._rows_wanted:
            self.update_run(self._rows_wanted.pop(0))

    def _row_read(self, result: tuple[Path, RunRow | None]) -> None:
        path, row = result
        if row is not None:
            for i in range(self.tree.topLevelItemCount()):
                item = self.tree.topLevelItem(i)
                if self._path(item) == path:
                    self._infos[path] = row.info
                    self._checkpoints[path] = row.has_checkpoint
                    self._fill_item(item, row.info)
                    self._update_buttons()
                    return
        self.refresh()  # not listed yet, or gone: the whole list

    def _poll_refresh(self) -> None:
        """Runs started elsewhere (the CLI) are only seen by looking; this window's own run
        refreshes the list from its events, so polling for it alone would be wasted work."""
        if any(info.status == RUNNING and info.path != self.live_run for info in self._infos.values()):
            self.refresh()

    def _remove_row(self, path: Path) -> None:
        for i in range(self.tree.topLevelItemCount()):
            if self._path(self.tree.topLevelItem(i)) == path:
                self.tree.takeTopLevelItem(i)
                break
        self._infos.pop(path, None)
        self._checkpoints.pop(path, None)
        self._update_buttons()

    def _path(self, item: QtWidgets.QTreeWidgetItem | None) -> Path:
        return Path(item.data(0, QtCore.Qt.ItemDataRole.UserRole)) if item else Path()

    def selected_paths(self) -> list[Path]:
        return [self._path(item) for item in self.tree.selectedItems()]

    def select(self, paths: list[Path]) -> None:
        wanted = {Path(p) for p in paths}
        self.tree.clearSelection()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if self._path(item) in wanted:
                item.setSelected(True)

    def info(self, path: Path) -> RunInfo | None:
        return self._infos.get(Path(path))

    def _selection_changed(self) -> None:
        self.hint.setText(HINT_TEXT)
        self._update_buttons()
        self.selection_changed.emit(self.selected_paths())

    def _update_buttons(self) -> None:
        paths = self.selected_paths()
        single = len(paths) == 1
        info = self._infos.get(paths[0]) if single else None
        self.results_button.setEnabled(single)
        self.open_preset_action.setEnabled(single)
        self.reveal_action.setEnabled(bool(paths))
        for action in (self.rename_action, self.tags_action, self.note_action):
            action.setEnabled(info is not None)
        self.resume_button.setEnabled(bool(info and info.status in RESUMABLE))
        self.export_button.setEnabled(bool(info and info.status != RUNNING and self._checkpoints.get(info.path)))
        self.delete_action.setEnabled(bool(paths) and all(self._infos.get(p) and self._infos[p].status != RUNNING
                                                          for p in paths))

    def _emit_single(self, signal: QtCore.SignalInstance) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            signal.emit(paths[0])

    def _context_menu(self, pos: QtCore.QPoint) -> None:
        if not self.tree.itemAt(pos):
            return
        menu = QtWidgets.QMenu(self)
        for button in (self.results_button, self.resume_button, self.export_button):
            action = menu.addAction(button.text(), button.click)
            action.setEnabled(button.isEnabled())
        menu.addSeparator()
        for action in (self.rename_action, self.tags_action, self.note_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.open_preset_action)
        menu.addAction(self.reveal_action)
        menu.addSeparator()
        menu.addAction(self.delete_action)
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def _reveal(self) -> None:
        paths = self.selected_paths()
        if paths:
            QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(paths[0])))

    # -- labels: rename, tags, note ---------------------------------------------------------
    def _single_info(self) -> RunInfo | None:
        paths = self.selected_paths()
        return self._infos.get(paths[0]) if len(paths) == 1 else None

    def rename_selected(self) -> bool:
        info = self._single_info()
        name = run_label_dialogs.ask_name(self, info) if info else None
        return name is not None and self.set_labels(info.path, name=name)

    def tag_selected(self) -> bool:
        info = self._single_info()
        text = run_label_dialogs.ask_tags(self, info) if info else None
        if text is None:
            return False
        try:
            tags = parse_tags(text)
        except UserInputError as exc:
            QtWidgets.QMessageBox.warning(self, "Tags", str(exc))
            return False
        if not self.set_labels(info.path, tags=tags):
            return False
        if tags:
            self._reveal_tags_column()
        return True

    def _reveal_tags_column(self) -> None:
        """Tags just given: show the Tags column where it fits beside the run names; where it
        would squeeze them (a narrow runs panel, 1280x720) say where the tags are instead."""
        if not self.tree.isColumnHidden(TAGS_COLUMN):
            return
        header = self.tree.header()
        others = sum(header.sectionSize(c) for c in range(1, len(COLUMNS)) if not self.tree.isColumnHidden(c))
        if self.tree.viewport().width() - others >= RUN_COLUMN_MIN_PX + TAGS_COLUMN_PX:
            self._show_column(TAGS_COLUMN, True)
            self.hint.setText(HINT_TEXT)
        else:
            self.hint.setText("Tags saved: the filter finds them, and the Tags column shows them (right-click the "
                              "table's header to choose columns).")

    def note_selected(self) -> bool:
        info = self._single_info()
        note = run_label_dialogs.ask_note(self, info) if info else None
        return note is not None and self.set_labels(info.path, note=note)

    def set_labels(self, path: Path, **changes) -> bool:
        """Write a run's labels (``update_labels``: name=, tags=, note=) and show them at once.
        A small atomic write in labels.json, never the summary the trainer rewrites, so a running
        run can be labelled too. A refused value is one sentence in a message box."""
        path = Path(path)
        try:
            labels = update_labels(path, **changes)
        except UserInputError as exc:
            QtWidgets.QMessageBox.warning(self, "Run labels", str(exc))
            return False
        info = self._infos.get(path)
        item = self._item(path)
        if info is not None and item is not None:
            info = replace(info, labels=labels, labels_warning="")
            self._infos[path] = info
            self._fill_item(item, info)
        self.labels_changed.emit(path)
        return True

    # -- delete -----------------------------------------------------------------------------
    def delete_selected(self) -> bool:
        paths = [p for p in self.selected_paths() if self._infos.get(p) and self._infos[p].status != RUNNING]
        if not paths:
            return False
        names = "\n".join(p.name for p in paths[:10]) + (f"\n… and {len(paths) - 10} more" if len(paths) > 10 else "")
        answer = QtWidgets.QMessageBox.question(
            self, "Delete runs" if len(paths) > 1 else "Delete run",
            f"Delete {len(paths)} run folder(s) with their checkpoints and logs? They are moved to "
            f"{self.runs_root / TRASH}, from where they can be moved back.\n\n{names}",
            QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.Cancel,
            QtWidgets.QMessageBox.StandardButton.Cancel)
        if answer != QtWidgets.QMessageBox.StandardButton.Yes:
            return False
        problems = []
        for path in paths:
            # Only ever a run folder directly inside the runs folder.
            if path.parent.resolve() != self.runs_root.resolve() or not RunFolder(path).exists():
                problems.append(f"{path.name}: not a run folder in {self.runs_root}")
                continue
            try:
                move_to_trash(path, self.runs_root)
            except OSError as exc:
                problems.append(f"{path.name}: {exc.strerror or exc}")
                continue
            self._remove_row(path)  # gone from the list at once; the listing below confirms it
        self.refresh()
        if problems:
            QtWidgets.QMessageBox.warning(self, "Delete run", "Some runs could not be deleted:\n" + "\n".join(problems))
        return not problems


def _note_tip(note: str, limit: int = 300) -> str:
    """A note in a tooltip: its first lines, not pages of it."""
    return note if len(note) <= limit else note[: limit - 1] + "…"


def move_to_trash(path: Path, runs_root: Path) -> Path:
    """Move a run folder into the runs folder's trash (a rename on the same disk: atomic, and
    restorable by moving it back); a name already there gets a number."""
    trash = Path(runs_root) / TRASH
    trash.mkdir(exist_ok=True)
    target = trash / path.name
    number = 2
    while target.exists():
        target = trash / f"{path.name}-{number}"
        number += 1
    path.rename(target)
    return target
