"""What the app remembers, and the small dialogs and widgets of the setup panel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.settings import MAX_RECENT, SETTINGS_VERSION, AppSettings
from app.widgets.image_grid import ImageGrid
from app.widgets.torchvision_dialog import TorchvisionSourceDialog


def test_settings_round_trip_and_recent_list(gui_env, tmp_path):
    settings = AppSettings()
    for i in range(MAX_RECENT + 3):
        settings.add_recent(tmp_path / f"p{i}.yaml")
    settings.add_recent(tmp_path / "p3.yaml")  # reopening moves it to the top, no duplicate
    settings.runs_root = tmp_path / "runs"
    settings.geometry = "AAAA"
    settings.save()
    again = AppSettings()
    assert again.recent_presets[0] == (tmp_path / "p3.yaml").resolve()
    assert len(again.recent_presets) == MAX_RECENT and len(set(again.recent_presets)) == MAX_RECENT
    assert again.runs_root == tmp_path / "runs" and again.geometry == "AAAA"
    assert json.loads(again.path.read_text())["settings_version"] == SETTINGS_VERSION
    assert str(again.path).startswith(str(gui_env / "config"))


def test_unreadable_or_newer_settings_start_clean(gui_env):
    path = AppSettings().path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert AppSettings().recent_presets == []
    path.write_text(json.dumps({"settings_version": SETTINGS_VERSION + 1, "geometry": "x"}))
    assert AppSettings().geometry is None


def test_torchvision_dialog_shows_cached_state(qtbot):
    catalog = [{"model": "resnet18", "weights": ["IMAGENET1K_V1"], "cached": {"IMAGENET1K_V1": False},
                "num_classes": 1000, "input_size": 224},
               {"model": "resnet50", "weights": ["IMAGENET1K_V1", "IMAGENET1K_V2"],
                "cached": {"IMAGENET1K_V1": False, "IMAGENET1K_V2": True}, "num_classes": 1000, "input_size": 224}]
    dialog = TorchvisionSourceDialog(catalog=catalog)
    qtbot.addWidget(dialog)
    rows = [[dialog.table.topLevelItem(i).text(c) for c in range(3)] for i in range(dialog.table.topLevelItemCount())]
    assert rows == [["resnet18", "IMAGENET1K_V1", "download needed"], ["resnet50", "IMAGENET1K_V1", "download needed"],
                    ["resnet50", "IMAGENET1K_V2", "cached"]]
    # The first cached weights are preselected.
    assert dialog.source() == {"kind": "torchvision", "arch": "resnet50", "weights": "IMAGENET1K_V2"}
    dialog.filter.setText("resnet18")
    dialog.table.setCurrentItem(dialog.table.topLevelItem(0))
    assert dialog.source()["arch"] == "resnet18"


def test_real_torchvision_catalog_loads(qtbot):
    pytest.importorskip("sskt_engine.sources")
    dialog = TorchvisionSourceDialog()
    qtbot.addWidget(dialog)
    assert dialog.table.topLevelItemCount() > 10
    assert {dialog.table.topLevelItem(i).text(0) for i in range(dialog.table.topLevelItemCount())} >= {"resnet50"}


def test_image_grid_wraps_to_its_width(qtbot):
    grid = ImageGrid(cell=40)
    qtbot.addWidget(grid)
    images = np.zeros((10, 8, 8, 3), dtype=np.uint8)
    grid.set_images(images, [f"class {i}" for i in range(10)])
    assert grid.count() == 10
    wide, narrow = grid.heightForWidth(48 * 10), grid.heightForWidth(48 * 2)
    assert narrow == 5 * wide  # 1 row of 10 against 5 rows of 2


def test_dataset_preview_shows_samples_with_labels(make_window, tiny_preset, qtbot):
    from app import engine_catalog

    if engine_catalog.preview_function() is None:
        pytest.skip("the engine's dataset preview is not importable yet")
    window = make_window(preset=tiny_preset)
    preview = window.setup_panel.preview
    preview.button.click()
    qtbot.waitUntil(lambda: preview.grid.count() > 0, timeout=30000)
    assert preview.grid.count() == 16
    class_names = set(preview.grid._captions)
    assert class_names and all(isinstance(c, str) and c for c in class_names)
    # A broken dataset setting says why instead of showing stale samples.
    window.document.set(("data", "dataset"), "cifar10")
    window.document.set(("data", "root"), "/nowhere/at/all")
    preview.refresh()
    qtbot.waitUntil(lambda: preview.grid.count() == 0 and "Loading" not in preview.grid._message, timeout=30000)
    assert preview.grid._message
