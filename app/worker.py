"""The one way the GUI runs work off its thread: a function on its own ``QThread`` that
reports back through queued signals (napari's ``thread_worker`` idea).

    worker = Worker(fn)                 # fn() returns a value, or is a generator
    worker.yielded.connect(...)         # each value the generator yields (or control.yield_value)
    worker.returned.connect(...)        # its return value
    worker.errored.connect(...)         # a WorkerError: the exception and its traceback text
    worker.finished.connect(...)        # always, last, once the thread has ended
    worker.start()
    worker.quit()                       # asks it to stop

``Worker(fn, takes_control=True)`` calls ``fn(control)`` instead: a ``WorkerControl`` whose
``yield_value`` feeds ``yielded`` and whose ``quit_event`` (a ``threading.Event``) is what engine
code that takes a ``stop_event`` (the trainer, a study) checks. A generator is asked to quit
between two values: it is closed and ``aborted`` is emitted instead of ``returned``; a function
with a control decides itself how to end (the trainer stops within one step and returns).

Every signal is delivered in the thread that made the worker (the GUI thread) in the order
started, yielded..., returned | errored | aborted, finished; ``finished`` comes only once the
thread has ended, so a test or a closing window that sees it never leaves a thread behind.
An exception in the function becomes ``errored`` (printed to stderr when nothing listens):
it never reaches Qt or the window. Live workers are kept in a module-level set, so closing the
window can wait for all of them (``wait_for_all``).
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from PySide6 import QtCore

_live: set["Worker"] = set()


def _niceness() -> int:
    """Opt-in (SSKT_STUDIO_TRAINING_NICENESS=N): a lower priority for work threads keeps the
    window smoother when the CPU is short, but on a machine busy with other programs it also
    loses CPU to them (on the shared 2-core box: in-app/headless 0.94 at 3 against ~1.0 at 0)."""
    try:
        return max(0, int(os.environ.get("SSKT_STUDIO_TRAINING_NICENESS", "0")))
    except ValueError:
        return 0


TRAINING_NICENESS = _niceness()


def lower_this_threads_priority(steps: int | None = None) -> None:
    """Make the calling thread (and the compute threads it starts) yield to the GUI thread
    when the CPU is contended. On Linux a thread is a task with its own nice value, inherited
    by the threads it creates (torch's CPU thread pool among them); elsewhere this does nothing."""
    steps = TRAINING_NICENESS if steps is None else steps
    if not sys.platform.startswith("linux") or steps <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except (AttributeError, OSError):
        pass


@dataclass(frozen=True)
class WorkerError:
    """An exception raised in a worker, with its traceback formatted in the worker's thread
    (the frames themselves stay there: they may hold tensors or objects of that thread)."""

    exception: BaseException
    detail: str

    @property
    def sentence(self) -> str:
        """The exception's first line (its type name when it has no message)."""
        text = str(self.exception).strip()
        return text.splitlines()[0] if text else type(self.exception).__name__


class WorkerControl:
    """What a function started with ``takes_control=True`` gets: a way to hand values to the
    GUI thread as they come, and the quit request."""

    def __init__(self, emit: Callable[[Any], None], quit_event: threading.Event):
        self._emit = emit
        self.quit_event = quit_event

    def yield_value(self, value: Any) -> None:
        """Deliver ``value`` through the worker's ``yielded`` signal (queued; safe from any thread)."""
        self._emit(value)

    def quit_requested(self) -> bool:
        return self.quit_event.is_set()


class _Runner(QtCore.QObject):
    """Lives in the worker's thread and runs the function there; its signals are queued to
    the ``Worker`` in the GUI thread."""

    yielded = QtCore.Signal(object)
    returned = QtCore.Signal(object)
    errored = QtCore.Signal(object)
    aborted = QtCore.Signal()
    done = QtCore.Signal()

    def __init__(self, fn: Callable[..., Any], takes_control: bool, quit_event: threading.Event):
        super().__init__()
        self._fn = fn
        self._takes_control = takes_control
        self._quit = quit_event

    @QtCore.Slot()
    def run(self) -> None:
        lower_this_threads_priority()
        try:
            if self._takes_control:
                result = self._fn(WorkerControl(self.yielded.emit, self._quit))
            else:
                result = self._fn()
            if inspect.isgenerator(result):
                finished, result = self._iterate(result)
                if not finished:
                    self.aborted.emit()
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread as data, never raised there
            self.errored.emit(WorkerError(exc, traceback.format_exc()))
        else:
            self.returned.emit(result)
        finally:
            self.done.emit()

    def _iterate(self, generator: Iterator[Any]) -> tuple[bool, Any]:
        """(ran to its end, its return value); a quit request closes it between two values."""
        while True:
            if self._quit.is_set():
                generator.close()  # runs the generator's finally blocks
                return False, None
            try:
                value = next(generator)
            except StopIteration as stop:
                return True, stop.value
            self.yielded.emit(value)


class Worker(QtCore.QObject):
    """A function run once on its own QThread; see the module's docstring."""

    started = QtCore.Signal()
    yielded = QtCore.Signal(object)
    returned = QtCore.Signal(object)
    errored = QtCore.Signal(object)  # WorkerError
    aborted = QtCore.Signal()  # a generator asked to quit stopped before its end
    finished = QtCore.Signal()

    def __init__(self, fn: Callable[..., Any], *, takes_control: bool = False, name: str = "sskt-worker"):
        # No Qt parent: a parent deleted while the thread runs would take the worker with it;
        # the module's set of live workers keeps it until its thread has ended.
        super().__init__()
        self._fn = fn
        self._takes_control = takes_control
        self._quit = threading.Event()
        self._discarded = False
        self._thread: QtCore.QThread | None = None
        self._runner: _Runner | None = None
        self._ended = False
        self.name = name

    # -- commands -------------------------------------------------------------------------
    def start(self) -> "Worker":
        if self._thread is not None or self._ended:
            raise RuntimeError("a Worker runs once; make a new one")
        thread = QtCore.QThread()
        thread.setObjectName(self.name)
        runner = _Runner(self._fn, self._takes_control, self._quit)
        runner.moveToThread(thread)
        thread.started.connect(runner.run)
        queued = QtCore.Qt.ConnectionType.QueuedConnection
        runner.yielded.connect(self._on_yielded, queued)
        runner.returned.connect(self._on_returned, queued)
        runner.errored.connect(self._on_errored, queued)
        runner.aborted.connect(self._on_aborted, queued)
        # quit() is thread-safe; a queued quit would wait for the GUI thread, which may itself
        # be blocked in wait()
        runner.done.connect(thread.quit, QtCore.Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished, queued)
        self._thread, self._runner = thread, runner
        _live.add(self)
        thread.start()
        self.started.emit()
        return self

    def quit(self) -> None:
        """Ask the function to stop: a generator is closed before its next value; a function
        with a control sees ``quit_requested()`` (or its ``quit_event``) and ends itself."""
        self._quit.set()

    def cancel(self) -> None:
        """Quit, and drop whatever it still yields or returns (its ``finished`` still comes):
        for a result nobody wants any more, such as a preview of settings changed since."""
        self._discarded = True
        self._quit.set()

    def quit_requested(self) -> bool:
        return self._quit.is_set()

    def is_running(self) -> bool:
        """True from start() until ``finished`` has been emitted."""
        return self._thread is not None

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the thread has ended, then deliver its queued signals (``finished`` too);
        True when it ended in time."""
        thread = self._thread
        if thread is None:
            return True
        deadline = (QtCore.QDeadlineTimer(timeout_ms) if timeout_ms >= 0
                    else QtCore.QDeadlineTimer(QtCore.QDeadlineTimer.ForeverConstant.Forever))
        if not thread.wait(deadline):
            return False
        QtCore.QCoreApplication.sendPostedEvents()
        QtCore.QCoreApplication.processEvents()
        return True

    # -- from the worker's thread, delivered here -------------------------------------------
    @QtCore.Slot(object)
    def _on_yielded(self, value: Any) -> None:
        if not self._discarded:
            self.yielded.emit(value)

    @QtCore.Slot(object)
    def _on_returned(self, value: Any) -> None:
        if not self._discarded:
            self.returned.emit(value)

    @QtCore.Slot(object)
    def _on_errored(self, error: WorkerError) -> None:
        if self._discarded:
            return
        if self.receivers(QtCore.SIGNAL("errored(PyObject)")) > 0:
            self.errored.emit(error)
        else:  # nobody listens: say so where a developer looks, never raise into Qt
            print(f"error in background work {self.name!r}:\n{error.detail}", file=sys.stderr)

    @QtCore.Slot()
    def _on_aborted(self) -> None:
        if not self._discarded:
            self.aborted.emit()

    @QtCore.Slot()
    def _on_thread_finished(self) -> None:
        thread, runner = self._thread, self._runner
        self._thread, self._runner = None, None
        self._ended = True
        if runner is not None:
            runner.deleteLater()
        if thread is not None:
            thread.deleteLater()
        _live.discard(self)
        self.finished.emit()


def start_worker(fn: Callable[..., Any], *, returned: Callable[[Any], None] | None = None,
                 errored: Callable[[WorkerError], None] | None = None,
                 yielded: Callable[[Any], None] | None = None, finished: Callable[[], None] | None = None,
                 takes_control: bool = False, name: str = "sskt-worker") -> Worker:
    """Make a Worker, connect the given callbacks (run in the GUI thread) and start it."""
    worker = Worker(fn, takes_control=takes_control, name=name)
    for signal, slot in ((worker.yielded, yielded), (worker.returned, returned), (worker.errored, errored),
                         (worker.finished, finished)):
        if slot is not None:
            signal.connect(slot)
    return worker.start()


def running_workers() -> list[Worker]:
    return list(_live)


def wait_for_all(timeout_ms: int = 30000) -> bool:
    """Block until every worker's thread has ended and its signals are delivered; True when all
    did in time."""
    timer = QtCore.QDeadlineTimer(timeout_ms)
    for worker in list(_live):
        thread = worker._thread
        if thread is not None and not thread.wait(timer):
            return False
    # Deliver the queued results and the finished signals.
    QtCore.QCoreApplication.sendPostedEvents()
    QtCore.QCoreApplication.processEvents()
    return True
