"""The small dialogs of the runs table's Rename…, Tags… and Note… (``sskt_engine.run_labels``).

Each returns the text the user confirmed, or None when they cancelled; the runs panel checks
and writes it. Kept small (a line, or a few lines of note) so each fits a 1280x720 screen.
"""

from __future__ import annotations

from PySide6 import QtWidgets

from sskt_engine.run_labels import MAX_NOTE_CHARS
from sskt_engine.runs import RunInfo


def ask_name(parent: QtWidgets.QWidget, info: RunInfo) -> str | None:
    text, ok = QtWidgets.QInputDialog.getText(
        parent, "Rename run",
        f"Name shown for this run (empty: its own name, “{info.name}”).\n"
        f"The folder keeps its name: {info.path.name}",
        QtWidgets.QLineEdit.EchoMode.Normal, info.labels.name or info.name)
    if not ok:
        return None
    text = text.strip()
    return "" if text == info.name else text  # its own name again: no label


def ask_tags(parent: QtWidgets.QWidget, info: RunInfo) -> str | None:
    text, ok = QtWidgets.QInputDialog.getText(
        parent, "Tags", f"Tags of {info.display_name}, separated by spaces or commas (each one word):",
        QtWidgets.QLineEdit.EchoMode.Normal, " ".join(info.labels.tags))
    return text if ok else None


class NoteDialog(QtWidgets.QDialog):
    """A few lines of free text about a run."""

    def __init__(self, info: RunInfo, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Note")
        layout = QtWidgets.QVBoxLayout(self)
        label = QtWidgets.QLabel(f"Note on {info.display_name} (saved in its run folder, found by the filter):")
        label.setWordWrap(True)
        layout.addWidget(label)
        self.editor = QtWidgets.QPlainTextEdit(info.labels.note)
        self.editor.setObjectName("runNote")
        self.editor.setTabChangesFocus(True)
        self.editor.setPlaceholderText("What this run tried, what happened")
        layout.addWidget(self.editor, 1)
        self.count = QtWidgets.QLabel()
        self.count.setObjectName("hint")
        layout.addWidget(self.count)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Save
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.editor.textChanged.connect(self._count)
        self._count()
        self.resize(460, 260)  # a small dialog: fits 1280x720 with room around it

    def _count(self) -> None:
        used = len(self.editor.toPlainText())
        self.count.setText(f"{used} / {MAX_NOTE_CHARS} characters" if used > MAX_NOTE_CHARS * 0.8 else "")

    def text(self) -> str:
        return self.editor.toPlainText()


def ask_note(parent: QtWidgets.QWidget, info: RunInfo) -> str | None:
    dialog = NoteDialog(info, parent)
    return dialog.text() if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted else None
