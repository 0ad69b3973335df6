"""The results of one run: final and best metrics, per-class accuracy, confusion matrix and
validation images with their predicted and true labels."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app import engine_catalog
from app.background import BackgroundTask, run_in_background
from app.widgets.class_accuracy_plot import ClassAccuracyPlot
from app.widgets.confusion_matrix import ConfusionMatrixPlot
from app.widgets.image_grid import ImageGrid
from app.widgets.run_bar import format_duration
from sskt_engine.runs import RunFolder


def _pct(value) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "–"


class ResultsView(QtWidgets.QWidget):
    export_requested = QtCore.Signal(Path)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.run_dir: Path | None = None
        self._task: BackgroundTask | None = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)

        top = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel("No run selected")
        self.title.setObjectName("resultsTitle")
        self.title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.title, 1)
        top.addWidget(QtWidgets.QLabel("Checkpoint"))
        self.which = QtWidgets.QComboBox()
        self.which.addItem("best epoch", "best")
        self.which.addItem("last epoch", "last")
        self.which.setToolTip("Evaluation of the best or the last epoch")
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

        self.predictions_box = QtWidgets.QGroupBox("Validation images: predicted label (true label when wrong)")
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
        self.run_dir = Path(run_dir)
        folder = RunFolder(self.run_dir)
        info = folder.info()
        self.title.setText(f"<b>{info.path.name}</b> · {info.status}" + (f" · {info.method}" if info.method else ""))
        summary = folder.summary()
        parts = [f"best val acc <b>{_pct(info.best_val_acc)}</b>", f"final val acc <b>{_pct(info.final_val_acc)}</b>",
                 f"epochs {info.epochs_completed}/{info.epochs or '?'}"]
        if isinstance(summary.get("wall_time_s"), (int, float)):
            parts.append(f"time {format_duration(summary['wall_time_s'])}")
        if summary.get("device"):
            parts.append(f"device {summary['device']}")
        if info.message:
            parts.append(f"<span style='color:#c62828'>{info.message}</span>")
        self.summary_text = " · ".join(parts)
        self._show_report()
        self._load_predictions()

    def _show_report(self) -> None:
        if self.run_dir is None:
            return
        report = RunFolder(self.run_dir).eval_report(self.which.currentData())
        if not report and self.which.currentData() == "best":
            report = RunFolder(self.run_dir).eval_report("last")
        extra = ""
        if report:
            extra = f" · evaluated at epoch {int(report.get('epoch', 0)) + 1}: acc <b>{_pct(report.get('acc'))}</b>"
            if "top5" in report:
                extra += f", top-5 {_pct(report.get('top5'))}"
        self.metrics.setText(getattr(self, "summary_text", "") + extra)
        names = report.get("class_names") or []
        self.class_plot.set_accuracies(report.get("per_class_acc") or [], names)
        self.confusion.set_matrix(report.get("confusion") or [], names)
        self._set_empty(not report)
        if not report:
            self.empty.setText("This run has no evaluation yet (it evaluates at the end of each epoch).")

    def _load_predictions(self) -> None:
        predict = engine_catalog.predictions_function()
        if predict is None or self.run_dir is None:
            return
        if self._task is not None:
            self._task.cancel()
        run_dir = self.run_dir
        self.grid.set_message("Classifying validation images…")
        self._task = run_in_background(lambda: predict(run_dir, count=32), self._predictions_loaded,
                                       self._predictions_failed)

    def _predictions_loaded(self, result) -> None:
        self._task = None
        images, true_names, predicted = result
        captions, colors, tips = [], [], []
        for t, p in zip(true_names, predicted):
            ok = t == p
            captions.append(p if ok else f"{p}\n({t})")
            colors.append("#2e7d32" if ok else "#c62828")
            tips.append(f"predicted {p}, true {t}")
        self.grid.set_images(images, captions, colors, tips, caption_lines=2)

    def _predictions_failed(self, exc: BaseException, detail: str) -> None:
        self._task = None
        self.grid.set_message(f"Predictions unavailable: {exc}")
