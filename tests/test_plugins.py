"""Architectures from plugins: the example package's entry point (simulated: the real EntryPoint
read from its pyproject.toml, with the package on sys.path), the user models folder, broken
plugins as warnings, and the example architecture as a target and as a source in a run."""

from __future__ import annotations

import importlib.metadata
import os
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from sskt_engine import plugins
from sskt_engine.config import loads_preset
from sskt_engine.errors import UserInputError
from sskt_engine.models import ARCHITECTURES, build_architecture
from sskt_engine.trainer import Trainer

EXAMPLE = Path(__file__).parent / "plugin_example"


@pytest.fixture
def clean_plugins(monkeypatch, tmp_path):
    """A registry and plugin state of the test's own; the config dir (user models folder) in tmp."""
    monkeypatch.setattr(ARCHITECTURES, "_entries", dict(ARCHITECTURES._entries))
    monkeypatch.setattr(plugins, "_warnings", None)
    monkeypatch.setenv(plugins.CONFIG_DIR_ENV, str(tmp_path / "config"))
    for name in [m for m in sys.modules if m.startswith(("sskt_example_plugin", "sskt_user_models_", "broken_"))]:
        monkeypatch.delitem(sys.modules, name)
    return tmp_path


def example_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The entry points exactly as the example's pyproject.toml declares them."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"][plugins.ENTRY_POINT_GROUP]
    return [importlib.metadata.EntryPoint(name, value, plugins.ENTRY_POINT_GROUP) for name, value in declared.items()]


def fake_entry_points(monkeypatch, points):
    calls = []

    def entry_points(**kwargs):
        calls.append(kwargs)
        return [p for p in points if p.group == kwargs.get("group")]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return calls


