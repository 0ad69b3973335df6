"""The "Selected source" form: what a source's kind needs up front, the rest folded under Advanced.

Which keys apply to a kind comes from the engine (``SourceKindInfo.keys``); which of them are
advanced (how the source's pixels are prepared: input size, mean/std, pixel scale and offset, clip
frames, a class-names file) from the ``advanced`` flag of their ``option`` in ``SourceConfig``. A
newcomer adding a torchvision model then meets kind, architecture, weights and name, not eleven
fields; the folded part opens by itself when one of its fields is wrong or holds a value someone
set, so nothing that matters for the run is out of sight.

It offers what the setup panel and the tests use of a ``FieldForm`` (``editors``, ``labels``,
``editor``, ``set_values``, ``set_errors``, ``visible_names``, ``value_edited``, ``prefix``).
"""

from __future__ import annotations

from typing import Any, Iterable

from PySide6 import QtCore, QtWidgets

from app.widgets.collapsible_section import CollapsibleSection
from app.widgets.field_editors import field_label
from app.widgets.field_form import FieldForm
from sskt_engine.key_paths import KeyPath, format_key_path


def _same(value: Any, default: Any) -> bool:
    """Whether a value is its default (a mean read from YAML is a list, its default a tuple or None)."""
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    if value in ("", None) and default in ("", None):
        return True
    return value == default


class SourceDetailsForm(QtWidgets.QWidget):
    value_edited = QtCore.Signal(tuple, object)

    def __init__(self, fields: list[dict[str, Any]], prefix: KeyPath, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.main = FieldForm([d for d in fields if not d.get("advanced")], prefix)
        self.advanced = FieldForm([d for d in fields if d.get("advanced")], prefix)
        self.advanced_section = CollapsibleSection("Advanced", self.advanced, expanded=False)
        self.advanced_section.setObjectName("section:source-advanced")
        self.advanced_section.toggled.connect(self._update_badge)
        self.advanced_section.header.setToolTip("How the source's images are prepared (size, normalisation, "
                                                "clip frames): leave empty for the source's own")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.main)
        layout.addWidget(self.advanced_section)
        self.editors = {**self.main.editors, **self.advanced.editors}
        self.labels = {**self.main.labels, **self.advanced.labels}
        self._values: dict[str, Any] = {}
        self._errors: dict[str, str] = {}
        self._advanced_problems: set[str] = set()  # unfolded for once; a person may fold them again
        for form in (self.main, self.advanced):
            form.value_edited.connect(self._on_edit)
            form.value_edited.connect(self.value_edited)
        # one label width for both parts (the folded ones sit indented, as a part of the form)
        labels = list(self.labels.values())
        if labels:
            width = max(label.sizeHint().width() for label in labels)
            for label in labels:
                label.setMinimumWidth(width)

    # -- FieldForm's face ----------------------------------------------------------------
    @property
    def prefix(self) -> KeyPath:
        return self.main.prefix

    @prefix.setter
    def prefix(self, prefix: KeyPath) -> None:
        self.main.prefix = self.advanced.prefix = tuple(prefix)

    def editor(self, name: str):
        return self.editors[name]

    def set_values(self, values: dict[str, Any]) -> None:
        """Another source (or the same one reloaded): its problems count as new again."""
        self._values = dict(values)
        self._advanced_problems = set()
        self.main.set_values(values)
        self.advanced.set_values(values)

    def set_errors(self, errors: dict[str, str]) -> None:
        self._errors = dict(errors)
        self.main.set_errors(errors)
        self.advanced.set_errors(errors)
        problems = {name for name in self.advanced.visible_names() if self._error(name)}
        if problems - self._advanced_problems:
            self.advanced_section.set_expanded(True)  # a new problem is never folded away
        self._advanced_problems = problems
        self._update_badge()

    def visible_names(self) -> list[str]:
        """The keys shown for this kind, folded or not."""
        return self.main.visible_names() + self.advanced.visible_names()

    def _form_of(self, name: str) -> FieldForm:
        return self.main if name in self.main.editors else self.advanced

    def row_visible(self, name: str) -> bool:
        form = self._form_of(name)
        return form.layout_.isRowVisible(form._rows[name])

    def show_only(self, shown: Iterable[str]) -> None:
        """Show the rows of ``shown`` and hide the others; Advanced is hidden when none of its rows shows."""
        shown = set(shown)
        for name in self.editors:
            form = self._form_of(name)
            form.layout_.setRowVisible(form._rows[name], name in shown)
        self.advanced_section.setVisible(bool(self.advanced.visible_names()))

    # -- Advanced ------------------------------------------------------------------------
    def _error(self, name: str) -> str | None:
        return self._errors.get(format_key_path(self.prefix + (name,)))

    def _on_edit(self, path: tuple, value: Any) -> None:
        self._values[path[-1]] = value
        self._update_badge()

    def advanced_in_use(self) -> list[str]:
        """The shown advanced keys that hold a value someone set or a problem."""
        defaults = {name: editor.desc.get("default") for name, editor in self.advanced.editors.items()}
        return [name for name in self.advanced.visible_names()
                if self._error(name) or not _same(self._values.get(name), defaults[name])]

    def fold_advanced(self, *, keep_open: bool = False) -> None:
        """Unfold Advanced when one of its keys is set or wrong (or the person opened it for this
        source); fold it otherwise, so a fresh source shows only what its kind needs."""
        self.advanced_section.set_expanded(bool(self.advanced_in_use()) or keep_open)
        self._update_badge()

    def _update_badge(self, *_args: Any) -> None:
        """Beside the title: its problems (red, as other sections); folded, what is set in there
        (muted), so a value set long ago is no surprise."""
        problems = [n for n in self.advanced.visible_names() if self._error(n)]
        badge = self.advanced_section.badge
        if problems:
            text, style = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", "sectionBadge"
        else:
            in_use = [field_label(self.advanced.editors[n].desc) for n in self.advanced_in_use()]
            folded = not self.advanced_section.is_expanded()
            text, style = (f"{', '.join(in_use)} set" if in_use and folded else ""), "sectionNote"
        if badge.objectName() != style:
            badge.setObjectName(style)
            badge.style().unpolish(badge)
            badge.style().polish(badge)
        self.advanced_section.set_badge(text)
