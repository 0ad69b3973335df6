"""Issue 18, the smaller confusions a newcomer met: the Cannot-start link, an empty "Earlier run"
dialog, ONNX without its package, missing X11 libraries, Compare's first settings."""

from __future__ import annotations

import re

import pytest
from PySide6 import QtWidgets

from conftest import type_into


def test_cannot_start_link_names_the_field_as_the_form_does(make_window, tiny_preset, qtbot, fake_trainer):
    window = make_window(fake_trainer, tiny_preset)
    lr = window.setup_panel.forms["train"].editor("lr")
    type_into(qtbot, lr, "fast")
    text = window.run_bar.problem_text()
    link = re.search(r"<a href='([^']*)'>([^<]*)</a>", text)
    assert link is not None, text
    href, shown = link.groups()
    assert href == "train.lr"  # the link still jumps to the field
    shown_label = window.setup_panel.forms["train"].labels["lr"].text()
    assert shown.startswith(shown_label) and "train.lr" not in shown
    window.run_bar.problem_label.linkActivated.emit(href)
    qtbot.waitUntil(lambda: lr.input.hasFocus() or QtWidgets.QApplication.focusWidget() is lr.input, timeout=3000)


def test_field_titles_for_sources_name_the_source(make_window, tiny_preset, fake_trainer):
    window = make_window(fake_trainer, tiny_preset)
    assert window._field_title("sources[1].path") == "Source 2: Path"
    assert window._field_title("sources") == "Source models"
    assert window._field_title("") == ""


def test_earlier_run_dialog_without_runs_says_so(qtbot, tmp_path):
    from app.widgets.run_source_dialog import RunSourceDialog

    dialog = RunSourceDialog(tmp_path / "runs")
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.add_button.isEnabled()  # an Add that would do nothing is off
    assert dialog.empty.isVisible() and "No finished or stopped runs" in dialog.empty.text()
    assert not dialog.table.isVisible()


def test_onnx_without_its_package_is_shown_unavailable_with_the_command(monkeypatch, qtbot, tmp_path):
    import importlib.util

    from app.widgets import export_dialog
    from sskt_engine.export_formats import ONNX_INSTALL, unavailable_formats

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert unavailable_formats() == {"onnx": ONNX_INSTALL}
    monkeypatch.setattr(export_dialog.ExportDialog, "_load_networks", lambda self: None, raising=False)
    dialog = export_dialog.ExportDialog(tmp_path / "20261130-101010-run")
    qtbot.addWidget(dialog)
    index = dialog.format.findData("onnx")
    item = dialog.format.model().item(index)
    assert not item.isEnabled() and ONNX_INSTALL in dialog.format.itemText(index)
    assert dialog.format.currentData() != "onnx"


def test_sskt_export_help_names_the_onnx_command(monkeypatch, capsys):
    import importlib.util

    from sskt_engine import cli
    from sskt_engine.export_formats import ONNX_INSTALL

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    out = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    assert f"onnx needs {ONNX_INSTALL}" in out


@pytest.mark.parametrize("env, missing", [
    ({"DISPLAY": ":0"}, ["libxcb-cursor0"]),  # an X11 session without libxcb-cursor
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, []),  # Qt takes Wayland there
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, []),
    ({"QT_QPA_PLATFORM": "xcb"}, ["libxcb-cursor0"]),
])
def test_missing_x11_libraries_are_named_in_one_sentence(env, missing):
    from app.system_libraries import missing_libraries_sentence, missing_xcb_packages

    found = missing_xcb_packages(env, "linux", loads=lambda soname: soname != "libxcb-cursor.so.0")
    assert found == missing
    assert missing_xcb_packages(env, "darwin", loads=lambda soname: False) == []
    if missing:
        sentence = missing_libraries_sentence(found)
        assert "sudo apt install libxcb-cursor0" in sentence and sentence.endswith(".") and "\n" not in sentence


def test_app_exits_with_the_sentence_instead_of_aborting(monkeypatch, capsys):
    from app import main as app_main
    from app import system_libraries

    monkeypatch.setattr(system_libraries, "missing_xcb_packages", lambda: ["libxcb-cursor0"])
    assert app_main.main([]) == 2
    assert "libxcb-cursor0" in capsys.readouterr().err


def test_compare_time_estimate_reads_the_last_run():
    from app.widgets.compare_dialog import time_estimate

    assert time_estimate(3, 10, None, False).startswith("3 runs of 10 epochs: each takes about as long")
    text = time_estimate(4, 10, (60.0, 5), True)
    assert "about 8 min" in text or "about 8m" in text or "8:00" in text, text
    assert "MAXL" in text


