"""Runs the engine's Trainer on a QThread and hands its events to the GUI thread.

The worker object calls ``Trainer.run()``; the trainer's ``on_event`` callback emits a
signal from the worker thread, which Qt queues to the controller in the GUI thread. The
only state shared across threads is the ``threading.Event`` that asks for a stop.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore

from sskt_engine.config import ExperimentConfig
from sskt_engine.errors import UserInputError
from sskt_engine.events import Event, RunFailed, RunFinished, RunStarted

def _niceness() -> int:
    """Opt-in (SSKT_STUDIO_TRAINING_NICENESS=N): a lower training priority keeps the window
    smoother when the CPU is short, but on a machine busy with other programs it also loses
    CPU to them (on the shared 2-core box: in-app/headless 0.94 at 3 against ~1.0 at 0)."""
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


# (on_event, stop_event) -> an object with run() -> RunFolder
TrainerStarter = Callable[[Callable[[Event], None], threading.Event], Any]


class TrainingWorker(QtCore.QObject):
    event = QtCore.Signal(object)
    input_error = QtCore.Signal(str)
    crashed = QtCore.Signal(str, str)
    done = QtCore.Signal(str)  # the run folder, "" when none was made

    def __init__(self, start: TrainerStarter, stop_event: threading.Event):
        super().__init__()
        self._start = start
        self._stop = stop_event

    @QtCore.Slot()
    def run(self) -> None:
        folder = ""
        lower_this_threads_priority()
        try:
            trainer = self._start(self.event.emit, self._stop)
            result = trainer.run()
            folder = str(getattr(result, "path", result) or "")
        except UserInputError as exc:
            self.input_error.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug or a runtime failure: shown, not raised
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.crashed.emit(f"Training stopped because of an unexpected error: {message}", traceback.format_exc())
        finally:
            self.done.emit(folder)


class RunController(QtCore.QObject):
    """Start, stop and resume runs; one at a time.

    Signals arrive in the GUI thread: ``event`` for every trainer event, ``failed`` for a
    failure (RunFailed, input error or crash: a sentence and the detail), ``busy_changed``
    when a run starts and when its thread has ended.
    """

    event = QtCore.Signal(object)
    failed = QtCore.Signal(str, str)
    finished = QtCore.Signal(str, str)  # run folder, status ("finished", "stopped", "failed", "error")
    busy_changed = QtCore.Signal(bool)

    def __init__(self, trainer_class: Any = None, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._trainer_class = trainer_class
        self._thread: QtCore.QThread | None = None
        self._worker: TrainingWorker | None = None
        self._stop = threading.Event()
        self.run_dir: str = ""
        self.last_status: str = ""
        self.events_received = 0

    # -- trainer ------------------------------------------------------------------------
    def trainer_class(self) -> Any:
        if self._trainer_class is None:
            from app import engine_catalog

            self._trainer_class = engine_catalog.trainer_class()
        return self._trainer_class

    def set_trainer_class(self, cls: Any) -> None:
        self._trainer_class = cls

    def is_running(self) -> bool:
        return self._thread is not None

    # -- commands -----------------------------------------------------------------------
    def start(self, config: ExperimentConfig, runs_root: Path | None) -> bool:
        cls = self.trainer_class()
        if cls is None or self.is_running():
            return False
        return self._launch(lambda on_event, stop: cls(config, runs_root=runs_root, on_event=on_event,
                                                       stop_event=stop))

    def resume(self, run_dir: Path, runs_root: Path | None) -> bool:
        cls = self.trainer_class()
        if cls is None or self.is_running():
            return False
        return self._launch(lambda on_event, stop: cls.resume(Path(run_dir), runs_root=runs_root,
                                                              on_event=on_event, stop_event=stop))

    def stop(self) -> None:
        """Ask the trainer to stop; it does within one training step."""
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _launch(self, start: TrainerStarter) -> bool:
        self._stop = threading.Event()
        self.run_dir = ""
        self.last_status = ""
        self.events_received = 0
        thread = QtCore.QThread()
        thread.setObjectName("sskt-training")
        worker = TrainingWorker(start, self._stop)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        queued = QtCore.Qt.ConnectionType.QueuedConnection
        worker.event.connect(self._on_event, queued)
        worker.input_error.connect(self._on_input_error, queued)
        worker.crashed.connect(self._on_crash, queued)
        worker.done.connect(self._on_done, queued)
        worker.done.connect(thread.quit, QtCore.Qt.ConnectionType.DirectConnection)  # quit is thread-safe; a queued
        # quit would wait for the GUI thread, which may itself be waiting in wait()
        thread.finished.connect(self._on_thread_finished, queued)
        self._thread, self._worker = thread, worker
        thread.start()
        self.busy_changed.emit(True)
        return True

    # -- worker -> GUI thread -----------------------------------------------------------
    @QtCore.Slot(object)
    def _on_event(self, event: Event) -> None:
        self.events_received += 1
        if isinstance(event, RunStarted):
            self.run_dir = event.run_dir
        elif isinstance(event, RunFinished):
            self.last_status = event.status
        elif isinstance(event, RunFailed):
            self.last_status = "failed"
        self.event.emit(event)
        if isinstance(event, RunFailed):
            self.failed.emit(event.message, event.detail)

    @QtCore.Slot(str)
    def _on_input_error(self, message: str) -> None:
        self.last_status = "error"
        self.failed.emit(message, "")

    @QtCore.Slot(str, str)
    def _on_crash(self, message: str, detail: str) -> None:
        self.last_status = "error"
        self.failed.emit(message, detail)

    @QtCore.Slot(str)
    def _on_done(self, folder: str) -> None:
        if folder:
            self.run_dir = folder

    @QtCore.Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread, self._worker = None, None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.busy_changed.emit(False)
        self.finished.emit(self.run_dir, self.last_status or ("stopped" if self._stop.is_set() else "finished"))

    # -- shutdown -----------------------------------------------------------------------
    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the training thread has ended (events still queued are delivered)."""
        thread = self._thread
        if thread is None:
            return True
        ok = thread.wait(QtCore.QDeadlineTimer(timeout_ms) if timeout_ms >= 0 else QtCore.QDeadlineTimer(
            QtCore.QDeadlineTimer.ForeverConstant.Forever))
        QtCore.QCoreApplication.sendPostedEvents()
        QtCore.QCoreApplication.processEvents()
        return ok
