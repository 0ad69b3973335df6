"""Undo and redo for the setup form: snapshots of the preset being edited.

Every edit of the document (a field, a source added, the method switched) is a step; edits that
come within ``MERGE_S`` of each other (typing a number key by key) are one step. Opening or
making a preset starts a new history. Undo puts an earlier snapshot back into the document,
which reloads the forms from it as if it had been opened, but keeps its file and saved state.
"""

from __future__ import annotations

import copy
import time

from PySide6 import QtCore

from app.preset_document import PresetDocument

MERGE_S = 1.0
MAX_STEPS = 200


class EditHistory(QtCore.QObject):
    changed = QtCore.Signal()  # can_undo / can_redo may have changed

    def __init__(self, document: PresetDocument, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.document = document
        self._steps: list[dict] = [copy.deepcopy(document.raw)]
        self._index = 0
        self._last_edit = 0.0
        self._restoring = False
        document.replaced.connect(self._reset)
        document.changed.connect(self._edited)

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._steps) - 1

    def _reset(self) -> None:
        if self._restoring:
            return
        self._steps = [copy.deepcopy(self.document.raw)]
        self._index = 0
        self._last_edit = 0.0
        self.changed.emit()

    def _edited(self) -> None:
        if self._restoring or self.document.raw == self._steps[self._index]:
            return
        now = time.monotonic()
        del self._steps[self._index + 1:]  # a new edit ends the redo branch
        if self._index > 0 and now - self._last_edit < MERGE_S:
            self._steps[self._index] = copy.deepcopy(self.document.raw)  # same burst of typing
        else:
            self._steps.append(copy.deepcopy(self.document.raw))
            if len(self._steps) > MAX_STEPS:
                del self._steps[0]
            self._index = len(self._steps) - 1
        self._last_edit = now
        self.changed.emit()

    def undo(self) -> None:
        if self.can_undo():
            self._go(self._index - 1)

    def redo(self) -> None:
        if self.can_redo():
            self._go(self._index + 1)

    def _go(self, index: int) -> None:
        self._index = index
        self._last_edit = 0.0  # the next edit is a step of its own
        doc = self.document
        self._restoring = True
        try:
            doc.raw = copy.deepcopy(self._steps[index])
            doc.validate()
            doc.replaced.emit()  # the forms reload from the document
            doc.changed.emit()
            doc.state_changed.emit()
        finally:
            self._restoring = False
        self.changed.emit()