def test_fields_that_do_not_apply_are_hidden(make_window, tiny_preset, fake_trainer, qtbot):
    from app.field_applicability import field_hidden

    window = make_window(fake_trainer, tiny_preset)
    panel, document = window.setup_panel, window.document
    document.set(("train", "schedule"), "cosine")
    assert field_hidden(panel, "train", "milestones") and field_hidden(panel, "train", "gamma")
    document.set(("train", "schedule"), "multistep")
    assert not field_hidden(panel, "train", "milestones") and not field_hidden(panel, "train", "gamma")
    document.set(("method", "name"), "sskt")
    settle = QtWidgets.QApplication.processEvents
    settle()
    assert field_hidden(panel, "method", "focal_gamma")  # soft_ce by default
    document.set(("method", "aux_loss"), "focal")
    assert not field_hidden(panel, "method", "focal_gamma")
    document.set(("method", "name"), "maxl")
    settle()
    assert not field_hidden(panel, "method", "focal_gamma")  # MAXL always uses it


def test_validation_split_zero_is_explained(make_window, tiny_preset, fake_trainer):
    window = make_window(fake_trainer, tiny_preset)
    editor = window.setup_panel.forms["data"].editor("val_split")
    window.document.set(("data", "val_split"), 0.0)
    editor.set_value(0.0)
    window.setup_panel._document_changed()
    assert editor.value_note.isVisibleTo(window) and "test split" in editor.value_note.text()
    editor.set_value(0.1)
    window.document.set(("data", "val_split"), 0.1)
    assert not editor.value_note.isVisibleTo(window)


def test_missing_dataset_folder_is_marked_when_typed(make_window, tiny_preset, fake_trainer, qtbot, tmp_path):
    from conftest import type_into

    window = make_window(fake_trainer, tiny_preset)
    window.document.set(("data", "dataset"), "imagefolder")
    root = window.setup_panel.forms["data"].editor("root")
    type_into(qtbot, root, str(tmp_path / "no-such-folder"))
    assert "does not exist" in root.error and root.input.property("invalid") is True
    (tmp_path / "images").mkdir()
    type_into(qtbot, root, str(tmp_path / "images"))
    assert root.error == ""


def test_a_stale_error_leaves_the_status_bar_when_the_settings_change(make_window, tiny_preset, fake_trainer):
    window = make_window(fake_trainer, tiny_preset)
    window._on_failed("Cannot start: the dataset folder is missing", "")
    assert window.statusBar().currentMessage().startswith("Cannot start")
    window.document.set(("train", "epochs"), 3)
    assert window.statusBar().currentMessage() == ""


def test_edit_menu_undoes_and_redoes_form_edits(make_window, tiny_preset, fake_trainer, qtbot, monkeypatch):
    from app import edit_history

    monkeypatch.setattr(edit_history, "MERGE_S", 0.0)  # every edit a step of its own
    window = make_window(fake_trainer, tiny_preset)
    assert not window.undo_action.isEnabled()
    window.document.set(("train", "epochs"), 7)
    window.document.set(("train", "lr"), 0.5)
    assert window.undo_action.isEnabled() and not window.redo_action.isEnabled()
    window.undo_action.trigger()
    assert window.document.get(("train", "lr")) == 0.05 and window.document.get(("train", "epochs")) == 7
    assert window.setup_panel.forms["train"].editor("lr").value() == 0.05  # the form shows it
    window.undo_action.trigger()
    assert window.document.get(("train", "epochs")) == 2 and not window.undo_action.isEnabled()
    window.redo_action.trigger()
    assert window.document.get(("train", "epochs")) == 7 and window.redo_action.isEnabled()
    window.document.set(("train", "epochs"), 9)  # a new edit ends the redo branch
    assert not window.redo_action.isEnabled()
    assert window.document.path == tiny_preset  # undo never changes which file is edited
    assert [a.text() for a in window.menuBar().actions()][:2] == ["&File", "&Edit"]


def test_typing_in_a_field_merges_into_one_undo_step(make_window, tiny_preset, fake_trainer, qtbot):
    window = make_window(fake_trainer, tiny_preset)
    lr = window.setup_panel.forms["train"].editor("lr")
    type_into(qtbot, lr, "0.125")
    assert window.document.get(("train", "lr")) == 0.125
    window.edit_history.undo()
    assert window.document.get(("train", "lr")) == 0.05


def test_preferences_set_theme_runs_folder_device_and_threads(make_window, tiny_preset, fake_trainer, qtbot,
                                                              qapp, gui_env, monkeypatch):
    from app.palette import is_dark

    applied = []
    monkeypatch.setattr("app.main_window.apply_thread_count", applied.append)
    window = make_window(fake_trainer, tiny_preset)
    dialog = window.open_preferences()
    assert dialog.isVisible() and dialog.theme.currentData() == "system" and dialog.threads.value() == 0
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.runs_root.setText(str(gui_env / "other-runs"))
    dialog.device.setCurrentText("cpu")
    dialog.threads.setValue(2)
    try:
        dialog._accept()
        assert is_dark(qapp.palette()) and is_dark(window.plots.palette())
        assert window.runs_root == gui_env / "other-runs" and window.runs_panel.runs_root == gui_env / "other-runs"
        assert applied == [2]
        window.document._saved = window.document.raw  # no save question
        window.new_preset()
        assert window.document.get(("train", "device")) == "cpu" and not window.document.is_dirty()
        from app.settings import AppSettings

        saved = AppSettings()
        assert (saved.theme, saved.threads, saved.default_device) == ("dark", 2, "cpu")
    finally:
        window.apply_preferences({**dialog.values(), "theme": "system"})
        qtbot.waitUntil(lambda: not is_dark(qapp.palette()), timeout=3000)


