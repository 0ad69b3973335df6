"""Runs the engine's Trainer on a worker thread (``app.worker.Worker``) and hands its events
to the GUI thread.

The worker calls ``Trainer.run()``; the trainer's ``on_event`` callback yields each event,
which Qt queues to the controller in the GUI thread. The only state shared across threads
is the worker's quit request, the ``threading.Event`` the trainer checks every step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore

from app.run_history import replay_before
from app.worker import Worker, WorkerControl, WorkerError
from sskt_engine.config import ExperimentConfig
from sskt_engine.errors import StoppedBeforeStart, UserInputError
from sskt_engine.events import Event, RunFailed, RunFinished, RunStarted

# (on_event, stop_event) -> an object with run() -> RunFolder
TrainerStarter = Callable[[Callable[[Event], None], threading.Event], Any]


@dataclass(frozen=True)
class RunHistory:
    """The recorded Progress and EpochEnd events of the epochs a resumed run had done before."""

    run_dir: str
    events: tuple[Event, ...]


def train(start: TrainerStarter, control: WorkerControl) -> str:
    """The training thread's work: build the trainer, run it, return its run folder ("" when
    none was made). A resumed run's earlier events are read here, in this thread, right after
    its RunStarted: the log of a long run is large, and the GUI thread never reads it."""

    def on_event(event: Event) -> None:
        control.yield_value(event)
        if isinstance(event, RunStarted) and event.start_epoch > 0:
            control.yield_value(RunHistory(event.run_dir, tuple(replay_before(Path(event.run_dir),
                                                                              event.start_epoch))))

    result = start(on_event, control.quit_event).run()
    return str(getattr(result, "path", result) or "")


class RunController(QtCore.QObject):
    """Start, stop and resume runs; one at a time.

    Signals arrive in the GUI thread: ``event`` for every trainer event, ``history`` with a
    resumed run's earlier events (right after its RunStarted), ``failed`` for a failure
    (RunFailed, input error or crash: a sentence and the detail), ``busy_changed`` when a run
    starts and when its thread has ended.
    """

    event = QtCore.Signal(object)
    history = QtCore.Signal(object)  # RunHistory
    failed = QtCore.Signal(str, str)
    finished = QtCore.Signal(str, str)  # run folder, status ("finished", "stopped", "failed", "error")
    notice = QtCore.Signal(str)  # a sentence for the run bar and the log (a stop during set-up)
    busy_changed = QtCore.Signal(bool)

    def __init__(self, trainer_class: Any = None, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._trainer_class = trainer_class
        self._worker: Worker | None = None
        self._stop_requested = False
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
        return self._worker is not None

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
        if self._worker is not None:
            self._stop_requested = True
            self._worker.quit()

    def stop_requested(self) -> bool:
        return self._stop_requested

    def _launch(self, start: TrainerStarter) -> bool:
        self._stop_requested = False
        self.run_dir = ""
        self.last_status = ""
        self.events_received = 0
        worker = Worker(lambda control: train(start, control), takes_control=True, name="sskt-training")
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()
        self.busy_changed.emit(True)
        return True

    # -- worker -> GUI thread -----------------------------------------------------------
    @QtCore.Slot(object)
    def _on_yielded(self, value: Any) -> None:
        if isinstance(value, RunHistory):
            self.history.emit(value)
            return
        event: Event = value
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

    @QtCore.Slot(object)
    def _on_returned(self, folder: str) -> None:
        if folder:
            self.run_dir = folder

    @QtCore.Slot(object)
    def _on_errored(self, error: WorkerError) -> None:
        if isinstance(error.exception, StoppedBeforeStart):  # Stop during set-up: a stop, not an error
            self.last_status = "stopped"
            self.notice.emit(str(error.exception))
            return
        self.last_status = "error"
        if isinstance(error.exception, UserInputError):
            self.failed.emit(str(error.exception), "")
        else:  # a bug or a runtime failure: shown with its traceback, never raised
            self.failed.emit(f"Training stopped because of an unexpected error: {error.sentence}", error.detail)

    @QtCore.Slot()
    def _on_finished(self) -> None:
        self._worker = None
        self.busy_changed.emit(False)
        self.finished.emit(self.run_dir, self.last_status or ("stopped" if self._stop_requested else "finished"))

    # -- shutdown -----------------------------------------------------------------------
    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the training thread has ended (events still queued are delivered)."""
        worker = self._worker
        return worker is None or worker.wait(timeout_ms)
