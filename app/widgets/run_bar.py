"""Start / Stop / Resume, the progress of the current run, its speed and time left."""

from __future__ import annotations

import html
import time

from PySide6 import QtCore, QtWidgets

from sskt_engine.events import EpochEnd, Event, Progress, RunFailed, RunFinished, RunStarted
from sskt_engine.formatting import duration, percent
from sskt_engine.metric_info import ACCURACY


class RunBar(QtWidgets.QFrame):
    """The buttons are created here; the main window owns the actions behind them."""

    problem_clicked = QtCore.Signal(str)

    def __init__(self, start: QtWidgets.QWidget, stop: QtWidgets.QWidget, resume: QtWidgets.QWidget,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._metric = ACCURACY  # until a RunStarted names the run's headline metric
        self._selects_best = True
        self.setObjectName("runBar")
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 6)
        outer.setSpacing(4)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(8)
        for button in (start, stop, resume):
            row.addWidget(button)
        self.processes_label = QtWidgets.QLabel("Processes")
        self.processes_label.setObjectName("processesLabel")
        self.processes = QtWidgets.QSpinBox()
        self.processes.setObjectName("processesSpin")
        self.processes.setRange(1, 64)
        self.processes.setValue(1)
        self.processes.setToolTip("Data-parallel training processes on this machine. 1: train inside the app; "
                                  "more: run `sskt train --nproc N` as a separate process and follow it "
                                  "(train.batch_size must divide evenly over them)")
        self.processes_label.setToolTip(self.processes.toolTip())
        row.addSpacing(4)
        row.addWidget(self.processes_label)
        row.addWidget(self.processes)
        column = QtWidgets.QVBoxLayout()
        column.setSpacing(2)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("runProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("No run yet")
        self.progress.setMinimumWidth(160)
        column.addWidget(self.progress)
        stats = QtWidgets.QHBoxLayout()
        stats.setSpacing(16)
        self.speed_label = QtWidgets.QLabel("")
        self.eta_label = QtWidgets.QLabel("")
        self.best_label = QtWidgets.QLabel("")
        for label in (self.speed_label, self.eta_label, self.best_label):
            label.setObjectName("runStat")
            stats.addWidget(label)
        stats.addStretch(1)
        column.addLayout(stats)
        row.addStretch(1)
        outer.addLayout(row)
        # Progress below the buttons rather than beside them: the window must fit a 1280 px
        # screen with both docks open, and a full-width bar reads better anyway.
        outer.addLayout(column)
        self.problem_label = QtWidgets.QLabel()
        self.problem_label.setObjectName("startProblem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.problem_label.linkActivated.connect(self.problem_clicked)
        self.problem_label.hide()
        outer.addWidget(self.problem_label)
        self._epochs = 0
        self._steps_per_epoch = 0
        self._started = 0.0
        self._start_epoch = 0

    # -- why Start is off -------------------------------------------------------------------
    def set_problem(self, text: str, path: str = "", more: int = 0, label: str = "") -> None:
        """The reason Start is disabled; the field becomes a link, named as the form names it
        (``label``: "Learning rate (Training)", not ``train.lr``), that jumps to it."""
        if not text:
            self.problem_label.hide()
            return
        body = html.escape(text)
        if path:
            body = f"<a href='{html.escape(path)}'>{html.escape(label or path)}</a>: {body}"
        if more:
            body += f" (and {more} more)"
        self.problem_label.setText(f"Cannot start: {body}")
        self.problem_label.show()

    def problem_text(self) -> str:
        return self.problem_label.text() if self.problem_label.isVisible() else ""

    # -- events -------------------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._metric = event.headline  # what the run's task calls its headline number
            self._selects_best = event.selects_best  # no held-out split: no "best" to show
            self._epochs = event.epochs
            self._steps_per_epoch = event.steps_per_epoch
            self._start_epoch = event.start_epoch
            self._started = time.monotonic()
            total = max(1, event.epochs * max(1, event.steps_per_epoch))
            self.progress.setRange(0, total)
            self.progress.setValue(event.start_epoch * event.steps_per_epoch)
            self.progress.setFormat(f"Epoch {event.start_epoch + 1}/{event.epochs} · starting")
            self.speed_label.setText("")
            self.eta_label.setText("")
            self.best_label.setText("")
            self.progress.setToolTip(f"{event.name}: {event.method} on {event.device}\n{event.run_dir}")
        elif isinstance(event, Progress):
            if self.progress.maximum() != event.total_steps and event.total_steps > 0:
                self.progress.setRange(0, event.total_steps)
            self.progress.setValue(min(event.global_step, self.progress.maximum()))
            per_epoch = self._steps_per_epoch or "?"
            done = percent(event.global_step / max(1, event.total_steps), 0)
            self.progress.setFormat(f"Epoch {event.epoch + 1}/{self._epochs or '?'} · step {event.step}/{per_epoch}"
                                    f" · {done}")
            self.speed_label.setText(f"{event.samples_per_s:,.0f} samples/s")
            self.eta_label.setText(f"ETA {duration(event.eta_s)}")
        elif isinstance(event, EpochEnd):
            metric = self._metric
            value = event.val.get(metric.key)
            text = f"val {metric.short} {metric.format(value)}" if value is not None else ""
            best = f" · best {metric.format(event.best_val_acc)}" if self._selects_best else ""
            self.best_label.setText(f"{text}{best}" if text else "")
        elif isinstance(event, RunFinished):
            if event.status == "finished":
                self.progress.setValue(self.progress.maximum())
            if event.epochs_completed == 0:  # no score exists yet: never a -100% or nan "best"
                self.progress.setFormat(f"{event.status.capitalize()} before the first epoch ended: no epoch "
                                        "completed")
            else:
                score = (f"best {self._metric.format(event.best_val_acc)}" if self._selects_best
                         else f"final {self._metric.format(event.final_val_acc)}")
                self.progress.setFormat(f"{event.status.capitalize()} after {event.epochs_completed} epoch(s) · "
                                        f"{score}")
            self.eta_label.setText(f"took {duration(event.wall_time_s)}")
        elif isinstance(event, RunFailed):
            self.progress.setFormat(f"Failed after {event.epochs_completed} epoch(s)")
            self.eta_label.setText("")

    def set_preparing(self, text: str = "Preparing…") -> None:
        self.progress.setRange(0, 0)  # busy indicator while the trainer loads data and models (or Start checks them)
        self.progress.setFormat(text)
        self.speed_label.setText("")
        self.eta_label.setText("")
        self.best_label.setText("")

    def set_idle_if_preparing(self, message: str) -> None:
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat(message)
