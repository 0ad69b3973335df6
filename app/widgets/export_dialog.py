"""Export a run's trained network to a file (pt, safetensors, TorchScript, ONNX).

The dialog only collects choices and shows results: reading the checkpoint (which networks
the run has) and the export itself run in worker threads (app/worker.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from app.dialogs import show_error
from app.worker import Worker, WorkerError, start_worker
from sskt_engine.errors import UserInputError

# Kept here (mirroring sskt_engine.export) so opening the dialog never imports torch in the GUI thread.
FORMAT_LABELS = {"pt": "PyTorch state dict (.pt)", "safetensors": "safetensors (.safetensors)",
                 "torchscript": "TorchScript (.torchscript.pt)", "onnx": "ONNX (.onnx)"}
SAVE_FILTERS = {"pt": "PyTorch files (*.pt)", "safetensors": "safetensors files (*.safetensors)",
                "torchscript": "TorchScript files (*.pt *.torchscript)", "onnx": "ONNX files (*.onnx)"}


def _formats() -> tuple[str, ...]:
    from sskt_engine.export import FORMATS

    return FORMATS


def _suffix(fmt: str) -> str:
    from sskt_engine.export import DEFAULT_SUFFIX

    return DEFAULT_SUFFIX[fmt]


def run_networks(run_dir: Path) -> tuple[list[str], str]:
    """(the networks a run's checkpoint holds, the one exported by default). Runs off the GUI thread."""
    from sskt_engine.run_checkpoint import RunCheckpoint
    from sskt_engine.runs import RunFolder

    folder = RunFolder(Path(run_dir))
    for which in ("best", "last"):
        path = folder.checkpoint_path(which)
        if path.is_file():
            checkpoint = RunCheckpoint.read(path, f"the {which} checkpoint of run {folder.path.name}")
            return list(checkpoint.models), checkpoint.meta.export_network
    return [], ""


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


class ExportDialog(QtWidgets.QDialog):
    exported = QtCore.Signal(object)  # the ExportResult

    def __init__(self, run_dir: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.result: Any = None
        self._task: Worker | None = None
        self._networks_task: Worker | None = None
        self.setWindowTitle(f"Export {self.run_dir.name}")
        self.setObjectName("exportDialog")
        self.setMinimumWidth(560)
        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        layout.addLayout(form)
        self.form = form

        run_label = QtWidgets.QLabel(f"<b>{self.run_dir.name}</b>")
        run_label.setToolTip(str(self.run_dir))
        form.addRow("Run", run_label)
        self.format = QtWidgets.QComboBox()
        from sskt_engine.export_formats import unavailable_formats

        missing = unavailable_formats()
        for fmt in _formats():
            if fmt in missing:  # shown, but off, with the one command that enables it
                self.format.addItem(f"{FORMAT_LABELS.get(fmt, fmt)}: needs {missing[fmt]}", fmt)
                item = self.format.model().item(self.format.count() - 1)
                item.setEnabled(False)
                item.setToolTip(f"Not available in this installation; run {missing[fmt]} to enable it")
            else:
                self.format.addItem(FORMAT_LABELS.get(fmt, fmt), fmt)
        self.format.setToolTip("pt / safetensors: weights and metadata, loaded by SSKT Studio or as a source; "
                               "TorchScript / ONNX: self-contained graphs for other programs")
        self.format.currentIndexChanged.connect(self._format_changed)
        form.addRow("Format", self.format)
        self.checkpoint = QtWidgets.QComboBox()
        self.checkpoint.addItem("best epoch", "best")
        self.checkpoint.addItem("last epoch", "last")
        form.addRow("Checkpoint", self.checkpoint)
        self.aux_heads = QtWidgets.QCheckBox("Keep auxiliary heads")
        self.aux_heads.setToolTip("Also export the heads that predicted the source models' outputs")
        form.addRow("", self.aux_heads)
        self.network = QtWidgets.QComboBox()
        self.network.setToolTip("This run trained several networks; choose the one to export")
        form.addRow("Network", self.network)
        form.setRowVisible(self.network, False)

        out_row = QtWidgets.QHBoxLayout()
        self.output = QtWidgets.QLineEdit()
        self.output.textChanged.connect(self._update_buttons)
        self.browse = QtWidgets.QPushButton("Save as…")
        self.browse.clicked.connect(self._choose_output)
        out_row.addWidget(self.output, 1)
        out_row.addWidget(self.browse)
        form.addRow("Output", out_row)

        self.stage = QtWidgets.QLabel()
        self.stage.setObjectName("hint")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.hide()
        layout.addWidget(self.progress)
        layout.addWidget(self.stage)
        self.result_label = QtWidgets.QLabel()
        self.result_label.setObjectName("exportResult")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.result_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.hide()
        layout.addWidget(self.result_label)

        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self._format_changed()
        run_dir = self.run_dir
        # Without a list of networks the dialog exports the run's default one: an error here is no error.
        self._networks_task = start_worker(lambda: run_networks(run_dir), returned=self._networks_loaded,
                                           errored=lambda _error: None, name="sskt-run-networks")

    # -- choices ---------------------------------------------------------------------------
    def fmt(self) -> str:
        return str(self.format.currentData())

    def set_format(self, fmt: str) -> None:
        self.format.setCurrentIndex(self.format.findData(fmt))

    def _format_changed(self, *_args) -> None:
        fmt = self.fmt()
        text = self.output.text().strip()
        suffix = _suffix(fmt)
        if not text:
            self.output.setText(str(self.run_dir / f"{self.run_dir.name}{suffix}"))
        else:
            path = Path(text)
            stem = path.name
            for old in sorted({_suffix(f) for f in _formats()}, key=len, reverse=True):
                if stem.endswith(old):
                    stem = stem[: -len(old)]
                    break
            self.output.setText(str(path.with_name(stem + suffix)))
        self._update_buttons()

    def _choose_output(self) -> None:
        fmt = self.fmt()
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export to", self.output.text(),
                                                        f"{SAVE_FILTERS.get(fmt, fmt)};;All files (*)")
        if path:
            self.output.setText(path)

    @QtCore.Slot(object)
    def _networks_loaded(self, result: tuple[list[str], str]) -> None:
        names, default = result
        self.network.clear()
        for name in names:
            self.network.addItem(name, name)
        if default in names:
            self.network.setCurrentIndex(names.index(default))
        self.form.setRowVisible(self.network, len(names) > 1)

    def network_name(self) -> str | None:
        return self.network.currentData() if self.network.count() > 1 else None

    def busy(self) -> bool:
        return self._task is not None

    def _update_buttons(self) -> None:
        idle = not self.busy()
        self.export_button.setEnabled(idle and bool(self.output.text().strip()))
        for widget in (self.format, self.checkpoint, self.aux_heads, self.network, self.output, self.browse):
            widget.setEnabled(idle)

    # -- export ----------------------------------------------------------------------------
    def start_export(self) -> None:
        if self.busy() or not self.output.text().strip():
            return
        from sskt_engine.export import export_run

        run_dir, fmt, output = self.run_dir, self.fmt(), self.output.text().strip()
        checkpoint, keep = str(self.checkpoint.currentData()), self.aux_heads.isChecked()
        network = self.network_name()
        self.result = None
        self.result_label.hide()
        self.progress.setValue(0)
        self.progress.show()
        self.stage.setText("Starting…")
        self._task = start_worker(
            lambda control: export_run(run_dir, fmt, output, checkpoint=checkpoint, keep_aux_heads=keep,
                                       network=network, on_progress=lambda stage, fraction: control.yield_value(
                                           (stage, float(fraction)))),
            takes_control=True, yielded=self._on_progress, returned=self._export_done, errored=self._export_failed,
            name="sskt-export")
        self._update_buttons()

    def _on_progress(self, progress: tuple[str, float]) -> None:
        stage, fraction = progress
        if self.busy():
            self.progress.setValue(int(round(100 * max(0.0, min(1.0, fraction)))))
            self.stage.setText(stage[:1].upper() + stage[1:] + "…" if stage != "done" else "Done")

    def _export_done(self, result: Any) -> None:
        self._task = None
        self.result = result
        self.progress.setValue(100)
        self.stage.setText("Done")
        check = "✔" if result.verified else "⚠"
        lines = [f"<b>Exported</b> {result.path}", f"size {human_size(result.size_bytes)}",
                 f"{check} max difference from the trained network: <b>{result.diff_text()}</b> "
                 f"({result.verification})"]
        lines += list(result.notes)
        self.result_label.setText("<br>".join(lines))
        self.result_label.show()
        self._update_buttons()
        self.exported.emit(result)

    def _export_failed(self, error: WorkerError) -> None:
        from sskt_engine.export import ExportFailed

        exc, detail = error.exception, error.detail
        self._task = None
        self.progress.hide()
        self.stage.setText("Export failed")
        self._update_buttons()
        if isinstance(exc, (UserInputError, ExportFailed)):
            message = str(exc).strip()
            show_error(self, "Export failed", message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."))
        else:
            show_error(self, "Export failed", f"The export stopped because of an unexpected error: {error.sentence}",
                       detail)

    def reject(self) -> None:
        if self.busy():
            return  # the file is being written; Close waits for the end
        super().reject()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if self.busy():
            event.ignore()
            return
        super().closeEvent(event)