def test_compare_has_a_shortcut_and_help_walks_through_the_demo(make_window, tiny_preset, fake_trainer, qtbot):
    window = make_window(fake_trainer, tiny_preset)
    assert window.compare_action.shortcut().toString() == "Ctrl+Shift+C"
    page = window.show_getting_started()
    text = page.text.toPlainText()
    assert "Start" in text and "Ctrl+R" in text and "Ctrl+Shift+C" in text and "imagefolder" in text
    window.document.set(("train", "epochs"), 5)
    window.document._saved = window.document.raw
    page.demo_button.click()
    assert window.document.title == "demo.yaml" or "demo" in window.document.title


def test_dropping_a_preset_opens_it_and_a_model_file_becomes_a_source(make_window, tiny_preset, fake_trainer,
                                                                       qtbot, tmp_path):
    import torch
    from PySide6 import QtCore, QtGui

    from app.main_window import dropped_files

    window = make_window(fake_trainer)
    model = tmp_path / "scripted.pt"
    with pytest.warns(Warning):
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(model))
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(tiny_preset)), QtCore.QUrl.fromLocalFile(str(model)),
                  QtCore.QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    assert dropped_files(mime) == ([tiny_preset], [model])
    window.document._saved = window.document.raw
    drop = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert window.document.path == tiny_preset
    sources = window.document.get(("sources",))
    assert sources[-1] == {"kind": "compiled", "path": str(model)}


def test_runs_table_columns_filter_and_trash(make_window, fake_trainer, tiny_preset, gui_env, dialogs, qtbot):
    import copy as copy_

    from PySide6 import QtWidgets as W

    from conftest import TINY_PRESET
    from sskt_engine.config import from_dict

    root = gui_env / "runs"
    quick = type("Quick", (fake_trainer,), {"step_delay": 0})
    for name, method in (("alpha-run", "supervised"), ("beta-run", "dml")):
        preset = copy_.deepcopy(TINY_PRESET)
        preset["name"], preset["method"] = name, {"name": method}
        quick(from_dict(preset), root).run()
    window = make_window(fake_trainer, tiny_preset)
    panel = window.runs_panel
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 2, timeout=10000)
    header = [panel.tree.headerItem().text(c) for c in range(panel.tree.columnCount())]
    assert header[:4] == ["Run", "Started", "Status", "Best"] and "Method" in header and "Final" in header
    methods = {panel.tree.topLevelItem(i).text(header.index("Method")) for i in range(2)}
    assert methods == {"supervised", "dml"}
    panel.filter.setText("dml")
    assert [p.name.endswith("beta-run") for p in panel.visible_runs()] == [True]
    panel.filter.setText("")
    assert len(panel.visible_runs()) == 2
    # delete: asked first, then moved to the runs folder's trash (never removed for good)
    panel.select([panel.visible_runs()[0]])
    doomed = panel.selected_paths()[0]
    dialogs.answers.append(W.QMessageBox.StandardButton.Yes)
    assert panel.delete_selected()
    assert "trash" in dialogs.shown[-1][2]
    assert not doomed.exists() and (root / ".trash" / doomed.name).is_dir()
    qtbot.waitUntil(lambda: not panel.is_listing() and panel.tree.topLevelItemCount() == 1, timeout=10000)


def test_a_text_file_named_pt_is_refused_in_plain_words_as_it_is_chosen(make_window, tiny_preset, fake_trainer,
                                                                        qtbot, tmp_path):
    window = make_window(fake_trainer, tiny_preset)
    notes = tmp_path / "notes.pt"
    notes.write_text("not a network\n")
    window.document.set_sources([{"kind": "checkpoint", "path": str(notes), "arch": "tiny_cnn"}])
    window.setup_panel.load_from_document()
    qtbot.waitUntil(lambda: not window.source_checker.busy(), timeout=20000)
    sources = window.setup_panel.sources
    sources.list.setCurrentRow(0)
    path_editor = sources.details.editors["path"]
    assert window.source_checker.problems() == {"sources[0].path": "notes.pt is a text file, not a PyTorch checkpoint"}, \
        (window.source_checker.results, sources._errors)
    qtbot.waitUntil(lambda: "text file" in path_editor.error, timeout=5000)
    assert path_editor.error == "notes.pt is a text file, not a PyTorch checkpoint"
    assert "Error" not in path_editor.error
    assert sources.list.item(0).toolTip() and "text file" in sources.list.item(0).toolTip()
