"""Presets through the window: save/load round trip, title and unsaved mark, recent and
built-in presets, asking before losing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from app.settings import AppSettings
from conftest import type_into
from sskt_engine.config import dumps_preset, load_preset
from sskt_engine.resources import builtin_presets, demo_preset

Buttons = QtWidgets.QMessageBox.StandardButton


def _choose(combo_editor, value: str) -> None:
    combo = combo_editor.input
    combo.setCurrentIndex(combo.findData(value))


def test_save_and_open_round_trip_equals_the_file(make_window, tiny_preset, qtbot, monkeypatch, gui_env):
    window = make_window(preset=tiny_preset)
    assert window.windowTitle() == "tiny.yaml[*] — SSKT Studio" and not window.isWindowModified()

    train = window.setup_panel.forms["train"]
    type_into(qtbot, train.editor("lr"), "0.02")
    _choose(train.editor("optimizer"), "adam")
    type_into(qtbot, train.editor("milestones"), "3, 7")
    window.setup_panel.forms["data"].editor("augment").input.click()
    type_into(qtbot, window.setup_panel.forms["experiment"].editor("name"), "round trip")
    assert window.isWindowModified()

    target = gui_env / "saved" / "round-trip"
    target.parent.mkdir()
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.save_as_action.trigger()
    saved = target.with_suffix(".yaml")
    assert saved.is_file()
    assert not window.isWindowModified() and window.windowTitle().startswith("round-trip.yaml[*]")

    on_disk = load_preset(saved)
    assert on_disk == window.document.config
    assert (on_disk.train.lr, on_disk.train.optimizer, on_disk.train.milestones) == (0.02, "adam", (3, 7))
    assert on_disk.data.augment is False and on_disk.name == "round trip"
    # Written by the engine's preset module: byte for byte what `sskt` writes for this config.
    assert saved.read_text(encoding="utf-8") == dumps_preset(on_disk)

    window.new_action.trigger()
    assert window.document.title == "Untitled"
    assert train.editor("lr").input.text() == "0.1"

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(saved), ""))
    window.open_action.trigger()
    assert train.editor("lr").input.text() == "0.02"
    assert train.editor("optimizer").input.currentData() == "adam"
    assert train.editor("milestones").input.text() == "3, 7"
    assert window.document.config == on_disk and not window.isWindowModified()
    # Remembered: the next launch reopens it and lists it under Open Recent.
    settings = AppSettings()
    assert settings.last_preset == saved.resolve() and saved.resolve() in settings.recent_presets
    window.recent_menu.aboutToShow.emit()
    assert "round-trip.yaml" in [a.text() for a in window.recent_menu.actions()]


def test_ctrl_s_saves_in_place(make_window, tiny_preset, qtbot):
    window = make_window(preset=tiny_preset)
    type_into(qtbot, window.setup_panel.forms["train"].editor("epochs"), "7")
    window.save_action.trigger()
    assert load_preset(tiny_preset).train.epochs == 7 and not window.isWindowModified()


def test_invalid_preset_is_not_saved(make_window, tiny_preset, qtbot, dialogs):
    window = make_window(preset=tiny_preset)
    type_into(qtbot, window.setup_panel.forms["train"].editor("lr"), "-1")
    before = tiny_preset.read_text()
    assert not window.save_preset()
    assert tiny_preset.read_text() == before
    assert dialogs.titles() == ["Cannot save preset"] and "train.lr" in dialogs.shown[0][2]


def test_closing_with_unsaved_changes_asks(make_window, tiny_preset, qtbot, dialogs):
    window = make_window(preset=tiny_preset)
    type_into(qtbot, window.setup_panel.forms["train"].editor("epochs"), "9")
    dialogs.answers = [Buttons.Cancel]
    assert not window.close() and window.isVisible()
    assert dialogs.shown[-1][2] == "Save the changes to tiny.yaml?"
    dialogs.answers = [Buttons.Discard]
    assert window.close()
    assert load_preset(tiny_preset).train.epochs == 2  # discarded, the file is untouched


def test_opening_a_broken_preset_says_where(make_window, tiny_preset, gui_env, monkeypatch, dialogs):
    window = make_window(preset=tiny_preset)
    broken = gui_env / "broken.yaml"
    broken.write_text("train:\n  lr: fast\n")
    assert not window.open_preset(broken)
    kind, title, text, _ = dialogs.shown[-1]
    assert title == "Cannot open preset" and "line 2" in text and "train.lr" in text
    assert window.document.title == "tiny.yaml"  # the open preset is kept


def test_builtin_presets_and_first_launch(make_window, gui_env):
    window = make_window()
    menu_names = [a.text() for a in window.builtin_menu.actions() if a.menu() is None]  # the paper submenu apart
    assert len(menu_names) == len(builtin_presets())
    demo = demo_preset()
    if demo is None:
        assert window.document.title == "Untitled"  # defaults until the demo preset ships
        return
    assert window.document.title == "demo.yaml" and window.document.read_only
    assert "(built-in)" in window.windowTitle()
    assert window.document.config == load_preset(demo)
    assert window.start_action.isEnabled(), window.run_bar.problem_text()


def test_window_geometry_is_remembered(make_window, tiny_preset):
    window = make_window(preset=tiny_preset)
    # A size the screen holds, whatever the platform's screen is (offscreen, Xvfb, a desktop):
    # Qt shrinks a restored window that would not fit on it, and the window has a minimum size.
    screen = window.screen().availableGeometry()
    smallest = window.minimumSizeHint().expandedTo(window.minimumSize())
    wanted = QtCore.QSize(min(smallest.width() + 57, screen.width()), min(smallest.height() + 23, screen.height()))
    if wanted.width() < smallest.width() or wanted.height() < smallest.height():
        pytest.skip(f"a {screen.width()}x{screen.height()} screen cannot hold the window "
                    f"({smallest.width()}x{smallest.height()} at least)")
    before = window.size()
    window.resize(wanted)
    size = window.size()
    assert size != before  # otherwise the default size would pass for a remembered one
    assert window.close()
    again = make_window()
    assert again.size() == size
    assert again.document.title == "tiny.yaml"  # the last preset comes back too
    assert Path(AppSettings().path).is_file()


def test_the_paper_presets_open_from_their_own_submenu(make_window, tiny_preset):
    from sskt_engine.resources import paper_presets

    window = make_window(None, tiny_preset)
    rows = {a.text(): a.menu() for a in window.paper_menu.actions() if a.menu() is not None}
    assert "cifar10-resnet20" in rows and len(paper_presets()) >= 39
    methods = {a.text(): a for a in rows["cifar10-resnet20"].actions()}
    assert {"supervised", "kd", "dml", "sskt"} <= set(methods)
    methods["sskt"].trigger()
    assert window.document.config.paper.mean == pytest.approx(92.46)  # the published figure came along
    assert window.document.read_only  # a shipped file: opened read-only, saved with Save As
