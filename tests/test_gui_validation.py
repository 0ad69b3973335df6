"""The setup form: generated from the engine's declarations, validated by the engine,
invalid values marked where they are and Start disabled with the reason."""

from __future__ import annotations

import dataclasses

import pytest

from app.engine_catalog import describe
from app.widgets.setup_panel import SetupPanel
from conftest import type_into
from sskt_engine.config import DataConfig, MethodOptions, TrainConfig, option
from sskt_engine.registry import ARCHITECTURES, METHODS, ArchitectureInfo, MethodInfo


def test_invalid_field_disables_start_and_is_marked_in_place(make_window, tiny_preset, qtbot, fake_trainer):
    window = make_window(fake_trainer, tiny_preset)
    assert window.start_action.isEnabled()
    lr = window.setup_panel.forms["train"].editor("lr")

    type_into(qtbot, lr, "fast")
    assert not window.start_action.isEnabled() and not window.start_button.isEnabled()
    assert lr.input.property("invalid") is True
    assert "must be a number" in lr.error
    assert "train.lr" in window.run_bar.problem_text() and "must be a number" in window.run_bar.problem_text()
    window.start_run()  # the shortcut path is refused too
    assert not window.controller.is_running()

    type_into(qtbot, lr, "0")
    assert "must be greater than 0" in lr.error and not window.start_action.isEnabled()

    epochs = window.setup_panel.forms["train"].editor("epochs")
    type_into(qtbot, epochs, "0")
    # Both problems are marked at once, and the bar counts the rest.
    assert "must be at least 1" in epochs.error and lr.error
    assert "(and 1 more)" in window.run_bar.problem_text()
    assert window.setup_panel.sections["train"].badge.text() == "2 problems"

    type_into(qtbot, lr, "0.05")
    type_into(qtbot, epochs, "3")
    assert window.start_action.isEnabled() and not window.run_bar.problem_text()
    assert lr.input.property("invalid") is False and lr.error == ""


def test_problem_link_jumps_to_the_field(make_window, tiny_preset, qtbot):
    window = make_window(preset=tiny_preset)
    type_into(qtbot, window.setup_panel.forms["train"].editor("batch_size"), "x")
    window.setup_panel.sections["train"].set_expanded(False)
    window.run_bar.problem_label.linkActivated.emit("train.batch_size")
    assert window.setup_panel.sections["train"].is_expanded()
    assert window.focusWidget() is window.setup_panel.forms["train"].editor("batch_size").input


def test_method_fields_follow_the_method_and_sources_are_required(make_window, tiny_preset, qtbot):
    window = make_window(preset=tiny_preset)
    method_form = window.setup_panel.forms["method"]
    assert "alpha" not in method_form.visible_names()  # supervised reads no alpha
    method_form.editor("name").input.setCurrentIndex(method_form.editor("name").input.findData("sskt"))
    assert {"alpha", "temperature", "aux_loss", "head"} <= set(method_form.visible_names())
    # sskt needs a source: the sources list says so and Start is off.
    assert "needs at least 1 source" in window.setup_panel.sources.error_label.text()
    assert not window.start_action.isEnabled()
    sources = window.setup_panel.sources
    sources.add_source({"kind": "torchvision", "arch": "", "weights": "IMAGENET1K_V1"})
    assert not window.start_action.isEnabled()
    arch = sources.details.editor("arch")
    assert "needs the model name" in arch.error and arch.input.property("invalid") is True
    assert "arch" in sources.list.item(0).toolTip()
    type_into(qtbot, arch, "resnet18")
    assert window.document.is_valid(), window.document.errors
    assert window.start_action.isEnabled() and arch.error == ""
    assert window.document.config.sources[0].arch == "resnet18"
    assert sources.list.item(0).text().startswith("resnet18:IMAGENET1K_V1")
    window.setup_panel.sources.remove_selected()
    assert not window.start_action.isEnabled()


