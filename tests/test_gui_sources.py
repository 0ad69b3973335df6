"""The sources list: compiled model files and exported models added through the Add menu."""

from __future__ import annotations

from PySide6 import QtWidgets

# The keys a compiled source is set with (registered by sskt_engine.compiled_sources).
COMPILED_KEYS = {"kind", "path", "input_size", "mean", "std", "pixel_scale", "pixel_offset", "num_classes",
                 "class_names_file", "name"}


def _fake_open(monkeypatch, path: str, seen: list):
    def get_open(parent, title, folder, filters, *args, **kwargs):
        seen.append(filters)
        return path, ""
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(get_open))


def test_add_a_compiled_model_file(make_window, tiny_preset, fake_trainer, monkeypatch, tmp_path):
    window = make_window(fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    menu_texts = [a.text() for a in sources.add_button.menu().actions()]
    assert "Compiled model file (TorchScript / .pt2)…" in menu_texts
    assert "Exported model (SSKT Studio .pt/.safetensors)…" in menu_texts

    model = tmp_path / "teacher.pt2"
    model.write_bytes(b"x")
    seen: list = []
    _fake_open(monkeypatch, str(model), seen)
    sources.add_compiled_action.trigger()
    assert "*.pt2 *.pt *.ts *.torchscript" in seen[-1]
    saved = window.document.raw["sources"]
    assert saved[-1]["kind"] == "compiled" and saved[-1]["path"] == str(model)
    assert "compiled · teacher.pt2" in sources.list.item(sources.list.count() - 1).text()

    # Only the keys a compiled source reads are shown, and Browse is offered.
    shown = set(sources.details.visible_names())  # folded under Advanced or not
    assert shown == COMPILED_KEYS
    assert not sources.browse_button.isHidden()
    # on clips a source also reads clip_frames (which frames it sees): shown only for video data
    window.document.set(("data", "dataset"), "demo-video")
    assert sources.details.row_visible("clip_frames")
    window.document.set(("data", "dataset"), "demo")
    assert not sources.details.row_visible("clip_frames")

    # Browse picks another file with the compiled-model filter.
    other = tmp_path / "other.torchscript"
    other.write_bytes(b"x")
    _fake_open(monkeypatch, str(other), seen)
    sources.browse_button.click()
    assert "*.pt2" in seen[-1]
    assert window.document.raw["sources"][-1]["path"] == str(other)


def test_add_an_exported_model(make_window, tiny_preset, fake_trainer, monkeypatch, tmp_path):
    window = make_window(fake_trainer, tiny_preset)
    sources = window.setup_panel.sources
    model = tmp_path / "exported.safetensors"
    model.write_bytes(b"x")
    seen: list = []
    _fake_open(monkeypatch, str(model), seen)
    sources.add_exported_action.trigger()
    added = window.document.raw["sources"][-1]
    assert added["kind"] == "checkpoint" and added["path"] == str(model)
    assert not added["arch"] and added["num_classes"] is None  # read from the file's metadata
    assert "*.safetensors" in seen[-1]


def test_source_subtitles_name_what_the_source_is():
    from app.widgets.sources_list import source_subtitle

    assert source_subtitle({"kind": "checkpoint", "path": "builtin:demo_source.safetensors"}) == (
        "checkpoint · demo_source.safetensors")  # an exported file names its own architecture
    assert source_subtitle({"kind": "checkpoint", "path": "/m/places.pth.tar", "arch": "resnet50",
                            "num_classes": 365}) == "checkpoint · resnet50 · 365 classes"
    assert source_subtitle({"kind": "torchvision", "arch": "resnet50"}) == "torchvision · resnet50 · DEFAULT"
