"""The results of one run: final and best metrics, per-class accuracy, confusion matrix and
validation images with their predicted and true labels.

The run's files (summary, eval reports) are read in a worker thread, and the predictions
computed in another: the GUI thread only shows what they return, so a run training meanwhile
never waits for it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app import engine_catalog
from app.widgets.class_accuracy_plot import ClassAccuracyPlot
from app.widgets.confusion_matrix import ConfusionMatrixPlot
from app.widgets.image_grid import ImageGrid
from app.widgets.prediction_captions import prediction_caption
from app.worker import Worker, WorkerError, start_worker
from sskt_engine.formatting import duration
from sskt_engine.eval_report import EvalReport
from sskt_engine.run_summary import RunSummary
from sskt_engine.runs import RunFolder, RunInfo


@dataclass(frozen=True)
class RunResults:
    """What the view shows of a run, read from its folder in a worker thread."""

    run_dir: Path
    info: RunInfo
    summary: RunSummary
    reports: dict[str, EvalReport | None]  # "best" / "last" -> its eval report, None before the first


def read_results(run_dir: Path) -> RunResults:
    folder = RunFolder(run_dir)
    return RunResults(Path(run_dir), folder.info(), folder.summary(),
                      {which: folder.eval_report(which) for which in ("best", "last")})


class ResultsView(QtWidgets.QWidget):
    export_requested = QtCore.Signal(Path)
    shown = QtCore.Signal(Path)  # a run's results are on screen

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.run_dir: Path | None = None
        self._task: Worker | None = None  # predictions
        self._reader: Worker | None = None  # the run's files
        self._reports: dict[str, EvalReport | None] = {}
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)

        top = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel("No run selected")
        self.title.setObjectName("resultsTitle")
        self.title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long run folder name wraps (at its hyphens) instead of widening the window (1280 px screens)
        self.title.setWordWrap(True)
        self.title.setMinimumWidth(120)
        top.addWidget(self.title, 1)
        top.addWidget(QtWidgets.QLabel("Checkpoint"))
        self.which = QtWidgets.QComboBox()
        self.which.addItem("best epoch", "best")
        self.which.addItem("last epoch", "last")
        self.which.setToolTip("Evaluation of the best or the last epoch")
        # its texts change with the run (a run without a held-out split has no best epoch)
        self.which.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.which.currentIndexChanged.connect(lambda *_: self._show_report())
        top.addWidget(self.which)
        self.export_button = QtWidgets.QPushButton("Export model…")
        self.export_button.setObjectName("resultsExportButton")
        self.export_button.setToolTip("Save this run's trained network as pt, safetensors, TorchScript or ONNX")
        self.export_button.clicked.connect(lambda: self.run_dir and self.export_requested.emit(self.run_dir))
        top.addWidget(self.export_button)
        layout.addLayout(top)

        self.metrics = QtWidgets.QLabel()
        self.metrics.setObjectName("resultsMetrics")
        self.metrics.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.metrics.setWordWrap(True)
        layout.addWidget(self.metrics)

        self.empty = QtWidgets.QLabel("Finish a run, or double-click one in the runs panel, to see its results.")
        self.empty.setObjectName("hint")
        self.empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty, 1)

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.class_plot = ClassAccuracyPlot()
        self.confusion = ConfusionMatrixPlot()
        self.splitter.addWidget(self.class_plot)
        self.splitter.addWidget(self.confusion)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout.addWidget(self.splitter, 3)

        self.predictions_box = QtWidgets.QGroupBox("Validation images and their predicted labels")
        # the rest as a tooltip: a long group-box title cannot wrap and was cut at 1280 px
        self.predictions_box.setToolTip("Green: right. When wrong, the true label under the prediction (red), or "
                                        "for multi-label data the labels missed (\u2212name) and extra (+name), "
                                        "orange when some are right.")
        box_layout = QtWidgets.QVBoxLayout(self.predictions_box)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.grid = ImageGrid(cell=64)
        scroll.setWidget(self.grid)
        box_layout.addWidget(scroll)
        layout.addWidget(self.predictions_box, 2)
        self.predictions_box.setVisible(engine_catalog.predictions_function() is not None)
        self._set_empty(True)

    def _set_empty(self, empty: bool) -> None:
        self.empty.setVisible(empty)
        self.splitter.setVisible(not empty)
        self.predictions_box.setVisible(not empty and engine_catalog.predictions_function() is not None)
        self.which.setEnabled(not empty)
        self.export_button.setEnabled(not empty)

    def show_run(self, run_dir: Path) -> None:
        """Show a run's results once its files are read (``shown`` then)."""
        self.run_dir = Path(run_dir)
        if self._reader is not None:
            self._reader.cancel()  # an earlier choice of run
        self._reader = start_worker(lambda: read_results(Path(run_dir)), returned=self._results_read,
                                    errored=self._results_unreadable, name="sskt-read-results")

    def _results_unreadable(self, error: WorkerError) -> None:
        self.title.setText(f"<b>{self.run_dir.name if self.run_dir else ''}</b> · could not be read")
        self.metrics.setText(error.sentence)
        self._reports = {}
        self._set_empty(True)

    def _results_read(self, results: RunResults) -> None:
        if results.run_dir != self.run_dir:
            return
        info, summary, self._reports = results.info, results.summary, results.reports
        # the name the user gave the run (labels.json, user text: escaped), its folder beside it
        name = (f"<b>{html.escape(info.labels.name)}</b> ({html.escape(info.path.name)})" if info.labels.name
                else f"<b>{html.escape(info.path.name)}</b>")
        self.title.setText(f"{name} · {info.status}" + (f" · {info.method}" if info.method else ""))
        metric = summary.metric  # the run's headline metric, as its task named it
        # no held-out split: no best epoch was chosen, so there is no "best" to show
        chose_none = summary.selection == "none"
        best = [] if chose_none else [f"best val {metric.short} <b>{metric.format(summary.best_score)}</b>"]
        # best.pt of such a run follows its last epoch: the selector says so rather than "best"
        self.which.setItemText(self.which.findData("best"), "best.pt (last epoch)" if chose_none else "best epoch")
        parts = [*best, f"final val {metric.short} <b>{metric.format(summary.final_score)}</b>",
                 f"epochs {info.epochs_completed}/{info.epochs or '?'}"]
        if summary.wall_time_s is not None:
            parts.append(f"time {duration(summary.wall_time_s)}")
        if summary.device:
            parts.append(f"device {summary.device}")
        if info.message:
            parts.append(f"<span style='color:#c62828'>{info.message}</span>")
        self.summary_text = " · ".join(parts)
        self._show_report()
        self._load_predictions()
        self.shown.emit(results.run_dir)

    def _show_report(self) -> None:
        if self.run_dir is None:
            return
        report = self._reports.get(self.which.currentData())
        if report is None and self.which.currentData() == "best":
            report = self._reports.get("last")
        extra = ""
        if report is not None:
            # the report names its metrics, headline first (bold); its epoch already counts from 1
            shown = [f"{m.short} <b>{m.format(report.values.get(m.key))}</b>" if i == 0
                     else f"{m.short} {m.format(report.values.get(m.key))}" for i, m in enumerate(report.metrics)]
            extra = f" · evaluated at epoch {report.epoch}: " + ", ".join(shown)
        self.metrics.setText(getattr(self, "summary_text", "") + extra)
        names = list(report.class_names) if report is not None else []
        per_class = report.per_class_metric if report is not None else None
        title = f"{per_class.label.capitalize()} ({per_class.unit})" if per_class else None
        self.class_plot.set_accuracies(report.per_class if report is not None else [], names, title=title)
        confusion = report.confusion if report is not None else None
        self.confusion.set_matrix([list(row) for row in confusion] if confusion else [], names)
        self.confusion.setVisible(report is None or confusion is not None)  # not every task has one
        self._set_empty(report is None)
        if report is None:
            self.empty.setText("This run has no evaluation yet (it evaluates at the end of each epoch).")

    def _load_predictions(self) -> None:
        predict = engine_catalog.predictions_function()
        if predict is None or self.run_dir is None:
            return
        if self._task is not None:
            self._task.cancel()
        run_dir = self.run_dir
        self.grid.set_message("Classifying validation images…")
        self._task = start_worker(lambda: predict(run_dir, count=32), returned=self._predictions_loaded,
                                  errored=self._predictions_failed, name="sskt-predictions")

    def _predictions_loaded(self, result) -> None:
        self._task = None
        images, true_names, predicted = result
        shown = [prediction_caption(t, p) for t, p in zip(true_names, predicted)]
        self.grid.set_aspect(images.shape[2] / images.shape[1] if len(images) else 1.0)  # clips: frame strips
        self.grid.set_images(images, [c.text for c in shown], [c.color for c in shown],
                             [c.tooltip for c in shown], caption_lines=2)

    def _predictions_failed(self, error: WorkerError) -> None:
        self._task = None
        self.grid.set_message(f"Predictions unavailable: {error.exception}")
