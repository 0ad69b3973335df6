"""Python's cyclic garbage collector, run only in the GUI thread.

Left automatic, the collector runs in whichever thread happens to allocate, often the
training thread; when it frees a Qt object that belongs to the GUI thread (a curve taken
off a plot, a closed dialog) Qt complains, or crashes. So automatic collection is off
while the app runs and a timer in the GUI thread collects instead (the approach of
pyqtgraph's GarbageCollector).
"""

from __future__ import annotations

import gc

from PySide6 import QtCore


class MainThreadGarbageCollector(QtCore.QObject):
    def __init__(self, interval_ms: int = 500, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        self._was_enabled = gc.isenabled()

    def start(self) -> "MainThreadGarbageCollector":
        gc.disable()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    @QtCore.Slot()
    def check(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if all(counts[g] > self.threshold[g] for g in range(generation + 1)):
                gc.collect(generation)
                return
