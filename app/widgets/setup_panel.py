"""The experiment setup: every preset key as a form, generated from the engine's registries
and ``describe_fields``. A method, architecture or dataset the engine registers shows up here
with no change to the GUI; keys a method does not read are hidden while it is chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore, QtWidgets

from app import engine_catalog
from app.preset_document import PresetDocument
from app.widgets.collapsible_section import CollapsibleSection
from app.widgets.dataset_preview import DatasetPreview
from app.widgets.field_form import FieldForm, align_labels
from app.widgets.method_form import MethodForm
from app.widgets.source_ranking_panel import SourceRankingPanel
from app.widgets.sources_list import SourcesList
from app.field_applicability import apply_field_visibility, mark_missing_root, show_value_notes
from app.worker import WorkerError, start_worker
from sskt_engine.config import DataConfig, ExperimentConfig, MethodOptions, TargetConfig, TrainConfig, parse_section
from sskt_engine.key_paths import parse_key_path

SECTION_FIELDS = ("schema_version", "target", "sources", "data", "method", "train", "paper")


class SetupPanel(QtWidgets.QScrollArea):
    def __init__(self, document: PresetDocument, runs_root: Callable[[], Path],
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.setObjectName("setupPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        body = QtWidgets.QWidget()
        body.setObjectName("setupBody")
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)

        self.architectures = engine_catalog.architectures()
        self.methods = engine_catalog.methods()
        self.datasets = engine_catalog.datasets()

        self.forms: dict[str, FieldForm] = {}
        self.sections: dict[str, CollapsibleSection] = {}

        self.forms["experiment"] = FieldForm(engine_catalog.describe(ExperimentConfig), (), skip=SECTION_FIELDS)
        layout.addWidget(self.forms["experiment"])

        self.sources = SourcesList(runs_root)
        self.sources.sources_edited.connect(self.document.set_sources)
        self.sources.value_edited.connect(self.document.set)
        # Rank: scores every source in the background and shows them under each one (issue 19)
        self.ranking = SourceRankingPanel(lambda: self.document.config)
        self.ranking.scores_ready.connect(self.sources.set_scores)
        self.sources.sources_edited.connect(lambda _sources: self.ranking.clear())
        self.sources.value_edited.connect(lambda _path, _value: self.ranking.clear())
        sources_box = QtWidgets.QWidget()
        sources_layout = QtWidgets.QVBoxLayout(sources_box)
        sources_layout.setContentsMargins(0, 0, 0, 0)
        sources_layout.addWidget(self.sources)
        sources_layout.addWidget(self.ranking)
        self._add_section("sources", "Source models", sources_box, layout)

        target_box = QtWidgets.QWidget()
        target_layout = QtWidgets.QVBoxLayout(target_box)
        target_layout.setContentsMargins(0, 0, 0, 0)
        self.forms["target"] = FieldForm(engine_catalog.describe(TargetConfig), ("target",),
                                         descriptions={"arch": self._descriptions(self.architectures)})
        target_layout.addWidget(self.forms["target"])
        self.parameter_label = QtWidgets.QLabel()
        self.parameter_label.setObjectName("parameterCount")
        target_layout.addWidget(self.parameter_label)
        self._add_section("target", "Target network", target_box, layout)

        data_box = QtWidgets.QWidget()
        data_layout = QtWidgets.QVBoxLayout(data_box)
        data_layout.setContentsMargins(0, 0, 0, 0)
        self.forms["data"] = FieldForm(engine_catalog.describe(DataConfig), ("data",),
                                       descriptions={"dataset": self._descriptions(self.datasets)})
        data_layout.addWidget(self.forms["data"])
        if "root" in self.forms["data"].editors:
            browse = QtWidgets.QToolButton()
            browse.setText("…")
            browse.setToolTip("Choose the dataset folder (or its labels file, for datasets that take one)")
            browse.clicked.connect(self._browse_root)
            self.forms["data"].editor("root").add_side_widget(browse)
        self.preview = DatasetPreview()
        self.preview.set_config_source(self.data_config)
        data_layout.addWidget(self.preview)
        self._add_section("data", "Dataset", data_box, layout)

        self.forms["method"] = MethodForm(engine_catalog.describe(MethodOptions), engine_catalog.describe_method,
                                          [m.name for m in self.methods],
                                          descriptions=self._descriptions(self.methods))
        self._add_section("method", "Method", self.forms["method"], layout)

        self.forms["train"] = FieldForm(engine_catalog.describe(TrainConfig), ("train",),
                                        suggestions={"device": engine_catalog.devices})
        self._add_section("train", "Training", self.forms["train"], layout)
        layout.addStretch(1)
        self.setWidget(body)
        align_labels([self.forms[k] for k in ("target", "data", "method", "train")])

        for form in self.forms.values():
            form.value_edited.connect(self.document.set)
        self.document.replaced.connect(self.load_from_document)
        self.document.changed.connect(self._document_changed)
        self._param_request: tuple[str, int] | None = None
        self._last_method: str | None = None
        self._last_arch: tuple[str, int] | None = None
        self.load_from_document()

    @staticmethod
    def _descriptions(entries: list[Any]) -> dict[str, str]:
        return {e.name: e.description for e in entries}

    def _add_section(self, key: str, title: str, body: QtWidgets.QWidget, layout: QtWidgets.QVBoxLayout) -> None:
        section = CollapsibleSection(title, body)
        section.setObjectName(f"section:{key}")
        self.sections[key] = section
        layout.addWidget(section)

    # -- document -> forms -------------------------------------------------------------
    def load_from_document(self) -> None:
        raw = self.document.raw
        self.forms["experiment"].set_values(raw)
        for key in ("target", "data", "method", "train"):
            section = raw.get(key)
            self.forms[key].set_values(section if isinstance(section, dict) else {})
        sources = raw.get("sources")
        self.sources.set_sources(sources if isinstance(sources, list) else [])
        self.ranking.clear()
        self._document_changed()

    def _document_changed(self) -> None:
        errors = self.document.error_map()
        for form in self.forms.values():
            form.set_errors(errors)
        self.sources.set_errors(errors)
        for key, section in self.sections.items():
            count = sum(1 for path in errors if path == key or path.startswith(key + ".") or
                        path.startswith(key + "["))
            section.set_badge(f"{count} problem{'s' if count != 1 else ''}" if count else "")
        method = self.document.get(("method", "name"))
        if method != self._last_method:  # the document swapped the section: show the new method's keys
            self._last_method = method
            section = self.document.get(("method",), {})
            self.forms["method"].set_values(section if isinstance(section, dict) else {})
        self._dataset_changed()
        # fields the chosen values never read are hidden; a dataset folder that is nowhere is marked
        apply_field_visibility(self)
        show_value_notes(self)
        mark_missing_root(self, errors)
        self._update_parameter_count()

    def _dataset_changed(self) -> None:
        entry = engine_catalog.entry(self.datasets, str(self.document.get(("data", "dataset"))))
        needs_root = True if entry is None else entry.needs_root
        form = self.forms["data"]
        for name in ("root", "download"):
            if name in form.editors:
                form.layout_.setRowVisible(form._rows[name], needs_root)
        video = bool(getattr(entry, "video", False))
        for name in ("clip_len", "frame_stride", "val_clips", "split"):  # keys only video datasets read
            if name in form.editors:
                form.layout_.setRowVisible(form._rows[name], video)
        self.sources.set_video_data(video)
        self.preview.config_changed()

    def data_config(self) -> DataConfig | None:
        if self.document.config is not None:
            return self.document.config.data
        # The rest of the preset may be unfinished; the dataset alone can still be previewed.
        try:
            return parse_section(DataConfig, self.document.get(("data",), {}), "data")
        except Exception:  # noqa: BLE001 - any problem means there is nothing to preview
            return None

    def _class_count(self) -> int:
        entry = engine_catalog.entry(self.datasets, str(self.document.get(("data", "dataset"))))
        classes = entry.num_classes if entry else None
        return int(classes) if isinstance(classes, int) and classes > 0 else 10

    def _update_parameter_count(self) -> None:
        arch = self.document.get(("target", "arch"))
        if engine_catalog.entry(self.architectures, str(arch)) is None:
            self.parameter_label.setText("")
            self._last_arch = None
            return
        request = (str(arch), self._class_count())
        if request == self._last_arch:
            return
        self._last_arch = request
        self._param_request = request
        self.parameter_label.setText("Counting parameters…")

        def done(count: int, request=request) -> None:
            if self._param_request == request:
                self.parameter_label.setText(f"{engine_catalog.format_count(count)} parameters "
                                             f"({request[1]} classes)")

        def failed(_error: WorkerError, request=request) -> None:
            if self._param_request == request:
                self.parameter_label.setText("")

        start_worker(lambda: engine_catalog.parameter_count(*request), returned=done, errored=failed,
                     name="sskt-parameter-count")

    def _browse_root(self) -> None:
        current = str(self.document.get(("data", "root")) or "")
        entry = engine_catalog.entry(self.datasets, str(self.document.get(("data", "dataset"))))
        file_filter = getattr(entry, "root_file_filter", "") if entry else ""
        if file_filter and self._root_is_file(current):
            chosen, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Dataset file", current,
                                                              f"{file_filter};;All files (*)")
        else:
            chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder", current)
        if chosen:
            self.forms["data"].editor("root").set_value(chosen)
            self.document.set(("data", "root"), chosen)

    def _root_is_file(self, current: str) -> bool:
        """A dataset whose root may be a folder or one file (multilabel-csv): ask which, unless
        the current value already says (an existing file, or an existing folder)."""
        if current and Path(current).expanduser().is_file():
            return True
        if current and Path(current).expanduser().is_dir():
            return False
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Question, "Dataset location",
                                    "Choose one labels file, or a folder that holds train and validation files?",
                                    parent=self)
        file_button = box.addButton("One file…", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.addButton("A folder…", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        return box.clickedButton() is file_button

    # -- navigation ----------------------------------------------------------------------
    def editor_for(self, path: str) -> Any:
        """The editor widget of a dotted path (for tests and for jumping to a problem)."""
        parts = parse_key_path(path)
        if not parts:
            return None
        if parts[0] == "sources":
            if len(parts) >= 3 and isinstance(parts[1], int):
                self.sources.list.setCurrentRow(parts[1])
                return self.sources.details.editors.get(parts[2])
            return self.sources
        if len(parts) == 1:
            return self.forms["experiment"].editors.get(parts[0])
        form = self.forms.get(str(parts[0]))
        return form.editors.get(str(parts[1])) if form else None

    def focus_field(self, path: str) -> None:
        editor = self.editor_for(path)
        parts = parse_key_path(path)
        if parts and str(parts[0]) in self.sections:
            self.sections[str(parts[0])].set_expanded(True)
        if editor is None:
            return
        QtCore.QTimer.singleShot(0, lambda: self.ensureWidgetVisible(editor, 20, 60))
        target = getattr(editor, "input", editor)
        target.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
