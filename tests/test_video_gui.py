"""The setup panel with video datasets: clip keys shown only for them, samples previewed as frame strips."""

from __future__ import annotations

import numpy as np


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
