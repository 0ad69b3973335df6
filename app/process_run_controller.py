"""Runs training as a separate `sskt train --nproc N` process (data-parallel over N processes).

Same signals as ``RunController`` so the main window can use either. The process writes its
run folder like any CLI run; this controller finds the new folder in the runs folder and
follows its ``metrics.jsonl`` with a ~4 Hz timer, turning each line back into an engine event.
Stop sends SIGTERM (``QProcess.terminate``): the CLI forwards it to every rank, which stop
after their current step and write a usable checkpoint.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from sskt_engine.config import ExperimentConfig, save_preset
from sskt_engine.events import Event, RunFailed, RunFinished, RunStarted, from_json
from sskt_engine.runs import RunFolder, default_runs_root

POLL_MS = 250
STDERR_TAIL = 4000  # characters of the process's stderr kept for an error's detail
_REPO = str(Path(__file__).resolve().parents[1])  # where sskt_engine is importable from


class ProcessRunController(QtCore.QObject):
    event = QtCore.Signal(object)
    failed = QtCore.Signal(str, str)
    finished = QtCore.Signal(str, str)  # run folder, status ("finished", "stopped", "failed", "error")
    busy_changed = QtCore.Signal(bool)

    def __init__(self, nproc: int = 2, parent: QtCore.QObject | None = None, python: str | None = None):
        super().__init__(parent)
        self.nproc = nproc
        self.python = python or sys.executable
        self._process: QtCore.QProcess | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._stop_requested = False
        self._failed_emitted = False
        self._tmp: str | None = None
        self._root = Path()
        self._before: set[str] = set()
        self._offset = 0
        self._partial = b""
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

    def start(self, config: ExperimentConfig, runs_root: Path | None) -> bool:
        if self.is_running():
            return False
        self._root = Path(runs_root or default_runs_root())
        self._root.mkdir(parents=True, exist_ok=True)
        self._before = {p.name for p in self._root.iterdir()}
        self._tmp = tempfile.mkdtemp(prefix="sskt-studio-")
        preset = Path(self._tmp) / "preset.yaml"
        save_preset(config, preset)
        self.run_dir, self.last_status, self.events_received = "", "", 0
        self._offset, self._partial, self._stderr = 0, b"", ""
        self._stop_requested = self._failed_emitted = False

        process = QtCore.QProcess(self)
        env = QtCore.QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", _REPO + (os.pathsep + path if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setProgram(self.python)
        process.setArguments(["-m", "sskt_engine.cli", "train", str(preset), "--nproc", str(self.nproc),
                              "--runs-dir", str(self._root)])
        process.readyReadStandardError.connect(self._read_stderr)
        process.readyReadStandardOutput.connect(lambda: process.readAllStandardOutput())
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error)
        self._process = process
        process.start()
        self._timer.start()
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
        ok = process.waitForFinished(timeout_ms if timeout_ms >= 0 else -1)
        QtCore.QCoreApplication.sendPostedEvents()
        QtCore.QCoreApplication.processEvents()
        return ok or self._process is None

    # -- following the run folder ---------------------------------------------------------
    def _find_run_dir(self) -> str:
        fresh = [p for p in self._root.iterdir() if p.name not in self._before and p.is_dir()
                 and RunFolder(p).metrics_path.exists()] if self._root.is_dir() else []
        return str(max(fresh, key=lambda p: p.name)) if fresh else ""

    @QtCore.Slot()
    def poll(self) -> None:
        if not self.run_dir:
            self.run_dir = self._find_run_dir()
            if not self.run_dir:
                return
        metrics = RunFolder(self.run_dir).metrics_path
        try:
            with open(metrics, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return
        if not data:
            return
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next poll
        for line in lines:
            if line.strip():
                event = from_json(line.decode("utf-8", errors="replace"))
                if event is not None:
                    self._on_event(event)

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
            self.failed.emit(f"Could not start the training process ({self.python}).", "")
            self._end()

    @QtCore.Slot(int, QtCore.QProcess.ExitStatus)
    def _on_process_finished(self, code: int, status: QtCore.QProcess.ExitStatus) -> None:
        self._read_stderr()
        self.poll()
        if self._partial.strip():
            event = from_json(self._partial.decode("utf-8", errors="replace"))
            self._partial = b""
            if event is not None:
                self._on_event(event)
        crashed = status != QtCore.QProcess.ExitStatus.NormalExit
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
        self._timer.stop()
        self._process = None
        process.deleteLater()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.busy_changed.emit(False)
        self.finished.emit(self.run_dir, self.last_status or ("stopped" if self._stop_requested else "finished"))
