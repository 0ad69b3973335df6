"""The setup panel with video datasets (clip keys shown only for them, samples previewed as frame strips), and
a paper UCF101 preset trained from the window."""

from __future__ import annotations

import numpy as np
import pytest


def test_clip_keys_are_shown_for_video_datasets_only(qtbot, gui_env):
    from app.preset_document import PresetDocument
    from app.widgets.setup_panel import SetupPanel

    document = PresetDocument()
    panel = SetupPanel(document, lambda: gui_env)
    qtbot.addWidget(panel)
    form = panel.forms["data"]
    names = [n for n in ("clip_len", "frame_stride", "val_clips", "split") if n in form.editors]
    assert names == ["clip_len", "frame_stride", "val_clips", "split"]
    for dataset, shown in (("demo-video", True), ("demo", False), ("ucf101", True), ("imagefolder", False)):
        document.set(("data", "dataset"), dataset)
        panel._dataset_changed()
        assert all(form.layout_.isRowVisible(form._rows[n]) == shown for n in names), dataset
    assert "ucf101" in [d.name for d in panel.datasets] and "hmdb51" in [d.name for d in panel.datasets]


def test_preview_shows_clips_as_wide_strips(qtbot):
    from app.widgets.dataset_preview import DatasetPreview

    preview = DatasetPreview()
    qtbot.addWidget(preview)
    strips = np.zeros((3, 32, 134, 3), np.uint8)
    preview._loaded((strips, ["go slides", "go turns", "go appears"]))
    assert preview.grid.count() == 3 and preview.grid.aspect > 4
    assert "clips" in preview.title.text()
    preview._loaded((np.zeros((2, 32, 32, 3), np.uint8), ["a", "b"]))
    assert preview.grid.aspect == 1.0 and "images" in preview.title.text()


def test_a_paper_ucf101_preset_trains_sskt_from_the_window(make_window, gui_env, qtbot, monkeypatch, dialogs):
    """The issue's 'a user with UCF101 on disk trains SSKT from a preset in the GUI': open the shipped
    P+I scratch preset, point it at a tiny UCF101 (official layout, AVI files) and at the Places365
    file, shrink it, press Start; the run finishes in the window with both ResNet-50 sources."""
    from pathlib import Path

    pytest.importorskip("av")
    from sskt_engine.resources import resource_path
    from sskt_engine.run_summary import RunSummary
    from video_test_files import make_ucf101

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from paper_standins import write_imagenet_resnet50, write_places365_resnet50

    root = make_ucf101(gui_env / "UCF101")
    write_imagenet_resnet50(gui_env / "torch_home")
    monkeypatch.setenv("TORCH_HOME", str(gui_env / "torch_home"))
    places = write_places365_resnet50(gui_env / "models")
    window = make_window()
    assert window.open_preset(resource_path("presets", "paper", "paper-ucf101-resnet3d18-scratch-pi.yaml"), ask=False)
    for path, value in ((("data", "root"), str(root)), (("sources", 0, "path"), str(places)),
                        (("data", "image_size"), 32), (("data", "clip_len"), 4), (("data", "num_workers"), 0),
                        (("train", "epochs"), 1), (("train", "batch_size"), 6), (("train", "device"), "cpu")):
        window.document.set(path, value)
    qtbot.waitUntil(window.start_action.isEnabled, timeout=10000)
    with qtbot.waitSignal(window.controller.finished, timeout=300000) as finished:
        window.start_action.trigger()
    run_dir, status = finished.args
    assert status == "finished", dialogs.shown
    summary = RunSummary.read(Path(run_dir) / "summary.json")
    assert summary.method == "sskt" and [s["name"] for s in summary.sources] == ["places365", "imagenet"]
