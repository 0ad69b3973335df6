"""Message boxes used across the window: one clear sentence, details folded away."""

from __future__ import annotations

from PySide6 import QtWidgets


def show_error(parent: QtWidgets.QWidget | None, title: str, message: str, detail: str = "") -> QtWidgets.QMessageBox:
    """A modal error: ``message`` is the one sentence, ``detail`` (a traceback) sits behind
    "Show Details…"."""
    box = QtWidgets.QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QtWidgets.QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(message)
    if detail.strip():
        box.setDetailedText(detail)
    box.setStandardButtons(QtWidgets.QMessageBox.StandardButton.Ok)
    box.exec()
    return box


def ask_save_changes(parent: QtWidgets.QWidget, name: str) -> QtWidgets.QMessageBox.StandardButton:
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(QtWidgets.QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved changes")
    box.setText(f"Save the changes to {name}?")
    box.setInformativeText("Your changes are lost if you don't save them.")
    buttons = QtWidgets.QMessageBox.StandardButton
    box.setStandardButtons(buttons.Save | buttons.Discard | buttons.Cancel)
    box.setDefaultButton(buttons.Save)
    return buttons(box.exec())


def ask_stop_run(parent: QtWidgets.QWidget) -> bool:
    buttons = QtWidgets.QMessageBox.StandardButton
    answer = QtWidgets.QMessageBox.question(
        parent, "A run is in progress",
        "A run is still training. Stop it and quit? The run is saved as stopped and can be resumed later.",
        buttons.Yes | buttons.Cancel, buttons.Cancel)
    return answer == buttons.Yes