def test_example_plugin_registers_through_its_entry_point(clean_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    calls = fake_entry_points(monkeypatch, example_entry_points())
    assert "example_net" not in ARCHITECTURES
    assert plugins.load_plugins() == []
    entry = ARCHITECTURES.get("example_net")
    assert entry.input_size == 32 and entry.origin == "plugin example (sskt_example_plugin)"
    assert build_architecture("example_net", 6)(torch.zeros(2, 3, 32, 32)).shape == (2, 6)
    # idempotent: a second call loads nothing and returns the same (empty) warnings
    assert plugins.load_plugins() == [] and len(calls) == 1


def test_broken_plugins_are_warnings_not_crashes(clean_plugins, monkeypatch, tmp_path):
    package = tmp_path / "pkgs"
    package.mkdir()
    (package / "broken_plugins.py").write_text(
        "import torch.nn as nn\n"
        "def half(registry):\n"
        "    registry.add('half_net', lambda n: nn.Linear(3, n))\n"
        "    raise RuntimeError('weights server unreachable')\n"
        "def clash(registry):\n"
        "    registry.add('tiny_cnn_plus', lambda n: nn.Linear(3, n))\n"
        "    registry.add('tiny_cnn', lambda n: nn.Linear(3, n))\n"
        "def junk(registry):\n"
        "    registry.add('not_a_builder', 42)\n"
        "NOT_CALLABLE = 3\n")
    monkeypatch.syspath_prepend(str(package))
    group = plugins.ENTRY_POINT_GROUP
    fake_entry_points(monkeypatch, [
        importlib.metadata.EntryPoint("missing", "no_such_package.sskt:register", group),
        importlib.metadata.EntryPoint("half", "broken_plugins:half", group),
        importlib.metadata.EntryPoint("clash", "broken_plugins:clash", group),
        importlib.metadata.EntryPoint("junk", "broken_plugins:junk", group),
        importlib.metadata.EntryPoint("constant", "broken_plugins:NOT_CALLABLE", group),
    ])
    warnings = plugins.load_plugins()
    assert len(warnings) == 5, warnings
    assert "'missing' (no_such_package.sskt) could not be loaded (ModuleNotFoundError" in warnings[0]
    assert "'half'" in warnings[1]
    assert "none of them were added (RuntimeError: weights server unreachable)" in warnings[1]
    assert "half_net" not in ARCHITECTURES  # nothing half-registered
    assert "'clash'" in warnings[2] and "already registered" in warnings[2] and "tiny_cnn_plus" not in ARCHITECTURES
    assert "'not_a_builder' as a int, not a function of the class count" in warnings[3]
    assert "'constant'" in warnings[4] and "not a function register(registry)" in warnings[4]
    assert all("\n" not in w for w in warnings)


def test_user_models_folder(clean_plugins, monkeypatch):
    fake_entry_points(monkeypatch, [])
    folder = plugins.user_models_dir()
    assert folder == clean_plugins / "config" / "models"
    assert "run as code" in plugins.USER_MODELS_NOTICE and "only" in plugins.USER_MODELS_NOTICE.lower()
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    (folder / "folder_net.py").write_text(
        "import torch.nn as nn\n"
        "class FolderNet(nn.Sequential):\n"
        "    def __init__(self, n):\n"
        "        super().__init__(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, n))\n"
        "def register(registry):\n"
        "    registry.add('folder_net', FolderNet, input_size=32, description='from the user folder')\n")
    (folder / "direct.py").write_text(
        "import torch.nn as nn\n"
        "from sskt_engine.models import ARCHITECTURES\n"
        "ARCHITECTURES.add('direct_net', lambda n: nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, n)))\n")
    (folder / "syntax_error.py").write_text("def register(registry)\n    pass\n")
    (folder / "empty.py").write_text("X = 1\n")
    (folder / "_private.py").write_text("raise SystemExit('never imported')\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.py").write_text("raise SystemExit('never imported')\n")
    outside = clean_plugins / "elsewhere.py"
    outside.write_text("raise SystemExit('never imported')\n")
    (folder / "link.py").symlink_to(outside)

    warnings = plugins.load_plugins()
    assert ARCHITECTURES.get("folder_net").origin == "user models folder: folder_net.py"
    assert ARCHITECTURES.get("direct_net").origin == "user models folder: direct.py"
    assert build_architecture("folder_net", 3)(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert sorted(warnings) == sorted([
        "empty.py in the user models folder registered no architecture (define register(registry) in it)",
        "link.py in the user models folder is a link to a file outside the folder; it was skipped",
        next(w for w in warnings if w.startswith("syntax_error.py in the user models folder could not be imported "
                                                 "(SyntaxError")),
    ])


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_user_models_folder_writable_by_others_is_not_loaded(clean_plugins, monkeypatch):
    fake_entry_points(monkeypatch, [])
    folder = plugins.user_models_dir()
    folder.mkdir(parents=True)
    (folder / "net.py").write_text("raise SystemExit('must not run')\n")
    os.chmod(folder, 0o777)
    warnings = plugins.load_plugins()
    assert len(warnings) == 1 and "can be changed by other users, so none of its files were loaded" in warnings[0]


def test_example_architecture_as_target_and_as_source(clean_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    fake_entry_points(monkeypatch, example_entry_points())
    preset = """\
name: plugin
target: {arch: example_net}
data: {dataset: demo, labels_per_class: 4}
method: {name: sskt}
train: {epochs: 1, batch_size: 16, device: cpu}
sources:
  - {kind: checkpoint, arch: example_net, path: "%s"}
"""
    weights = clean_plugins / "example_teacher.pt"
    with pytest.raises(UserInputError, match="example_net"):  # unknown until the plugins are loaded
        loads_preset(preset % weights)
    assert plugins.load_plugins() == []
    torch.manual_seed(0)
    torch.save(build_architecture("example_net", 9).state_dict(), weights)
    folder = Trainer(loads_preset(preset % weights), clean_plugins / "runs").run()
    summary = folder.summary()
    assert summary.status == "finished", summary.message
    assert summary.target == "example_net"
    assert summary.sources[0]["num_classes"] == 9 and summary.sources[0]["input_size"] == 32


# ----------------------------------------------------------------------------- issue 14, item 2

def test_a_file_that_raises_after_registering_leaves_nothing_registered(clean_plugins, monkeypatch):
    fake_entry_points(monkeypatch, [])
    folder = plugins.user_models_dir()
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    (folder / "half.py").write_text(
        "import torch.nn as nn\n"
        "from sskt_engine.models import ARCHITECTURES\n"
        "ARCHITECTURES.add('half_direct', lambda n: nn.Linear(3, n))\n"
        "raise RuntimeError('second half missing')\n")
    (folder / "bad_names.py").write_text(
        "from sskt_engine.models import ARCHITECTURES\n"
        "ARCHITECTURES.add('bad name!', lambda n: None)\n"
        "ARCHITECTURES.add('not_callable', 42)\n")
    warnings = plugins.load_plugins()
    assert "half_direct" not in ARCHITECTURES  # before the fix: registered although the file failed
    assert "bad name!" not in ARCHITECTURES and "not_callable" not in ARCHITECTURES
    assert any("half.py in the user models folder could not be imported (RuntimeError: second half missing)" in w
               for w in warnings)
    assert any("'bad name!', which was skipped" in w for w in warnings)
    assert any("'not_callable' as a int, not a function of the class count" in w for w in warnings)


def test_a_plugin_that_hangs_is_skipped_after_the_time_limit(clean_plugins, monkeypatch, tmp_path):
    monkeypatch.setenv(plugins.TIMEOUT_ENV, "0.5")
    package = tmp_path / "pkgs"
    package.mkdir()
    (package / "hanging_plugin.py").write_text(
        "import threading\n"
        "from sskt_engine.models import ARCHITECTURES\n"
        "ARCHITECTURES.add('early_net', lambda n: None)\n"
        "threading.Event().wait(3)\n"  # hangs for longer than the limit, then registers late
        "ARCHITECTURES.add('late_net', lambda n: None)\n"
        "def register(registry):\n"
        "    pass\n")
    monkeypatch.syspath_prepend(str(package))
    fake_entry_points(monkeypatch, [importlib.metadata.EntryPoint("hang", "hanging_plugin:register",
                                                                  plugins.ENTRY_POINT_GROUP)])
    folder = plugins.user_models_dir()
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    (folder / "slow.py").write_text("import time\ntime.sleep(3)\ndef register(registry):\n    pass\n")
    warnings = plugins.load_plugins()  # before the fix: waited for as long as the plugins hung
    assert any("'hang'" in w and "did not finish loading within 0.5 s and was skipped" in w for w in warnings)
    assert any("slow.py in the user models folder did not finish importing within 0.5 s" in w for w in warnings)
    assert "early_net" not in ARCHITECTURES
    import time

    time.sleep(3.5)  # the abandoned import goes on in the background; what it adds later is refused
    assert "late_net" not in ARCHITECTURES


@pytest.mark.skipif(os.name != "posix" or os.getuid() != 0, reason="needs root to make a file another user's")
def test_user_models_files_of_another_user_do_not_run(clean_plugins, monkeypatch):
    fake_entry_points(monkeypatch, [])
    folder = plugins.user_models_dir()
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    marker = clean_plugins / "ran"
    (folder / "theirs.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    os.chmod(folder / "theirs.py", 0o644)
    monkeypatch.setattr(os, "getuid", lambda: 4242)  # we are user 4242; the file is root's (allowed) ...
    assert not any("theirs.py" in w and "another user" in w for w in plugins.load_plugins())
    marker.unlink()
    monkeypatch.setattr(plugins, "_warnings", None)
    os.chown(folder / "theirs.py", 1234, 1234)  # ... this one belongs to user 1234
    os.chown(folder, 4242, 4242)
    warnings = plugins.load_plugins()
    assert any("theirs.py in the user models folder belongs to another user; it was skipped" in w for w in warnings)
    assert not marker.exists()
