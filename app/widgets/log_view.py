"""The run's messages: start, warnings from the engine, finish or failure."""

from __future__ import annotations

import time

from PySide6 import QtGui, QtWidgets

from sskt_engine.events import EpochEnd, Event, LogMessage, RunFailed, RunFinished, RunStarted
from sskt_engine.formatting import percent, seconds
from sskt_engine.metric_info import ACCURACY


class LogView(QtWidgets.QPlainTextEdit):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._metric = ACCURACY  # until a RunStarted names the run's headline metric
        self._selects_best = True  # RunStarted.selection "none": no best epoch to name
        self.setObjectName("logView")
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        self.setPlaceholderText("Messages of the current run appear here.")

    def add(self, text: str, level: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        marker = {"warning": "⚠ ", "error": "✖ "}.get(level, "")
        self.appendPlainText(f"{stamp}  {marker}{text}")

    def handle_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._metric = event.headline
            self._selects_best = event.selects_best
            verb = "Resumed" if event.start_epoch else "Started"
            self.add(f"{verb} {event.name}: {event.method} on {event.device}, {event.train_size} training and "
                     f"{event.val_size} validation images, {event.num_classes} classes, "
                     f"{event.epochs} epochs ({event.steps_per_epoch} steps each)")
            if event.source_names:
                self.add("Sources: " + ", ".join(event.source_names))
            self.add(f"Run folder: {event.run_dir}")
        elif isinstance(event, EpochEnd):
            parts = [f"{k} {self._value(k, v)}" for k, v in event.val.items()]
            self.add(f"Epoch {event.epoch + 1}: val " + ", ".join(parts) + (" (best)" if event.is_best and self._selects_best else "")
                     + f" · {seconds(event.epoch_time_s)}")
        elif isinstance(event, LogMessage):
            self.add(event.message, event.level)
        elif isinstance(event, RunFinished):
            metric = self._metric
            best = f"best val {metric.short} {metric.format(event.best_val_acc)}, " if self._selects_best else ""
            self.add(f"Run {event.status} after {event.epochs_completed} epoch(s): {best}final val {metric.short} "
                     f"{metric.format(event.final_val_acc)}")
        elif isinstance(event, RunFailed):
            self.add(f"Run failed: {event.message}", "error")

    def _value(self, key: str, value: float) -> str:
        """A validation number as the run bar and the results show it: the headline metric (and
        top-5) in percent where it is a fraction, losses as plain numbers."""
        metric = self._metric
        if key == metric.key or key.endswith("/" + metric.key):
            return metric.format(value)
        if key == "top5":
            return percent(value)
        return f"{value:.4g}"
