"""Runs training as a separate `sskt train --nproc N` process (data-parallel over N processes).

Same signals as ``RunController`` so the main window can use either. The process writes its
run folder like any CLI run; a worker thread (``app.run_follower``) finds the new folder in the
runs folder and follows its ``metrics.jsonl`` at ~4 Hz, turning each line back into an engine
event: the GUI thread never reads the run's files.
Stop sends SIGTERM (``QProcess.terminate``): the CLI forwards it to every rank, which stop
after their current step and write a usable checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from app.run_follower import MetricsFollower, follow
from app.worker import Worker
from sskt_engine.child_process import ENGINE_CLI, child_command
from sskt_engine.config import ExperimentConfig, save_preset
from sskt_engine.events import Event, RunFailed, RunFinished, RunStarted
from sskt_engine.runs import default_runs_root

STDERR_TAIL = 4000  # characters of the process's stderr kept for an error's detail
_REPO = str(Path(__file__).resolve().parents[1])  # where sskt_engine is importable from


class ProcessRunController(QtCore.QObject):
    event = QtCore.Signal(object)
    failed = QtCore.Signal(str, str)
    finished = QtCore.Signal(str, str)  # run folder, status ("finished", "stopped", "failed", "error")
    notice = QtCore.Signal(str)  # as RunController's; the child's own stop message arrives through its log
    busy_changed = QtCore.Signal(bool)

    def __init__(self, nproc: int = 2, parent: QtCore.QObject | None = None, python: str | None = None):
        super().__init__(parent)
        self.nproc = nproc
        self.python = python  # None: this program (a Python, or the frozen bundle's own program)
        self.program = ""  # what the last start ran
        self._process: QtCore.QProcess | None = None
        self._follower: Worker | None = None  # reads the run's log while the process runs
        self._exit: tuple[int, bool] | None = None  # the process's exit code, and whether it crashed
        self._stop_requested = False
        self._failed_emitted = False
        self._tmp: str | None = None
        self._root = Path()
        self._stderr = ""
        self.run_dir: str = ""
        self.last_status: str = ""
        self.events_received = 0

    # -- the same interface as RunController ------------------------------------------
    def trainer_class(self) -> Any:
        return "sskt train"  # the CLI trains; never None

    def is_running(self) -> bool:
        return self._process is not None

    def stop_requested(self) -> bool:
        return self._stop_requested

    def resume(self, run_dir: Path, runs_root: Path | None) -> bool:
        return False  # resuming runs in-process

    def command(self, preset: Path, runs_root: Path) -> list[str]:
        """``sskt train PRESET --nproc N --runs-dir ROOT`` as a child of this program."""
        return child_command(ENGINE_CLI, ["train", str(preset), "--nproc", str(self.nproc), "--runs-dir",
                                          str(runs_root)], executable=self.python)

    def start(self, config: ExperimentConfig, runs_root: Path | None) -> bool:
        if self.is_running():
            return False
        self._root = Path(runs_root or default_runs_root())
        self._root.mkdir(parents=True, exist_ok=True)
        before = {p.name for p in self._root.iterdir()}
        self._tmp = tempfile.mkdtemp(prefix="sskt-studio-")
        preset = Path(self._tmp) / "preset.yaml"
        save_preset(config, preset)
        self.run_dir, self.last_status, self.events_received = "", "", 0
        self._stderr, self._exit = "", None
        self._stop_requested = self._failed_emitted = False

        process = QtCore.QProcess(self)
        env = QtCore.QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", _REPO + (os.pathsep + path if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        command = self.command(preset, self._root)
        self.program = command[0]
        process.setProgram(command[0])
        process.setArguments(command[1:])
        process.readyReadStandardError.connect(self._read_stderr)
        process.readyReadStandardOutput.connect(lambda: process.readAllStandardOutput())
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error)
        self._process = process
        follower = MetricsFollower(self._root, before)
        self._follower = Worker(lambda control: follow(follower, control), takes_control=True,
                                name="sskt-follow-run")
        self._follower.yielded.connect(self._on_events)
        self._follower.returned.connect(self._on_follower_returned)
        self._follower.finished.connect(self._follower_finished)
        process.start()
        self._follower.start()
        self.busy_changed.emit(True)
        return True

    def stop(self) -> None:
        if self._process is not None and not self._stop_requested:
            self._stop_requested = True
            self._process.terminate()  # SIGTERM: the CLI stops cleanly

    def wait(self, timeout_ms: int = -1) -> bool:
        process = self._process
        if process is None:
            return True
        ok = process.waitForFinished(timeout_ms if timeout_ms >= 0 else -1)  # emits finished: the follower quits
        follower = self._follower
        if ok and follower is not None:
            follower.wait()  # its last events and its finished are delivered: the run has ended
        QtCore.QCoreApplication.sendPostedEvents()
        QtCore.QCoreApplication.processEvents()
        return ok or self._process is None

    # -- following the run folder ---------------------------------------------------------
    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            self._on_event(event)

    def _on_follower_returned(self, run_dir: str) -> None:
        self.run_dir = self.run_dir or run_dir  # a process that failed early wrote no RunStarted

    def _on_event(self, event: Event) -> None:
        self.events_received += 1
        if isinstance(event, RunStarted):
            self.run_dir = event.run_dir or self.run_dir
        elif isinstance(event, RunFinished):
            self.last_status = event.status
        elif isinstance(event, RunFailed):
            self.last_status = "failed"
        self.event.emit(event)
        if isinstance(event, RunFailed):
            self._failed_emitted = True
            self.failed.emit(event.message, event.detail)

    # -- the process ------------------------------------------------------------------------
    @QtCore.Slot()
    def _read_stderr(self) -> None:
        if self._process is not None:
            text = bytes(self._process.readAllStandardError()).decode("utf-8", errors="replace")
            self._stderr = (self._stderr + text)[-STDERR_TAIL:]

    @QtCore.Slot(QtCore.QProcess.ProcessError)
    def _on_process_error(self, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart:
            self.last_status = "error"
            self._failed_emitted = True
            self.failed.emit(f"Could not start the training process ({self.program}).", "")
            if self._follower is not None:
                self._follower.quit()  # nothing to follow: its finished ends the run

    @QtCore.Slot(int, QtCore.QProcess.ExitStatus)
    def _on_process_finished(self, code: int, status: QtCore.QProcess.ExitStatus) -> None:
        self._read_stderr()
        self._exit = (code, status != QtCore.QProcess.ExitStatus.NormalExit)
        if self._follower is not None:
            self._follower.quit()  # it reads what the process wrote last, then finishes

    @QtCore.Slot()
    def _follower_finished(self) -> None:
        """Every event the run wrote has been handled: say how it ended."""
        self._follower = None
        if self._exit is None:
            self._end()
            return
        code, crashed = self._exit
        if (code != 0 or crashed) and self.last_status not in ("finished", "stopped") and not self._failed_emitted:
            self.last_status = "error"
            lines = [line.strip() for line in self._stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else ""
            how = "crashed" if crashed else f"ended with exit code {code}"
            message = f"The training process {how}" + (f": {last}" if last else ".")
            self._failed_emitted = True
            self.failed.emit(message, self._stderr)
        self._end()

    def _end(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        process.deleteLater()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.busy_changed.emit(False)
        self.finished.emit(self.run_dir, self.last_status or ("stopped" if self._stop_requested else "finished"))
