"""Signals across threads and a clean interpreter exit.

PySide6 6.12.0 aborts at exit on Python 3.11 after bools crossed signals (bool_dealloc);
pyproject pins below it, and this guards the pin: a child process that imports PySide6,
sends queued signals with bool payloads from a thread, and exits must exit with 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6 import QtCore

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import sys
    from PySide6 import QtCore

    class Emitter(QtCore.QObject):
        flag = QtCore.Signal(bool)
        payload = QtCore.Signal(object)

    class Receiver(QtCore.QObject):
        def __init__(self):
            super().__init__()
            self.got = []

        @QtCore.Slot(bool)
        def on_flag(self, value):
            self.got.append(value)

        @QtCore.Slot(object)
        def on_payload(self, value):
            self.got.append(value)

    app = QtCore.QCoreApplication(sys.argv)
    receiver = Receiver()  # lives in the main thread: the slots run there
    received = receiver.got
    thread = QtCore.QThread()
    emitter = Emitter()
    emitter.moveToThread(thread)
    emitter.flag.connect(receiver.on_flag, QtCore.Qt.ConnectionType.QueuedConnection)
    emitter.payload.connect(receiver.on_payload, QtCore.Qt.ConnectionType.QueuedConnection)

    def work():
        for i in range(300):
            emitter.flag.emit(i % 2 == 0)
            emitter.payload.emit({"ok": True, "i": i})
        thread.quit()

    thread.started.connect(work, QtCore.Qt.ConnectionType.DirectConnection)
    thread.finished.connect(app.quit)
    thread.start()
    app.exec()
    thread.wait()
    app.processEvents()
    from app.run_controller import RunController  # the app's own module imports cleanly too
    assert len(received) == 600, len(received)
    print("clean", len(received))
""")


class _Emitter(QtCore.QObject):
    flag = QtCore.Signal(bool)
    event = QtCore.Signal(object)


class _Receiver(QtCore.QObject):
    def __init__(self):
        super().__init__()
        self.got: list = []

    @QtCore.Slot(bool)
    def on_flag(self, value: bool) -> None:
        self.got.append(value)

    @QtCore.Slot(object)
    def on_event(self, value: object) -> None:
        self.got.append(value)


def test_queued_signals_then_a_child_process_exits_cleanly(qtbot):
    receiver = _Receiver()
    received = receiver.got
    thread = QtCore.QThread()
    emitter = _Emitter()
    emitter.moveToThread(thread)
    emitter.flag.connect(receiver.on_flag, QtCore.Qt.ConnectionType.QueuedConnection)
    emitter.event.connect(receiver.on_event, QtCore.Qt.ConnectionType.QueuedConnection)

    def work():
        for i in range(200):
            emitter.flag.emit(bool(i % 2))
            emitter.event.emit({"step": i, "stopped": False})

    thread.started.connect(work, QtCore.Qt.ConnectionType.DirectConnection)
    thread.start()
    qtbot.waitUntil(lambda: len(received) == 400, timeout=5000)
    thread.quit()
    assert thread.wait(5000)
    assert received[:2] == [False, {"step": 0, "stopped": False}]

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120,
                           cwd=ROOT)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "clean 600"
