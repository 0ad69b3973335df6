"""Errors that point the way (issue 18, item 12): a model file of the wrong kind, a plugin
builder of the wrong shape and an unknown architecture each say what to do, in one sentence."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from sskt_engine import plugins
from sskt_engine.errors import PresetError, SourceError
from sskt_engine.models import ARCHITECTURES


def test_torchscript_given_as_a_checkpoint_says_use_kind_compiled(tmp_path):
    from sskt_engine.model_files import read_tensor_file

    torch.set_num_threads(1)
    path = tmp_path / "scripted.pt"
    with pytest.warns(Warning):  # torch.jit.save's deprecation: writing the stand-in file only
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(SourceError) as error:
        read_tensor_file(path)
    assert str(error.value) == "scripted.pt is a TorchScript file, not a checkpoint: use kind: compiled for it"


def test_a_text_file_named_pt_is_called_a_text_file(tmp_path):
    from sskt_engine.model_files import read_tensor_file

    path = tmp_path / "notes.pt"
    path.write_text("these are my notes, not a network\n")
    with pytest.raises(SourceError) as error:
        read_tensor_file(path)
    message = str(error.value)
    assert message == "notes.pt is a text file, not a PyTorch checkpoint"
    assert "Error" not in message and "pop from empty list" not in message


def test_unknown_architecture_names_the_user_models_folder(monkeypatch, tmp_path):
    import sskt_engine.catalog  # noqa: F401
    from sskt_engine.config import from_dict

    monkeypatch.setenv(plugins.CONFIG_DIR_ENV, str(tmp_path / "config"))
    with pytest.raises(PresetError) as error:
        from_dict({"target": {"arch": "zzqx_net"}})
    message = str(error.value)
    assert str(tmp_path / "config" / "models") in message and "plugins" in message
    with pytest.raises(PresetError) as error:  # a near miss keeps its "did you mean"
        from_dict({"target": {"arch": "resnet2"}})
    assert "did you mean" in str(error.value) and "user models folder" not in str(error.value)


def test_a_plugin_builder_of_the_wrong_signature_is_one_warning_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(ARCHITECTURES, "_entries", dict(ARCHITECTURES._entries))
    monkeypatch.setattr(plugins, "_warnings", None)
    monkeypatch.setenv(plugins.CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setattr(plugins, "_entry_points", lambda: [])
    for name in [m for m in sys.modules if m.startswith("sskt_user_models_")]:
        monkeypatch.delitem(sys.modules, name)
    folder = plugins.user_models_dir()
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    (folder / "two_args.py").write_text(
        "import torch.nn as nn\n"
        "def build(num_classes, width):\n"
        "    return nn.Linear(width, num_classes)\n"
        "def register(registry):\n"
        "    registry.add('two_args_net', build, input_size=32)\n")
    warnings = plugins.load_plugins()
    assert len(warnings) == 1, warnings
    assert "two_args.py" in warnings[0] and "build(num_classes, width)" in warnings[0]
    assert "\n" not in warnings[0] and "two_args_net" not in ARCHITECTURES
