"""Shared test set-up. GUI tests run offscreen unless a platform is chosen; every test is
checked for QThreads left running.

The fake trainer here emits the same events as the engine's Trainer (and writes a real run
folder), so GUI behaviour that needs exact timing (stop in the middle, failures at a
chosen step) is tested without depending on how fast a real network trains.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

def _offscreen_platform() -> str:
    """Qt's offscreen platform with one 1920x1200 screen (its default 800x800 screen is smaller
    than the main window's minimum size, which would make geometry tests meaningless)."""
    import json
    import tempfile

    config = Path(tempfile.gettempdir()) / "sskt-studio-offscreen-screen.json"
    try:
        config.write_text(json.dumps({"screens": [{"name": "test", "x": 0, "y": 0, "width": 1920, "height": 1200,
                                                  "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    except OSError:
        return "offscreen"
    return f"offscreen:configfile={config}"


def _test_platform(current: str) -> str:
    """The Qt platform the tests run on. Unset, or the bare ``offscreen`` most headless CI sets:
    offscreen with our own screen, so the screen is the same everywhere. A platform chosen in
    full (``xcb`` under Xvfb, ``offscreen:configfile=...``) is kept: tests that depend on the
    screen's size read it from Qt."""
    if current.strip() in ("", "offscreen"):
        return _offscreen_platform()
    return current


os.environ["QT_QPA_PLATFORM"] = _test_platform(os.environ.get("QT_QPA_PLATFORM", ""))

import pytest  # noqa: E402

import sskt_engine.catalog  # noqa: E402,F401  (registers the built-in methods, datasets, ...)
from sskt_engine.config import ExperimentConfig, from_dict  # noqa: E402
from sskt_engine.errors import UserInputError  # noqa: E402
from sskt_engine.eval_report import EvalReport  # noqa: E402
from sskt_engine.events import (EpochEnd, LogMessage, Progress, RunFailed, RunFinished,  # noqa: E402
                                RunStarted)
from sskt_engine.metric_info import ACCURACY, TOP5  # noqa: E402
from sskt_engine.run_summary import RunSummary  # noqa: E402
from sskt_engine.runs import MetricsLog, RunFolder  # noqa: E402

try:
    from PySide6 import QtCore
except ImportError:  # an engine-only environment
    QtCore = None


# ----------------------------------------------------------------------------- QThread leaks

@pytest.fixture(autouse=True)
def no_dangling_qthreads(request):
    """Fail any test that leaves a QThread running (napari's idea): every QThread started
    during the test is recorded; after the test's own teardown (widgets closed), none may
    still run."""
    if QtCore is None:
        yield
        return
    started: list[weakref.ref] = []
    original = QtCore.QThread.start

    def recording_start(self, *args, **kwargs):
        started.append(weakref.ref(self))
        return original(self, *args, **kwargs)

    QtCore.QThread.start = recording_start
    try:
        yield
    finally:
        QtCore.QThread.start = original
    if started:
        from app.worker import wait_for_all

        # A widget's one-shot worker (a parameter count, a preview) may still be finishing when
        # the test ends: it ends by itself, so give it a moment; one still running after that,
        # or any other thread, is a leak.
        wait_for_all(5000)
    running = []
    for ref in started:
        thread = ref()
        try:
            if thread is not None and thread.isRunning():
                running.append(thread)
        except RuntimeError:  # the C++ object is gone: certainly not running
            pass
    if running:
        names = ", ".join(t.objectName() or type(t).__name__ for t in running)
        for thread in running:  # don't let one leak hang the rest of the session
            thread.quit()
            thread.wait(5000)
        pytest.fail(f"test left {len(running)} QThread(s) running: {names}")


# ----------------------------------------------------------------------------- a fake trainer

class FakeTrainer:
    """Speaks the Trainer contract: constructor, ``run() -> RunFolder``, ``resume``, stop within
    one step, ``RunFailed`` for failures during training, ``UserInputError`` before a folder."""

    steps_per_epoch = 5
    step_delay = 0.002
    fail_with: BaseException | None = None  # raised from run() at fail_step (an engine bug)
    fail_event_at: int | None = None  # emit RunFailed at this global step
    setup_error: str | None = None  # UserInputError during setup
    instances: list["FakeTrainer"] = []

    def __init__(self, config: ExperimentConfig, runs_root: Path | None = None,
                 on_event: Callable | None = None, stop_event: threading.Event | None = None,
                 _folder: RunFolder | None = None, _start_epoch: int = 0):
        if self.setup_error:
            raise UserInputError(self.setup_error)
        self.config = config
        self.runs_root = Path(runs_root) if runs_root else Path(os.environ["SSKT_RUNS_DIR"])
        self.on_event = on_event or (lambda e: None)
        self.stop_event = stop_event or threading.Event()
        self.folder = _folder
        self.start_epoch = _start_epoch
        self.thread_name = None
        type(self).instances.append(self)

    @classmethod
    def resume(cls, run_dir, runs_root=None, on_event=None, stop_event=None) -> "FakeTrainer":
        folder = RunFolder(run_dir)
        done = folder.summary().epochs_completed
        return cls(folder.config(), runs_root, on_event, stop_event, _folder=folder, _start_epoch=done)

    def run(self) -> RunFolder:
        self.thread_name = threading.current_thread().name
        cfg = self.config
        folder = self.folder or RunFolder.create(self.runs_root, cfg)
        log = MetricsLog(folder)
        names = [s.display_name() for s in cfg.sources]
        epochs, steps = cfg.train.epochs, self.steps_per_epoch
        summary = RunSummary(status="running", name=cfg.name, method=cfg.method.name, epochs=epochs,
                             epochs_completed=self.start_epoch, pid=os.getpid(), host="fake")
        folder.write_summary(summary)

        def emit(event):
            log(event)
            self.on_event(event)

        emit(RunStarted(str(folder.path), cfg.name, cfg.method.name, "cpu", epochs, self.start_epoch, steps, 3,
                        ("a", "b", "c"), ("target",), tuple(names), 100, 30, time.time()))
        best, acc, global_step = 0.0, 0.0, self.start_epoch * steps
        try:
            for epoch in range(self.start_epoch, epochs):
                for step in range(1, steps + 1):
                    if self.stop_event.is_set():
                        summary = summary.updated(status="stopped", epochs_completed=epoch, best_score=best)
                        folder.write_summary(summary)
                        emit(RunFinished("stopped", epoch, best, acc, 0.1, str(folder.path), time.time()))
                        return folder
                    time.sleep(self.step_delay)
                    global_step += 1
                    if self.fail_with is not None and global_step == 3:
                        raise self.fail_with
                    if self.fail_event_at == global_step:
                        summary = summary.updated(status="failed", epochs_completed=epoch,
                                                  message="the loss became NaN")
                        folder.write_summary(summary)
                        emit(RunFailed("Training stopped: the loss became NaN at epoch 1.", "step 3: loss=nan",
                                       epoch, str(folder.path), time.time()))
                        return folder
                    losses = {"loss": 2.0 / global_step, "target": 1.5 / global_step}
                    losses.update({f"aux/{n}": 0.5 / global_step for n in names})
                    emit(Progress(epoch, step, global_step, epochs * steps, losses, min(1.0, 0.1 * global_step),
                                  0.1, 1000.0, 1.0, time.time()))
                acc = min(1.0, 0.3 + 0.1 * epoch)
                is_best = acc > best
                best = max(best, acc)
                emit(EpochEnd(epoch, {"loss": 1.0, "acc": acc}, {"loss": 1.0 / (epoch + 1), "acc": acc,
                                                                   "top5": 1.0}, 0.1, best, is_best, 0.01,
                              time.time()))
                summary = summary.updated(epochs_completed=epoch + 1, best_score=best, final_score=acc)
                folder.write_summary(summary)
                # written as the Trainer writes it: epoch is the 1-based number of the epoch evaluated
                report = EvalReport(epoch=epoch + 1, network="target", metrics=(ACCURACY, TOP5),
                                    values={"acc": acc, "top5": 1.0}, loss=1.0 / (epoch + 1),
                                    class_names=("a", "b", "c"), per_class=(0.9, 0.5, 0.2),
                                    confusion=((9, 1, 0), (3, 5, 2), (4, 4, 2)))
                folder.write_eval("last", report)
                if is_best:
                    folder.write_eval("best", report)
            emit(LogMessage("info", "fake run done", time.time()))
            summary = summary.updated(status="finished")
            folder.write_summary(summary)
            emit(RunFinished("finished", epochs, best, acc, 0.1, str(folder.path), time.time()))
            return folder
        finally:
            log.close()


@pytest.fixture
def fake_trainer() -> type[FakeTrainer]:
    """A fresh FakeTrainer subclass per test, so class-level knobs never leak between tests."""
    return type("TestTrainer", (FakeTrainer,), {"instances": []})


def real_trainer_class() -> Any | None:
    try:
        from sskt_engine.trainer import Trainer
    except Exception:  # noqa: BLE001 - the engine's trainer is not there yet
        return None
    return Trainer


# ----------------------------------------------------------------------------- GUI fixtures

TINY_PRESET: dict[str, Any] = {
    "name": "gui-test",
    "target": {"arch": "tiny_cnn"},
    "data": {"dataset": "demo", "labels_per_class": 10},
    "method": {"name": "supervised"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.05, "schedule": "constant", "log_every": 1, "device": "cpu"},
}


def type_into(qtbot, editor, text: str) -> None:
    """Replace a field editor's text the way a person does: select all, type."""
    editor.input.setFocus()
    line = editor.input.lineEdit() if hasattr(editor.input, "lineEdit") and editor.input.lineEdit() else editor.input
    line.selectAll()
    qtbot.keyClick(line, QtCore.Qt.Key.Key_Delete)
    qtbot.keyClicks(line, text)


@pytest.fixture
def gui_env(tmp_path, monkeypatch) -> Path:
    """Settings and runs under the test's own folder, never the user's."""
    monkeypatch.setenv("SSKT_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SSKT_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def tiny_preset(gui_env) -> Path:
    from sskt_engine.config import save_preset

    path = gui_env / "tiny.yaml"
    save_preset(from_dict(TINY_PRESET), path)
    return path


class DialogRecorder:
    """Stands in for every QMessageBox while a test runs: nothing modal can hang the suite.

    Each box shown is recorded as (kind, title, text, detail); ``answers`` holds the button
    the next question gets (default: the box's default or Cancel-ish button)."""

    def __init__(self):
        self.shown: list[tuple[str, str, str, str]] = []
        self.answers: list[Any] = []

    def _answer(self, default: Any) -> Any:
        return self.answers.pop(0) if self.answers else default

    def install(self, monkeypatch) -> None:
        from PySide6 import QtWidgets

        box = QtWidgets.QMessageBox
        buttons = box.StandardButton

        def exec_(instance):
            self.shown.append(("exec", instance.windowTitle(), instance.text(), instance.detailedText()))
            default = instance.defaultButton()
            fallback = instance.standardButton(default) if default is not None else buttons.Ok
            return _value(self._answer(fallback))

        def static(kind):
            def show(parent, title, text, *args, **kwargs):
                self.shown.append((kind, title, text, ""))
                return self._answer(buttons.Cancel if kind == "question" else buttons.Ok)
            return staticmethod(show)

        monkeypatch.setattr(box, "exec", exec_)
        for kind in ("question", "warning", "critical", "information"):
            monkeypatch.setattr(box, kind, static(kind))
        monkeypatch.setattr(box, "about", staticmethod(lambda *a, **k: self.shown.append(("about", "", "", ""))))

    def titles(self) -> list[str]:
        return [title for _kind, title, _text, _detail in self.shown]


def _value(button: Any) -> int:
    return int(getattr(button, "value", button))


@pytest.fixture
def dialogs(monkeypatch) -> DialogRecorder:
    recorder = DialogRecorder()
    recorder.install(monkeypatch)
    return recorder


@pytest.fixture
def make_window(qtbot, gui_env, dialogs):
    """Build a MainWindow; at teardown any run is stopped and waited for, then it closes
    (its closeEvent waits for its background threads)."""
    from app.main import configure_application
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from PySide6 import QtWidgets

    from app.gc_guard import MainThreadGarbageCollector

    app = QtWidgets.QApplication.instance()
    if not app.property("sskt_configured"):  # once: re-applying a style sheet re-polishes every widget
        configure_application(app)
        app.setProperty("sskt_configured", True)
    # As in the app: Python's GC only in the GUI thread, never in the training thread.
    collector = MainThreadGarbageCollector().start()

    def before_close(window: MainWindow) -> None:
        if window.controller.is_running():
            window.controller.stop()
            window.controller.wait(20000)
        window.document._saved = copy.deepcopy(window.document.raw)  # no "save changes?" at teardown

    def make(trainer_class: Any = None, preset: Path | None = None) -> MainWindow:
        window = MainWindow(AppSettings(), trainer_class=trainer_class, preset=preset,
                            runs_root=gui_env / "runs")
        qtbot.addWidget(window, before_close_func=before_close)
        window.show()
        # The runs panel lists the runs folder in a worker thread: tests start from the listed state.
        qtbot.waitUntil(lambda: not window.runs_panel.is_listing(), timeout=20000)
        return window

    yield make
    from app.worker import wait_for_all

    wait_for_all(20000)
    collector.stop()
