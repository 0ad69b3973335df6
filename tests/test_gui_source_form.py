"""Issue 18, leftovers of the first screen: the "Selected source" form shows what a source's kind
needs and folds the rest under Advanced; the target's file fields follow its init; Start checks
the preset's files first. Run at 1280x720, where a long form hurts most."""

from __future__ import annotations

import pytest

from conftest import type_into

SMALL = (1280, 720)
PREPARATION = ("input_size", "mean", "std", "pixel_scale", "pixel_offset")  # how the source's pixels are made


def _window(make_window, fake_trainer, preset, size=SMALL):
    window = make_window(fake_trainer, preset)
    window.resize(*size)
    return window


def _on_screen(form, names) -> set[str]:
    return {name for name in names if form.editors[name].isVisible()}


def test_a_torchvision_source_shows_its_model_and_folds_the_pixel_fields(make_window, tiny_preset,
                                                                         fake_trainer, qtbot):
    window = _window(make_window, fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    sources.add_source({"kind": "torchvision", "arch": "resnet18", "weights": "DEFAULT"})
    details = sources.details
    qtbot.waitUntil(details.isVisible)
    # up front: what a person must choose for this kind
    assert _on_screen(details, details.editors) == {"kind", "arch", "weights", "name"}
    # the rest applies (the engine reads it) but is folded, with nothing set in it
    assert set(PREPARATION) <= set(details.visible_names())
    assert details.advanced_section.isVisible() and not details.advanced_section.is_expanded()
    assert details.advanced_section.badge.isHidden()
    details.advanced_section.header.click()
    assert set(PREPARATION) <= _on_screen(details, details.editors)


@pytest.mark.parametrize("kind, up_front", [
    ("checkpoint", {"kind", "arch", "path", "num_classes", "name"}),
    ("compiled", {"kind", "path", "num_classes", "name"}),
    ("run", {"kind", "path", "checkpoint", "name"}),
])
def test_each_kind_shows_what_it_is_set_with(make_window, tiny_preset, fake_trainer, qtbot, kind, up_front):
    window = _window(make_window, fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    sources.add_source({"kind": kind, "path": "somewhere.pt"})
    details = sources.details
    qtbot.waitUntil(details.isVisible)
    assert _on_screen(details, details.editors) == up_front
    # a run source prepares its images as the run did: it has no advanced keys on image data
    assert details.advanced_section.isVisible() == (kind != "run")


def test_advanced_opens_by_itself_for_a_value_someone_set(make_window, tiny_preset, fake_trainer, qtbot):
    window = _window(make_window, fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    sources.add_source({"kind": "torchvision", "arch": "resnet18"})
    sources.add_source({"kind": "torchvision", "arch": "resnet50", "mean": (0.5, 0.5, 0.5), "std": (0.2, 0.2, 0.2)})
    details = sources.details
    qtbot.waitUntil(details.isVisible)
    assert details.advanced_section.is_expanded()  # the second source (selected) has its own mean/std
    assert {"mean", "std"} <= _on_screen(details, details.editors)
    details.advanced_section.header.click()  # folded, its title says what is set inside (not as a problem)
    assert details.advanced_section.badge.text() == "Mean, Std set"
    assert details.advanced_section.badge.objectName() == "sectionNote"
    sources.list.setCurrentRow(0)  # the first has nothing set there: folded
    assert not details.advanced_section.is_expanded()
    # a source whose Advanced the person opened stays open when they come back to it
    details.advanced_section.header.click()
    sources.list.setCurrentRow(1)
    sources.list.setCurrentRow(0)
    assert details.advanced_section.is_expanded()


def test_advanced_opens_by_itself_for_a_problem(make_window, tiny_preset, fake_trainer, qtbot):
    window = _window(make_window, fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    sources.add_source({"kind": "torchvision", "arch": "resnet18"})
    details = sources.details
    qtbot.waitUntil(details.isVisible)
    assert not details.advanced_section.is_expanded()
    window.document.set(("sources", 0, "input_size"), 4)  # below the engine's minimum of 8
    assert "sources[0].input_size" in window.document.error_map()
    assert details.advanced_section.is_expanded()
    assert details.editors["input_size"].isVisible()
    assert details.advanced_section.badge.text() == "1 problem"
    # a person may fold it again; the same problem does not unfold it at every keystroke elsewhere
    details.advanced_section.header.click()
    type_into(qtbot, window.setup_panel.forms["train"].editor("lr"), "0.01")
    assert not details.advanced_section.is_expanded()


def test_clip_frames_is_advanced_and_only_for_clips(make_window, tiny_preset, fake_trainer, qtbot):
    window = _window(make_window, fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    sources.add_source({"kind": "run", "path": "runs/x"})
    details = sources.details
    assert "clip_frames" not in details.visible_names() and not details.advanced_section.isVisible()
    window.document.set(("data", "dataset"), "demo-video")
    assert "clip_frames" in details.visible_names() and details.advanced_section.isVisible()
    assert not details.editors["clip_frames"].isVisible()  # folded: 1 frame is the default


# -- the target's file fields follow target.init ------------------------------------------

TARGET_FILE_FIELDS = ("weights", "path", "checkpoint", "frozen_stages")


def _target_shown(window) -> set[str]:
    form = window.setup_panel.forms["target"]
    return {name for name in TARGET_FILE_FIELDS if form.editors[name].isVisible()}


@pytest.mark.parametrize("init, shown", [
    ("scratch", set()),
    ("torchvision", {"weights", "frozen_stages"}),
    ("checkpoint", {"path", "frozen_stages"}),
    ("run", {"path", "checkpoint", "frozen_stages"}),
])
def test_target_fields_follow_its_init(make_window, tiny_preset, fake_trainer, qtbot, init, shown):
    window = _window(make_window, fake_trainer, tiny_preset)
    assert _target_shown(window) == set()  # the tiny preset starts from scratch
    combo = window.setup_panel.forms["target"].editor("init").input
    combo.setCurrentIndex(combo.findText(init))  # as a person picks it
    assert window.document.get(("target", "init")) == init
    assert _target_shown(window) == shown
    combo.setCurrentIndex(combo.findText("scratch"))
    assert _target_shown(window) == set()


def test_a_target_field_with_a_problem_is_never_hidden(make_window, tiny_preset, fake_trainer, qtbot):
    window = _window(make_window, fake_trainer, tiny_preset)
    window.document.set(("target", "frozen_stages"), 2)  # freezing random weights: refused under scratch
    assert "target.frozen_stages" in window.document.error_map()
    assert "frozen_stages" in _target_shown(window)
    window.document.set(("target", "frozen_stages"), 0)
    assert "frozen_stages" not in _target_shown(window)


# -- Start checks the preset's files first ------------------------------------------------

def _no_runs(window) -> bool:
    return not (window.runs_root.exists() and any(window.runs_root.iterdir()))


@pytest.mark.parametrize("write", ["missing", "text"])
def test_start_checks_the_source_files_first_and_says_what_is_wrong(make_window, tiny_preset, fake_trainer, qtbot,
                                                                    dialogs, gui_env, write):
    window = _window(make_window, fake_trainer, tiny_preset)
    model = gui_env / "teacher.pt"
    if write == "text":
        model.write_text("these are my notes, not a network\n")
    method = window.setup_panel.forms["method"].editor("name").input
    method.setCurrentIndex(method.findData("sskt"))
    window.setup_panel.sources.add_source({"kind": "checkpoint", "path": str(model), "arch": "tiny_cnn",
                                           "num_classes": 12})
    assert window.start_action.isEnabled(), window.run_bar.problem_text()  # the form alone cannot tell
    window.start_action.trigger()
    qtbot.waitUntil(lambda: bool(dialogs.shown), timeout=30000)
    kind, title, text, detail = dialogs.shown[-1]
    assert title == "Cannot start training" and text.startswith("Source 1 (teacher.pt): ")  # as the form names it
    assert ("does not exist" in text) if write == "missing" else ("is a text file, not a PyTorch checkpoint" in text)
    assert "\n" not in text and detail == ""  # one sentence, nothing to unfold
    assert "Error" not in text and "Traceback" not in text  # no Python exception names
    assert fake_trainer.instances == [] and not window.controller.is_running()  # the run never began
    assert _no_runs(window)
    assert window.run_bar.progress.format() == "Did not start"
    assert window.start_action.isEnabled()
    assert "teacher.pt" in window.log.toPlainText()


def test_start_runs_a_preset_the_check_passes(make_window, tiny_preset, fake_trainer, qtbot, dialogs):
    window = _window(make_window, fake_trainer, tiny_preset)
    with qtbot.waitSignal(window.controller.finished, timeout=30000) as finished:
        window.start_action.trigger()
        assert not window.start_action.isEnabled()  # one press, one check, one run
    assert finished.args[1] == "finished" and dialogs.shown == []
    assert len(fake_trainer.instances) == 1


def test_stop_while_checking_starts_nothing(make_window, tiny_preset, fake_trainer, qtbot, dialogs):
    import threading

    release = threading.Event()

    def slow_check(config):
        release.wait(10)
        return []

    window = _window(make_window, fake_trainer, tiny_preset)
    window.start_check._check = slow_check
    window.start_action.trigger()
    assert window.start_check.busy() and window.stop_action.isEnabled()
    assert window.run_bar.progress.format() == "Checking…"
    window.stop_action.trigger()
    release.set()
    from app.worker import wait_for_all

    assert wait_for_all(10000)  # the check's answer came after it was cancelled: ignored
    assert fake_trainer.instances == [] and _no_runs(window) and dialogs.shown == []
    assert window.start_action.isEnabled() and window.run_bar.progress.format() == "Did not start"
