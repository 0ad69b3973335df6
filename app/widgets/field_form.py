"""A form for one preset section (a dataclass), generated from ``describe_fields``."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from PySide6 import QtCore, QtWidgets

from app.widgets.field_editors import FieldEditor, field_label, make_editor
from sskt_engine.key_paths import KeyPath, format_key_path


class FieldForm(QtWidgets.QWidget):
    """Editors for the keys of ``fields``; ``value_edited(path, value)`` on every edit.

    ``prefix`` is where the section sits in the preset (("train",), ("sources", 2)).
    """

    value_edited = QtCore.Signal(tuple, object)

    def __init__(self, fields: list[dict[str, Any]], prefix: KeyPath, *, skip: Sequence[str] = (),
                 descriptions: dict[str, dict[str, str]] | None = None,
                 suggestions: dict[str, Callable[[], Sequence[str]]] | None = None, parent=None):
        super().__init__(parent)
        self.prefix = tuple(prefix)
        self.editors: dict[str, FieldEditor] = {}
        self.labels: dict[str, QtWidgets.QLabel] = {}
        self._rows: dict[str, int] = {}
        self.layout_ = QtWidgets.QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.layout_.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.layout_.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.DontWrapRows)
        descriptions = descriptions or {}
        suggestions = suggestions or {}
        for desc in fields:
            name = desc["name"]
            if name in skip:
                continue
            desc = {**desc, "path": format_key_path(self.prefix + (name,))}
            editor = make_editor(desc, descriptions=descriptions.get(name), suggestions=suggestions.get(name))
            editor.setObjectName(f"field:{desc['path']}")
            editor.edited.connect(lambda n=name: self._edited(n))
            label = QtWidgets.QLabel(field_label(desc))
            label.setToolTip(editor.input.toolTip())
            label.setBuddy(editor.input)
            self._rows[name] = self.layout_.rowCount()
            self.layout_.addRow(label, editor)
            self.editors[name] = editor
            self.labels[name] = label

    def _edited(self, name: str) -> None:
        self.value_edited.emit(self.prefix + (name,), self.editors[name].value())

    def set_values(self, values: dict[str, Any]) -> None:
        for name, editor in self.editors.items():
            if name in values:
                editor.set_value(values[name])
            else:
                editor.set_value(editor.desc.get("default"))

    def set_errors(self, errors: dict[str, str]) -> None:
        """``errors`` maps dotted paths to reasons; each editor shows its own."""
        for name, editor in self.editors.items():
            editor.set_error(errors.get(format_key_path(self.prefix + (name,))))

    def visible_names(self) -> list[str]:
        return [n for n, row in self._rows.items() if self.layout_.isRowVisible(row)]

    def editor(self, name: str) -> FieldEditor:
        return self.editors[name]


def align_labels(forms: list[FieldForm]) -> None:
    """One label column width for several forms, so their inputs line up."""
    labels = [label for form in forms for label in form.labels.values()]
    if labels:
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)
