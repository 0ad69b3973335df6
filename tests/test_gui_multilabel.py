"""The Results tab's multi-label pieces: captions compare label sets, and a class without an
average precision (no positive validation image) is shown as such, not as a bar of NaN."""

from __future__ import annotations

import math

import pytest

from app.widgets.prediction_captions import PARTLY, RIGHT, WRONG, prediction_caption


def test_single_label_caption_shows_the_true_class_when_wrong():
    assert prediction_caption(("cat",), ("cat",)).color == RIGHT
    wrong = prediction_caption(("cat",), ("dog",))
    assert wrong.color == WRONG and wrong.text == "dog\n(cat)" and "true cat" in wrong.tooltip


def test_multi_label_caption_compares_sets_not_joined_text():
    # joined text "cat, dog" contains "cat", which a string comparison took for a match
    partial = prediction_caption(("cat", "dog"), ("cat",))
    assert partial.color == PARTLY and partial.text == "cat\n\u2212dog" and "missed dog" in partial.tooltip
    assert prediction_caption(("dog", "cat"), ("cat", "dog")).color == RIGHT  # order does not matter
    extra = prediction_caption(("cat",), ("cat", "tree"))
    assert extra.color == PARTLY and extra.text.endswith("+tree") and "extra tree" in extra.tooltip
    nothing = prediction_caption(("cat", "dog"), ())
    assert nothing.color == WRONG and nothing.text == "(none)\n\u2212cat \u2212dog"
    assert "missed cat, dog" in nothing.tooltip


def test_class_plot_shows_a_class_without_ap_as_no_value(qtbot):
    from app.widgets.class_accuracy_plot import ClassAccuracyPlot

    plot = ClassAccuracyPlot()
    qtbot.addWidget(plot)
    plot.set_accuracies([0.8, float("nan"), 0.4], ["a", "b", "c"], title="Average precision per class (%)")
    ticks = dict(plot.plot.getAxis("left")._tickLevels[0])
    assert ticks[1] == "b (no value)" and ticks[0] == "a"
    widths = plot.bars.opts["width"]
    assert all(math.isfinite(w) for w in widths) and widths[1] == 0
    assert plot.mean_line.isVisible() and plot.mean_line.value() == pytest.approx(60.0)  # of the two known
    bounds = plot.bars.boundingRect()
    assert math.isfinite(bounds.width()) and math.isfinite(bounds.height())
    plot.set_accuracies([float("nan")], ["only"])
    assert not plot.mean_line.isVisible()


def test_dataset_root_browse_offers_a_csv_file_for_multilabel_csv(qtbot, gui_env, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from app.preset_document import PresetDocument
    from app.widgets.setup_panel import SetupPanel

    labels = tmp_path / "labels.csv"
    labels.write_text("path,labels\na.png,cat\n")
    document = PresetDocument()
    panel = SetupPanel(document, lambda: gui_env)
    qtbot.addWidget(panel)
    document.set(("data", "dataset"), "multilabel-csv")
    document.set(("data", "root"), str(labels))
    chosen = tmp_path / "other.csv"
    asked = {}

    def open_file(parent, caption, start, filters):
        asked.update(start=start, filters=filters)
        return str(chosen), filters

    def no_folder(*args, **kwargs):
        raise AssertionError("a CSV dataset whose root is a file must not get a folder dialog")

    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", open_file)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", no_folder)
    panel._browse_root()
    assert "*.csv" in asked["filters"] and asked["start"] == str(labels)
    assert document.get(("data", "root")) == str(chosen)
    # an image-folder dataset keeps the folder dialog
    document.set(("data", "dataset"), "imagefolder")
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    panel._browse_root()
    assert document.get(("data", "root")) == str(tmp_path)


def test_class_plot_follows_a_dark_palette(qtbot):
    from PySide6 import QtGui

    from app.palette import DARK_PLOTS, LIGHT_PLOTS
    from app.widgets.class_accuracy_plot import ClassAccuracyPlot

    plot = ClassAccuracyPlot()
    qtbot.addWidget(plot)
    assert plot.colors == LIGHT_PLOTS or plot.colors == DARK_PLOTS  # whatever the test's desktop is
    dark = QtGui.QPalette()
    dark.setColor(QtGui.QPalette.ColorRole.Window, QtGui.QColor("#202124"))
    dark.setColor(QtGui.QPalette.ColorRole.WindowText, QtGui.QColor("#e8eaed"))
    plot.setPalette(dark)
    assert plot.colors == DARK_PLOTS
    assert plot.view.backgroundBrush().color().name() == DARK_PLOTS.background
