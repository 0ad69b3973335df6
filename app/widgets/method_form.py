"""The ``method:`` section: the method's name, then the keys of the chosen method only.

Each registered method declares its own options dataclass, so there is one form per method
(built from that dataclass) in a stack, and choosing a method shows its form. The widget
speaks the same small interface as ``FieldForm`` (``value_edited``, ``set_values``,
``set_errors``, ``editors``, ``labels``, ``editor``, ``visible_names``), so the setup panel
treats it like any other section.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6 import QtCore, QtWidgets

from app.widgets.field_editors import FieldEditor
from app.widgets.field_form import FieldForm

NAME = "name"


class MethodForm(QtWidgets.QWidget):
    value_edited = QtCore.Signal(tuple, object)

    def __init__(self, name_fields: list[dict[str, Any]], option_fields: Callable[[str], list[dict[str, Any]]],
                 methods: list[str], *, descriptions: dict[str, str] | None = None, parent=None):
        """``option_fields(method)`` describes one method's options dataclass (its name field
        included; it is shown once, above the stack)."""
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.name_form = FieldForm(name_fields, ("method",), descriptions={NAME: descriptions or {}})
        self.name_form.value_edited.connect(self.value_edited)
        layout.addWidget(self.name_form)
        self.stack = QtWidgets.QStackedWidget()
        layout.addWidget(self.stack)
        self.forms: dict[str, FieldForm] = {}
        for method in methods:
            form = FieldForm(option_fields(method), ("method",), skip=(NAME,))
            form.value_edited.connect(self.value_edited)
            self.forms[method] = form
            self.stack.addWidget(form)
        self._empty = QtWidgets.QWidget()  # a method with no options of its own, or an unknown name
        self.stack.addWidget(self._empty)
        self.current = ""

    # -- FieldForm's interface -------------------------------------------------------
    @property
    def editors(self) -> dict[str, FieldEditor]:
        return {**self.name_form.editors, **(self._form().editors if self._form() else {})}

    @property
    def labels(self) -> dict[str, QtWidgets.QLabel]:
        """Every label of every method's form (the setup panel aligns them all once)."""
        labels = dict(self.name_form.labels)
        for method, form in self.forms.items():
            labels.update({f"{method}.{key}": label for key, label in form.labels.items()})
        return labels

    def editor(self, name: str) -> FieldEditor:
        return self.editors[name]

    def visible_names(self) -> list[str]:
        return [NAME] + (list(self._form().editors) if self._form() else [])

    def set_values(self, values: dict[str, Any]) -> None:
        self.name_form.set_values(values)
        self.set_method(str(values.get(NAME, "")))
        if self._form() is not None:
            self._form().set_values(values)

    def set_errors(self, errors: dict[str, str]) -> None:
        self.name_form.set_errors(errors)
        if self._form() is not None:
            self._form().set_errors(errors)

    # -- switching -------------------------------------------------------------------
    def set_method(self, method: str) -> None:
        self.current = method
        form = self._form()
        shown = form if form is not None and form.editors else self._empty
        # A stack is as tall as its tallest page; hidden pages ignore their size, so the section
        # is as tall as the chosen method's keys.
        for index in range(self.stack.count()):
            page = self.stack.widget(index)
            policy = QtWidgets.QSizePolicy.Policy.Preferred if page is shown else QtWidgets.QSizePolicy.Policy.Ignored
            page.setSizePolicy(policy, policy)
        self.stack.setCurrentWidget(shown)
        self.stack.adjustSize()

    def _form(self) -> FieldForm | None:
        return self.forms.get(self.current)