def test_switching_methods_swaps_their_keys_and_brings_back_earlier_values(make_window, tiny_preset, qtbot):
    window = make_window(preset=tiny_preset)
    form, document = window.setup_panel.forms["method"], window.document
    name = form.editor("name").input
    name.setCurrentIndex(name.findData("sskt"))
    type_into(qtbot, form.editor("alpha"), "0.7")
    assert document.get(("method", "alpha")) == 0.7
    name.setCurrentIndex(name.findData("kd"))
    assert set(document.get(("method",))) == {"name", "teacher", "distill_weight", "temperature"}
    assert form.editor("temperature").value() == 4.0  # KD's own default, not SSKT's 3
    assert "alpha" not in form.visible_names() and "distill_weight" in form.visible_names()
    name.setCurrentIndex(name.findData("sskt"))
    assert document.get(("method", "alpha")) == 0.7 and form.editor("alpha").value() == 0.7
    assert not any(path.startswith("method") for path in document.error_map())


def test_every_field_has_an_editor_with_its_help_as_tooltip(qtbot, gui_env):
    from app.preset_document import PresetDocument

    panel = SetupPanel(PresetDocument(), lambda: gui_env)
    qtbot.addWidget(panel)
    for key, cls in (("data", DataConfig), ("method", MethodOptions), ("train", TrainConfig)):
        for desc in describe(cls):
            editor = panel.forms[key].editor(desc["name"])
            assert desc["help"].split(":")[0] in editor.input.toolTip()
            assert panel.forms[key].labels[desc["name"]].toolTip() == editor.input.toolTip()
    device = panel.forms["train"].editor("device").input
    assert device.isEditable() and device.findText("cpu") >= 0


def test_a_method_and_architecture_added_to_the_engine_appear_without_gui_changes(qtbot, gui_env, monkeypatch):
    from app.preset_document import PresetDocument

    @dataclasses.dataclass(frozen=True)
    class TestTransferOptions(MethodOptions):
        name: str = option("test_transfer", "Training method.")
        test_knob: float = option(1.0, "A knob of the test method.", min=0.0)

    monkeypatch.setitem(METHODS._entries, "test_transfer",
                        MethodInfo(name="test_transfer", build=object, options=TestTransferOptions,
                                   description="A method only this test knows."))
    monkeypatch.setitem(ARCHITECTURES._entries, "test_net",
                        ArchitectureInfo(name="test_net", build=object, input_size=32,
                                         description="A network only this test knows."))
    # A key read only by the new method is shown only while it is chosen.
    document = PresetDocument()
    panel = SetupPanel(document, lambda: gui_env)
    qtbot.addWidget(panel)
    method = panel.forms["method"].editor("name")
    assert method.input.findData("test_transfer") >= 0
    assert panel.forms["target"].editor("arch").input.findData("test_net") >= 0
    assert "test_knob" not in panel.forms["method"].visible_names()
    method.input.setCurrentIndex(method.input.findData("test_transfer"))
    assert document.get(("method", "name")) == "test_transfer"
    assert method.description_label.text() == "A method only this test knows."
    assert "test_knob" in panel.forms["method"].visible_names()
    assert "alpha" not in panel.forms["method"].visible_names()
    assert document.get(("method",)) == {"name": "test_transfer", "test_knob": 1.0}
    type_into(qtbot, panel.forms["method"].editor("test_knob"), "-1")
    assert "must be at least 0.0" in panel.forms["method"].editor("test_knob").error_label.text()
    from app.worker import wait_for_all

    wait_for_all()


@pytest.mark.parametrize("text, value", [("12", 12), ("1e3", 1000), ("", ""), ("2.5", 2.5), ("abc", "abc")])
def test_number_editor_hands_back_what_was_typed(qtbot, text, value):
    from app.widgets.field_editors import NumberEditor

    desc = next(d for d in describe(TrainConfig) if d["name"] == "epochs")
    editor = NumberEditor(desc, int, optional=False)
    qtbot.addWidget(editor)
    editor.input.setText(text)
    assert editor.value() == value
    assert type(editor.value()) is type(value)


def test_optional_fields_are_empty_for_none(make_window, tiny_preset, qtbot):
    window = make_window(preset=tiny_preset)
    labels = window.setup_panel.forms["data"].editor("labels_per_class")
    assert labels.input.text() == "10"
    type_into(qtbot, labels, "")
    assert window.document.get(("data", "labels_per_class")) is None
    assert window.document.is_valid() and window.document.config.data.labels_per_class is None
    assert labels.input.placeholderText() == "all"
    assert dataclasses.fields(DataConfig)  # the form covers the engine's declaration
