"""One-shot functions off the GUI thread (dataset preview, parameter counts, predictions).

Each call gets its own ``QThread`` with a worker object; results come back through a
queued signal to a task object that lives in the GUI thread. Live tasks are kept in a
module-level set so closing the window (and the tests) can wait for all of them.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

from PySide6 import QtCore

_live: set["BackgroundTask"] = set()


class _Worker(QtCore.QObject):
    done = QtCore.Signal(object)
    failed = QtCore.Signal(object, str)

    def __init__(self, fn: Callable[[], Any]):
        super().__init__()
        self._fn = fn

    @QtCore.Slot()
    def run(self) -> None:
        from app.run_controller import lower_this_threads_priority

        lower_this_threads_priority()
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread as data
            self.failed.emit(exc, traceback.format_exc())
        else:
            self.done.emit(result)


class BackgroundTask(QtCore.QObject):
    """Runs ``fn`` in a new thread; ``on_done(result)`` or ``on_error(exc, detail)`` run in the GUI thread."""

    def __init__(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
                 on_error: Callable[[BaseException, str], None] | None = None):
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error
        self.cancelled = False
        self.thread = QtCore.QThread()
        self.thread.setObjectName("sskt-background")
        self._worker = _Worker(fn)
        self._worker.moveToThread(self.thread)
        self.thread.started.connect(self._worker.run)
        self._worker.done.connect(self._done, QtCore.Qt.ConnectionType.QueuedConnection)
        self._worker.failed.connect(self._failed, QtCore.Qt.ConnectionType.QueuedConnection)
        self._worker.done.connect(self.thread.quit, QtCore.Qt.ConnectionType.DirectConnection)
        self._worker.failed.connect(self.thread.quit, QtCore.Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(self._cleanup)

    def start(self) -> "BackgroundTask":
        _live.add(self)
        self.thread.start()
        return self

    def cancel(self) -> None:
        """The result will be dropped (the function itself runs to its end)."""
        self.cancelled = True

    @QtCore.Slot(object)
    def _done(self, result: Any) -> None:
        if not self.cancelled:
            self._on_done(result)

    @QtCore.Slot(object, str)
    def _failed(self, exc: BaseException, detail: str) -> None:
        if not self.cancelled and self._on_error is not None:
            self._on_error(exc, detail)

    @QtCore.Slot()
    def _cleanup(self) -> None:
        _live.discard(self)


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None],
                      on_error: Callable[[BaseException, str], None] | None = None) -> BackgroundTask:
    return BackgroundTask(fn, on_done, on_error).start()


def live_tasks() -> int:
    return len(_live)


def wait_for_all(timeout_ms: int = 30000) -> bool:
    """Block until every background thread has ended; True when all did in time."""
    timer = QtCore.QDeadlineTimer(timeout_ms)
    for task in list(_live):
        if not task.thread.wait(timer):
            return False
    # Deliver the queued results and the cleanup slots.
    QtCore.QCoreApplication.processEvents()
    return True
