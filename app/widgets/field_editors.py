"""Editors generated from ``describe_fields``: one per preset key, chosen by its type.

Each editor shows a raw value from the preset dict and hands back what the person
typed, even when it is wrong (text in a number field, a list that does not parse):
the engine's validation then names the problem and the editor is marked in place.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Callable, Sequence

from PySide6 import QtCore, QtWidgets

# Friendlier labels for terse key names; anything not here is the key, humanised,
# unless the engine's field declares a ``label``.
LABELS = {
    "lr": "Learning rate",
    "amp": "Mixed precision (AMP)",
    "val_split": "Validation split",
    "num_workers": "Loader workers",
    "labels_per_class": "Labels per class",
    "aux_loss": "Auxiliary loss",
    "head": "Head type",
    "arch": "Architecture",
    "nan_policy": "On NaN loss",
    "focal_gamma": "Focal gamma",
    "device_resident": "Data on device",
    "log_every": "Log every (steps)",
    "warmup_epochs": "Warmup epochs",
    "transfer_width": "Transfer width",
    "input_size": "Input size",
    "num_classes": "Classes",
    "image_size": "Image size",
}

# Placeholder text of optional fields when empty.
EMPTY_TEXT = {"labels_per_class": "all", "num_classes": "from the checkpoint"}


def field_label(desc: dict[str, Any]) -> str:
    return desc.get("label") or LABELS.get(desc["name"]) or desc["name"].replace("_", " ").capitalize()


def tooltip(desc: dict[str, Any]) -> str:
    parts = [desc.get("help") or ""]
    bounds = []
    if desc.get("min") is not None:
        bounds.append(f"at least {desc['min']:g}")
    if desc.get("above") is not None:
        bounds.append(f"greater than {desc['above']:g}")
    if desc.get("max") is not None:
        bounds.append(f"at most {desc['max']:g}")
    if bounds:
        parts.append("Allowed: " + ", ".join(bounds) + ".")
    default = desc.get("default")
    if default is not None and default != "":
        parts.append(f"Default: {format_value(default)}.")
    return "<p>" + "</p><p>".join(p for p in parts if p) + f"</p><p><code>{desc.get('path', desc['name'])}</code></p>"


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner[0], True
    return hint, False


class FieldEditor(QtWidgets.QWidget):
    """An input plus the line that says what is wrong with it."""

    edited = QtCore.Signal()

    def __init__(self, desc: dict[str, Any], input_widget: QtWidgets.QWidget, parent=None):
        super().__init__(parent)
        self.desc = desc
        self.input = input_widget
        self._help = tooltip(desc)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(input_widget)
        self.error_label = QtWidgets.QLabel()
        self.error_label.setObjectName("fieldError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        input_widget.setToolTip(self._help)
        self._updating = False

    def add_side_widget(self, widget: QtWidgets.QWidget) -> None:
        """Put a button (Browse…) to the right of the input."""
        layout = self.layout()
        layout.removeWidget(self.input)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        row.addWidget(self.input, 1)
        row.addWidget(widget)
        layout.insertLayout(0, row)

    # subclasses implement these two
    def value(self) -> Any:
        raise NotImplementedError

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        self._updating = True
        try:
            self._show(value)
        finally:
            self._updating = False

    def _emit(self, *_: Any) -> None:
        if not self._updating:
            self.edited.emit()

    def set_error(self, message: str | None) -> None:
        invalid = bool(message)
        if self.input.property("invalid") != invalid:
            self.input.setProperty("invalid", invalid)
            self.input.style().unpolish(self.input)
            self.input.style().polish(self.input)
        self.error_label.setText(message or "")
        self.error_label.setVisible(invalid)
        self.input.setToolTip(self._help if not invalid else f"<p><b>{message}</b></p>{self._help}")

    @property
    def error(self) -> str:
        return self.error_label.text() if self.error_label.isVisible() else ""


class BoolEditor(FieldEditor):
    def __init__(self, desc: dict[str, Any], parent=None):
        box = QtWidgets.QCheckBox()
        super().__init__(desc, box, parent)
        box.toggled.connect(self._emit)

    def value(self) -> Any:
        return self.input.isChecked()

    def _show(self, value: Any) -> None:
        self.input.setChecked(bool(value))


class ChoiceEditor(FieldEditor):
    """A combo box of the allowed values; ``descriptions`` (from a registry) become item
    tooltips and the line under the box."""

    def __init__(self, desc: dict[str, Any], choices: Sequence[str], descriptions: dict[str, str] | None = None,
                 parent=None):
        combo = QtWidgets.QComboBox()
        combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(10)
        super().__init__(desc, combo, parent)
        self.descriptions = descriptions or {}
        self.description_label = QtWidgets.QLabel()
        self.description_label.setObjectName("fieldDescription")
        self.description_label.setWordWrap(True)
        self.description_label.setVisible(bool(self.descriptions))
        self.layout().insertWidget(1, self.description_label)
        self.set_choices(choices)
        combo.currentIndexChanged.connect(self._changed)

    def set_choices(self, choices: Sequence[str]) -> None:
        current = self.input.currentData()
        self._updating = True
        try:
            self.input.clear()
            for key in choices:
                self.input.addItem(key, key)
                text = self.descriptions.get(key)
                if text:
                    self.input.setItemData(self.input.count() - 1, text, QtCore.Qt.ItemDataRole.ToolTipRole)
            if current is not None:
                self._show(current)
        finally:
            self._updating = False

    def _changed(self, *_: Any) -> None:
        self._describe()
        self._emit()

    def _describe(self) -> None:
        if self.descriptions:
            self.description_label.setText(self.descriptions.get(self.input.currentData() or "", ""))

    def value(self) -> Any:
        return self.input.currentData()

    def _show(self, value: Any) -> None:
        index = self.input.findData(value)
        if index < 0:
            # A value the registry does not know (an old preset, a removed plugin): keep it
            # visible so validation can name it rather than silently picking another.
            self.input.addItem(f"{value} (unknown)", value)
            index = self.input.count() - 1
        self.input.setCurrentIndex(index)
        self._describe()


class TextEditor(FieldEditor):
    def __init__(self, desc: dict[str, Any], parent=None, placeholder: str = ""):
        line = QtWidgets.QLineEdit()
        line.setPlaceholderText(placeholder)
        super().__init__(desc, line, parent)
        line.textEdited.connect(self._emit)

    def value(self) -> Any:
        return self.input.text()

    def _show(self, value: Any) -> None:
        self.input.setText("" if value is None else str(value))


class SuggestEditor(FieldEditor):
    """Free text with suggestions (devices: the ones this machine has, but any name is allowed)."""

    def __init__(self, desc: dict[str, Any], suggestions: Sequence[str], parent=None):
        combo = QtWidgets.QComboBox()
        combo.setEditable(True)
        combo.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        combo.addItems(list(suggestions))
        super().__init__(desc, combo, parent)
        combo.currentTextChanged.connect(self._emit)

    def value(self) -> Any:
        return self.input.currentText().strip()

    def _show(self, value: Any) -> None:
        self.input.setCurrentText("" if value is None else str(value))


class NumberEditor(FieldEditor):
    """A line edit, not a spin box: a spin box would clamp silently; here an out-of-range
    value stays visible and is marked. Up/Down step whole numbers; empty means None for
    optional keys."""

    def __init__(self, desc: dict[str, Any], kind: type, optional: bool, parent=None):
        line = QtWidgets.QLineEdit()
        line.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        if optional:
            line.setPlaceholderText(EMPTY_TEXT.get(desc["name"], "default"))
        super().__init__(desc, line, parent)
        self.kind = kind
        self.optional = optional
        line.textEdited.connect(self._emit)
        line.installEventFilter(self)

    def value(self) -> Any:
        text = self.input.text().strip()
        if text == "":
            return None if self.optional else text
        try:
            if self.kind is int:
                try:
                    return int(text)
                except ValueError:
                    number = float(text)
                    return int(number) if number.is_integer() else number
            return float(text)
        except ValueError:
            return text  # validation says "must be a number, not text ..."

    def _show(self, value: Any) -> None:
        self.input.setText(format_value(value))

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt API)
        if obj is self.input and event.type() == QtCore.QEvent.Type.KeyPress and self.kind is int:
            key = event.key()
            if key in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_Down):
                current = self.value()
                if isinstance(current, int):
                    step = 1 if key == QtCore.Qt.Key.Key_Up else -1
                    self.input.setText(str(current + step))
                    self._emit()
                return True
        return super().eventFilter(obj, event)


class SequenceEditor(FieldEditor):
    """Comma-separated numbers for tuple keys (milestones, mean, std)."""

    def __init__(self, desc: dict[str, Any], item: type, optional: bool, parent=None):
        line = QtWidgets.QLineEdit()
        line.setPlaceholderText("default" if optional else "comma-separated")
        super().__init__(desc, line, parent)
        self.item = item
        self.optional = optional
        line.textEdited.connect(self._emit)

    def value(self) -> Any:
        text = self.input.text().strip().strip("[]()")
        if text == "":
            return None if self.optional else []
        parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
        out: list[Any] = []
        for part in parts:
            if self.item is str:
                out.append(part)
                continue
            try:
                out.append(int(part) if self.item is int else float(part))
            except ValueError:
                out.append(part)  # validation names the bad item
        return out

    def _show(self, value: Any) -> None:
        self.input.setText(format_value(value))


def make_editor(desc: dict[str, Any], *, descriptions: dict[str, str] | None = None,
                suggestions: Callable[[], Sequence[str]] | None = None) -> FieldEditor:
    hint, optional = _unwrap_optional(desc["type"])
    choices = desc.get("choices")
    if hint is bool:
        return BoolEditor(desc)
    if hint is str and choices:
        return ChoiceEditor(desc, choices, descriptions)
    if hint is str and suggestions is not None:
        return SuggestEditor(desc, suggestions())
    if hint in (int, float):
        return NumberEditor(desc, hint, optional)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        return SequenceEditor(desc, args[0] if args else float, optional)
    return TextEditor(desc)

