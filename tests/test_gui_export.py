"""The Export dialog: opened from the runs panel and the results tab, exports in the
background with progress, shows the verification figure, errors in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtWidgets

from conftest import TINY_PRESET
from sskt_engine.config import from_dict

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated")


def _real_run(runs_root: Path, method: dict | None = None) -> Path:
    from sskt_engine.trainer import Trainer

    cfg = from_dict({**TINY_PRESET, "name": "export-me", "data": {"dataset": "demo", "labels_per_class": 4},
                     "method": method or {"name": "supervised"},
                     "train": {**TINY_PRESET["train"], "epochs": 1, "batch_size": 16}})
    return Trainer(cfg, runs_root).run().path


def _wait_networks(qtbot, dialog) -> None:
    qtbot.waitUntil(lambda: dialog.network.count() > 0, timeout=20000)


def test_export_from_the_runs_panel(make_window, fake_trainer, tiny_preset, gui_env, qtbot, tmp_path, monkeypatch):
    run = _real_run(gui_env / "runs")
    window = make_window(fake_trainer, tiny_preset)
    panel = window.runs_panel
    panel.refresh()
    qtbot.waitUntil(lambda: not panel.is_listing(), timeout=10000)  # listed in a worker thread
    panel.select([run])
    assert panel.export_button.isEnabled()
    panel.export_button.click()
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible() and dialog.run_dir == run
    assert [dialog.format.itemData(i) for i in range(dialog.format.count())] == ["pt", "safetensors",
                                                                                  "torchscript", "onnx"]
    _wait_networks(qtbot, dialog)
    assert dialog.network.count() == 1 and dialog.form.isRowVisible(dialog.network) is False
    assert dialog.network_name() is None

    # Format changes the suffix; Save as… picks the path.
    dialog.set_format("safetensors")
    assert dialog.output.text().endswith(".safetensors")
    target = tmp_path / "out" / "model.safetensors"
    target.parent.mkdir()
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    dialog.browse.click()
    assert dialog.output.text() == str(target)

    with qtbot.waitSignal(dialog.exported, timeout=60000) as done:
        dialog.export_button.click()
        assert dialog.busy() and not dialog.export_button.isEnabled() and dialog.progress.isVisible()
    result = done.args[0]
    assert target.is_file() and result.path == target and result.size_bytes == target.stat().st_size
    assert result.verified
    text = dialog.result_label.text()
    assert str(target) in text and result.diff_text() in text and result.verification in text
    assert dialog.progress.value() == 100 and dialog.export_button.isEnabled()


def test_export_errors_are_one_sentence(make_window, fake_trainer, tiny_preset, gui_env, qtbot, dialogs, tmp_path):
    run = _real_run(gui_env / "runs")
    window = make_window(fake_trainer, tiny_preset)
    dialog = window.export_run(run)
    _wait_networks(qtbot, dialog)
    dialog.set_format("pt")
    dialog.output.setText(str(tmp_path / "missing folder" / "model.pt"))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.busy(), timeout=30000)
    kind, title, text, detail = dialogs.shown[-1]
    assert title == "Export failed" and "does not exist" in text and text.endswith(".") and "\n" not in text
    assert not detail
    assert not (tmp_path / "missing folder").exists()
    assert dialog.result is None and dialog.export_button.isEnabled()


def test_export_offered_after_a_run_and_network_choice(make_window, fake_trainer, tiny_preset, gui_env, qtbot,
                                                      tmp_path):
    run = _real_run(gui_env / "runs", {"name": "dml"})
    window = make_window(fake_trainer, tiny_preset)
    with qtbot.waitSignal(window.results.shown, timeout=10000):  # the run's files are read in a worker
        window.show_results(run)
    assert window.results.export_button.isEnabled()
    window.results.export_button.click()
    dialog = window.export_dialog
    assert dialog.run_dir == run
    _wait_networks(qtbot, dialog)
    names = [dialog.network.itemData(i) for i in range(dialog.network.count())]
    assert len(names) >= 2 and dialog.form.isRowVisible(dialog.network)
    dialog.network.setCurrentIndex(names.index(names[-1]))
    dialog.set_format("pt")
    dialog.output.setText(str(tmp_path / "peer.pt"))
    with qtbot.waitSignal(dialog.exported, timeout=60000) as done:
        dialog.export_button.click()
    assert done.args[0].metadata.get("network") == names[-1]
