"""The source models of the experiment: a list, add/remove, and the details of the one selected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore, QtGui, QtWidgets

from app import engine_catalog
from app.widgets.checkpoint_dialog import CheckpointSourceDialog
from app.widgets.source_details_form import SourceDetailsForm
from app.widgets.run_source_dialog import RunSourceDialog
from app.widgets.torchvision_dialog import TorchvisionSourceDialog
from sskt_engine.config import SourceConfig, to_dict
from sskt_engine.key_paths import format_key_path

EXPORTED_FILTER = "Exported models (*.pt *.safetensors);;All files (*)"


def hidden_keys(kind: str, all_keys) -> set[str]:
    """The keys a source of ``kind`` is not set with (hidden in its details form), as the kind
    registered them (``SourceKindInfo.keys``); an unknown kind hides nothing."""
    info = engine_catalog.source_kind(kind)
    if info is None or not info.keys:
        return set()
    return {key for key in all_keys if key not in info.keys}


def _file_filter(kind: str) -> str:
    info = engine_catalog.source_kind(kind)
    return (info.file_filter if info is not None and info.file_filter else "All files (*)")


def normalised_source(partial: dict[str, Any]) -> dict[str, Any]:
    """Every key of a source, defaults filled in, so the dict matches what Save writes."""
    return to_dict(SourceConfig(**partial))


def source_title(source: dict[str, Any]) -> str:
    try:
        return SourceConfig(**source).display_name()
    except TypeError:
        return str(source.get("name") or source.get("arch") or source.get("path") or "source")


def source_subtitle(source: dict[str, Any]) -> str:
    kind = source.get("kind", "")
    if kind == "torchvision":
        return f"torchvision · {source.get('arch', '')} · {source.get('weights') or 'DEFAULT'}"
    if kind == "checkpoint":
        classes = source.get("num_classes")
        # an exported file names its own architecture; then its file name says more than a blank
        what = source.get("arch") or Path(str(source.get("path", "")).removeprefix("builtin:")).name
        return f"checkpoint · {what}" + (f" · {classes} classes" if classes else "")
    if kind == "run":
        return f"run · {source.get('checkpoint', 'best')} checkpoint"
    if kind == "compiled":
        name = Path(str(source.get("path", ""))).name
        size = source.get("input_size")
        return f"compiled · {name}" + (f" · {size}px" if size else "")
    return str(kind)


class SourcesList(QtWidgets.QWidget):
    """Edits ``raw["sources"]``: emits ``sources_edited(list)`` with the whole new list and
    ``value_edited(path, value)`` for a change made in the details form."""

    sources_edited = QtCore.Signal(list)
    value_edited = QtCore.Signal(tuple, object)

    def __init__(self, runs_root: Callable[[], Path], parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._runs_root = runs_root
        self._video_data = False  # set by the setup panel from the dataset: clip keys show only for clips
        self._sources: list[dict[str, Any]] = []
        self._errors: dict[str, str] = {}
        self._scores: dict[int, str] = {}  # the Rank action's one-line summary per source, until they change
        self._advanced_opened: set[int] = set()  # sources whose Advanced part the person unfolded
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("sourcesList")
        self.list.setAlternatingRowColors(True)
        self.list.setSizeAdjustPolicy(QtWidgets.QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.list.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.currentRowChanged.connect(self._show_details)
        layout.addWidget(self.list)
        self.empty_label = QtWidgets.QLabel("No source models yet. Add a pretrained network to transfer from.")
        self.empty_label.setObjectName("hint")
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)

        buttons = QtWidgets.QHBoxLayout()
        self.add_button = QtWidgets.QPushButton("Add source")
        self.add_button.setToolTip("Add a pretrained network whose knowledge the target learns from")
        menu = QtWidgets.QMenu(self.add_button)
        self.add_torchvision_action = menu.addAction("torchvision model…", self.add_torchvision)
        self.add_checkpoint_action = menu.addAction("Checkpoint file…", self.add_checkpoint)
        self.add_run_action = menu.addAction("Earlier run…", self.add_run)
        self.add_compiled_action = menu.addAction("Compiled model file (TorchScript / .pt2)…", self.add_compiled)
        self.add_compiled_action.setToolTip("A TorchScript or torch.export file: no architecture needed")
        self.add_exported_action = menu.addAction("Exported model (SSKT Studio .pt/.safetensors)…",
                                                  self.add_exported)
        self.add_exported_action.setToolTip("A model exported by SSKT Studio: its file names its architecture "
                                            "and classes")
        menu.setToolTipsVisible(True)
        self.add_button.setMenu(menu)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.error_label = QtWidgets.QLabel()
        self.error_label.setObjectName("fieldError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)

        self.details_box = QtWidgets.QGroupBox("Selected source")
        self.details_box.setObjectName("subGroup")
        details_layout = QtWidgets.QVBoxLayout(self.details_box)
        self.details = SourceDetailsForm(engine_catalog.describe(SourceConfig), ("sources", 0))
        self.details.value_edited.connect(self._detail_edited)
        self.details.advanced_section.header.clicked.connect(self._advanced_clicked)
        details_layout.addWidget(self.details)
        self.browse_button = QtWidgets.QPushButton("Choose file or folder…")
        self.browse_button.clicked.connect(self._browse_path)
        details_layout.addWidget(self.browse_button, 0, QtCore.Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.details_box)
        self._refresh()

    # -- the list ------------------------------------------------------------------------
    def set_sources(self, sources: list[dict[str, Any]]) -> None:
        self._sources = [dict(s) if isinstance(s, dict) else {} for s in (sources or [])]
        self._scores = {}
        self._advanced_opened = set()
        self._refresh()

    def sources(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self._sources]

    def _refresh(self) -> None:
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        for i, source in enumerate(self._sources):
            item = QtWidgets.QListWidgetItem(self._item_text(i))
            item.setToolTip(self._source_errors_text(i) or source_subtitle(source))
            if self._source_errors_text(i):
                item.setForeground(QtGui.QColor("#c62828"))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._fit_height()
        has = bool(self._sources)
        self.list.setVisible(has)
        self.empty_label.setVisible(not has)
        self.remove_button.setEnabled(has)
        if has:
            self.list.setCurrentRow(min(max(row, 0), len(self._sources) - 1))
        self._show_details(self.list.currentRow())

    def _item_text(self, index: int) -> str:
        source = self._sources[index]
        score = self._scores.get(index)
        return f"{source_title(source)}\n{source_subtitle(source)}" + (f"\n{score}" if score else "")

    def set_scores(self, scores: dict[int, str]) -> None:
        """Show the Rank action's summary under each source (empty: none); cleared by any edit."""
        self._scores = dict(scores)
        for i in range(min(self.list.count(), len(self._sources))):
            self.list.item(i).setText(self._item_text(i))
        self._fit_height()

    def _fit_height(self) -> None:
        """As tall as its items (up to four), so one source leaves no empty box."""
        rows = min(max(self.list.count(), 1), 4)
        row_height = self.list.sizeHintForRow(0) if self.list.count() else self.fontMetrics().height() * 2 + 6
        self.list.setFixedHeight(rows * row_height + 2 * self.list.frameWidth() + 2)

    def _source_errors_text(self, index: int) -> str:
        prefix = format_key_path(("sources", index))
        return "; ".join(f"{path[len(prefix) + 1:]}: {reason}" for path, reason in self._errors.items()
                         if path.startswith(prefix + ".") or path == prefix)

    def _emit_list(self) -> None:
        if self._scores:
            self.set_scores({})  # scores of another list of sources
        self.sources_edited.emit(self.sources())

    def add_source(self, partial: dict[str, Any]) -> None:
        self._sources.append(normalised_source(partial))
        self._refresh()
        self.list.setCurrentRow(len(self._sources) - 1)
        self._emit_list()

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self._sources):
            del self._sources[row]
            self._advanced_opened = {i - (i > row) for i in self._advanced_opened if i != row}
            self._refresh()
            self._emit_list()

    def add_torchvision(self) -> None:
        dialog = TorchvisionSourceDialog(self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted and dialog.source():
            self.add_source(dialog.source())

    def add_checkpoint(self) -> None:
        dialog = CheckpointSourceDialog(self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.add_source(dialog.source())

    def add_run(self) -> None:
        dialog = RunSourceDialog(self._runs_root(), self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted and dialog.source():
            self.add_source(dialog.source())

    def add_compiled(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Compiled model file", "", _file_filter("compiled"))
        if path:
            self.add_source({"kind": "compiled", "path": path})

    def add_exported(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Exported model", "", EXPORTED_FILTER)
        if path:
            self.add_source({"kind": "checkpoint", "path": path})

    # -- details -------------------------------------------------------------------------
    def _show_details(self, row: int) -> None:
        if not (0 <= row < len(self._sources)):
            self.details_box.hide()
            return
        self.details_box.show()
        source = self._sources[row]
        self.details.prefix = ("sources", row)
        self.details.set_values(source)
        hidden = set(hidden_keys(source.get("kind", ""), self.details.editors))
        if not self._video_data:  # clip_frames applies only when the target's data are clips
            hidden.add("clip_frames")
        self.details.show_only(name for name in self.details.editors if name not in hidden)
        info = engine_catalog.source_kind(str(source.get("kind", "")))
        self.browse_button.setVisible(info is not None and bool(info.path_is))
        self._set_placeholders(info)
        self.details.set_errors(self._errors)
        self.details.fold_advanced(keep_open=row in self._advanced_opened)

    def _set_placeholders(self, info) -> None:
        """An empty field the kind can do without says where the value comes from instead (an
        exported checkpoint names its architecture); one the kind requires stays blank."""
        arch = self.details.editors.get("arch")
        if arch is not None and isinstance(arch.input, QtWidgets.QLineEdit):
            optional = info is not None and "arch" not in info.required and info.path_is == "file"
            arch.input.setPlaceholderText("from the file, when it names it" if optional else "")

    def _advanced_clicked(self, opened: bool) -> None:
        """Remember that the person unfolded (or folded) Advanced for this source."""
        row = self.list.currentRow()
        if opened:
            self._advanced_opened.add(row)
        else:
            self._advanced_opened.discard(row)

    def set_video_data(self, video: bool) -> None:
        """Whether the experiment's dataset holds clips: only then do sources show ``clip_frames``."""
        if video != self._video_data:
            self._video_data = video
            self._show_details(self.list.currentRow())

    def _detail_edited(self, path: tuple, value: Any) -> None:
        _, index, key = path
        self._sources[index][key] = value
        self._scores.pop(index, None)  # its score was for the source before this edit
        current = self.list.item(index)
        if current is not None:
            current.setText(self._item_text(index))
        if key == "kind":
            self._show_details(index)
        self.value_edited.emit(path, value)

    def _browse_path(self) -> None:
        row = self.list.currentRow()
        if not (0 <= row < len(self._sources)):
            return
        source = self._sources[row]
        kind = str(source.get("kind", ""))
        info = engine_catalog.source_kind(kind)
        title = (info.title if info is not None and info.title else kind).capitalize()
        if info is not None and info.path_is == "folder":
            path = QtWidgets.QFileDialog.getExistingDirectory(self, title, str(self._runs_root()))
        else:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, title, source.get("path", ""), _file_filter(kind))
        if path:
            self.details.editor("path").set_value(path)
            self._detail_edited(("sources", row, "path"), path)

    # -- errors --------------------------------------------------------------------------
    def set_errors(self, errors: dict[str, str]) -> None:
        self._errors = {p: r for p, r in errors.items() if p.startswith("sources")}
        general = self._errors.get("sources")
        self.error_label.setText(general or "")
        self.error_label.setVisible(bool(general))
        for i in range(self.list.count()):
            text = self._source_errors_text(i)
            item = self.list.item(i)
            item.setForeground(QtGui.QColor("#c62828") if text else self.palette().text().color())
            item.setToolTip(text or source_subtitle(self._sources[i]))
        self.details.set_errors(self._errors)
