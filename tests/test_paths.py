"""Paths (issue 6, item 11): missing, unreadable, a file where a folder is expected and the
reverse, and names with spaces and non-ASCII characters, for presets, runs folders,
datasets and model files. Bad paths end in one sentence naming the path; odd names work.

Already proven elsewhere, not repeated: a missing preset or a folder given as preset
(tests/test_config.py), a missing model file (tests/test_sources.py), a missing or empty
dataset root (tests/test_data.py), unwritable export folders (tests/test_export.py).

Unreadable files: the suite may run as root, for whom ``chmod 000`` blocks nothing. As
root, the checks run in a child process whose capability bounding set lacks
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (``setpriv``), so permissions apply to it as
to anyone; as another user they run the same way without setpriv. Where neither works,
the test is skipped and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from sskt_engine import cli
from sskt_engine.config import SourceConfig, loads_preset, save_preset
from sskt_engine.data import load_dataset
from sskt_engine.errors import DataError, SourceError, UserInputError
from sskt_engine.export import export_run, read_model_file
from sskt_engine.models import build_architecture
from sskt_engine.runs import RunFolder, find_run, list_runs
from sskt_engine.sources import build_source
from sskt_engine.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]

TINY = """\
name: paths
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, device: cpu, seed: 2}
"""


def _image_folder(root: Path, classes=("ant", "moth", "zebra"), per_class: int = 6) -> Path:
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16, 16), ((80 * index) % 256, 40 * i % 256, 200)).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def restore_signals():
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> RunFolder:
    folder = Trainer(loads_preset(TINY), tmp_path_factory.mktemp("paths-run")).run()
    assert folder.summary().status == "finished"
    return folder


# ----------------------------------------------------------------------------- missing

def test_missing_paths_are_one_sentence(tmp_path, trained_run):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(UserInputError, match=f"model file {nowhere / 'm.pt'} does not exist"):
        read_model_file(nowhere / "m.pt")
    with pytest.raises(UserInputError, match="run folder .*nowhere does not exist"):
        find_run(str(nowhere))
    with pytest.raises(UserInputError, match="does not exist"):
        export_run(nowhere, "pt", tmp_path / "out.pt")
    with pytest.raises(UserInputError, match="folder .*nowhere does not exist"):
        export_run(trained_run.path, "pt", nowhere / "out.pt")
    with pytest.raises(SourceError, match="not a run folder"):
        build_source(SourceConfig(kind="run", path=str(nowhere)))


def test_missing_run_on_the_cli_is_exit_2(tmp_path, capsys, monkeypatch, restore_signals):
    monkeypatch.setenv("SSKT_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    assert cli.main(["resume", str(tmp_path / "no run")]) == cli.EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"error: run folder {tmp_path / 'no run'} does not exist"


def test_a_missing_runs_folder_is_created(tmp_path):
    folder = Trainer(loads_preset(TINY), tmp_path / "not" / "yet" / "there").run()
    assert folder.summary().status == "finished" and folder.path.parent == tmp_path / "not" / "yet" / "there"


# ----------------------------------------------------------------------------- files and folders swapped

def test_a_file_where_a_folder_is_expected(tmp_path, trained_run):
    a_file = tmp_path / "a file"
    a_file.write_text("not a folder")
    cfg = loads_preset(TINY)
    with pytest.raises(UserInputError, match="runs folder .*a file cannot be created: it or a folder above it is a f"):
        RunFolder.create(a_file, cfg)
    with pytest.raises(UserInputError, match="it or a folder above it is a file"):
        RunFolder.create(a_file / "runs", cfg)  # a file above the runs folder
    with pytest.raises(DataError, match=f"data.root {a_file} is a file; an image folder dataset needs a folder"):
        load_dataset(loads_preset(TINY, overrides=["data.dataset=imagefolder", f"data.root={a_file}"]).data, 0)
    with pytest.raises(UserInputError, match=f"{a_file} is a file, not a run folder"):
        find_run(str(a_file))
    with pytest.raises(SourceError, match="not a run folder"):
        build_source(SourceConfig(kind="run", path=str(a_file)))
    with pytest.raises(UserInputError, match="is a file, not a folder"):
        export_run(trained_run.path, "pt", a_file / "model.pt")
    # a file among the class folders is not a class
    root = _image_folder(tmp_path / "images")
    (root / "README.txt").write_text("notes")
    splits = load_dataset(loads_preset(TINY, overrides=["data.dataset=imagefolder", f"data.root={root}",
                                                        "data.labels_per_class=null"]).data, 0)
    assert splits.class_names == ("ant", "moth", "zebra")


def test_a_folder_where_a_file_is_expected(tmp_path, trained_run):
    folder = tmp_path / "model.pt"
    folder.mkdir()
    with pytest.raises(SourceError, match=f"{folder} is a folder, not a model file"):
        build_source(SourceConfig(kind="checkpoint", path=str(folder), arch="tiny_cnn", num_classes=6))
    with pytest.raises(UserInputError, match=f"{folder} is a folder, not a model file"):
        read_model_file(folder)
    # an export pointed at a folder writes into it, named after the run
    result = export_run(trained_run.path, "pt", folder)
    assert result.path == folder / f"{trained_run.path.name}.pt" and read_model_file(result.path)[1]["num_classes"] == 6
    # a run whose last checkpoint is a folder cannot be resumed, in one sentence
    copy = tmp_path / trained_run.path.name
    shutil.copytree(trained_run.path, copy)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, "status": "stopped"}))
    (copy / "checkpoints" / "last.pt").unlink()
    (copy / "checkpoints" / "last.pt").mkdir()
    with pytest.raises(UserInputError, match="last checkpoint of run .* cannot be read"):
        Trainer.resume(copy).run()


# ----------------------------------------------------------------------------- unreadable

UNREADABLE_CHECKS = textwrap.dedent('''\
    import json, sys
    from pathlib import Path
    from sskt_engine.config import SourceConfig, load_preset, loads_preset
    from sskt_engine.data import load_dataset
    from sskt_engine.export import read_model_file, export_run
    from sskt_engine.sources import build_source
    from sskt_engine.trainer import Trainer

    base = Path(sys.argv[1])
    TINY = (base / "tiny.yaml").read_text()
    checks = {
        "preset": lambda: load_preset(base / "locked.yaml"),
        "model source": lambda: build_source(SourceConfig(kind="checkpoint", path=str(base / "locked.pt"),
                                                          arch="tiny_cnn", num_classes=6)),
        "model file": lambda: read_model_file(base / "locked.pt"),
        "dataset root": lambda: load_dataset(loads_preset(TINY, overrides=[
            "data.dataset=imagefolder", f"data.root={base / 'locked images'}"]).data, 0),
        "class folder": lambda: load_dataset(loads_preset(TINY, overrides=[
            "data.dataset=imagefolder", f"data.root={base / 'images'}"]).data, 0),
        "runs folder": lambda: Trainer(loads_preset(TINY), base / "locked runs").run(),
        "export folder": lambda: export_run(sys.argv[2], "pt", base / "locked out" / "m.pt"),
    }
    out = {}
    for name, check in checks.items():
        try:
            check()
            out[name] = ["ok", ""]
        except Exception as exc:
            out[name] = [type(exc).__name__, str(exc)]
    print(json.dumps(out))
    ''')


def _unprivileged_command(probe: Path) -> list[str]:
    """The command prefix under which file permissions apply, or skip."""
    if os.geteuid() != 0:
        return [sys.executable]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, where chmod 000 blocks nothing, and setpriv is not there to drop "
                    "CAP_DAC_OVERRIDE for a child process")
    command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable]
    check = subprocess.run(command + ["-c", f"open({str(probe)!r}).read()"], capture_output=True, text=True)
    if "PermissionError" not in check.stderr:
        pytest.skip(f"running as root, and dropping CAP_DAC_OVERRIDE did not make a mode-000 file unreadable "
                    f"here ({(check.stderr.strip().splitlines() or ['no error'])[-1]})")
    return command


@pytest.fixture(scope="module")
def unreadable(tmp_path_factory, trained_run) -> tuple[Path, dict[str, list[str]]]:
    """Lock a preset, a model file, a dataset folder, a class folder, a runs folder and an
    export folder, open each in a process that permissions apply to; (folder, outcomes)."""
    tmp = tmp_path_factory.mktemp("unreadable")
    base = tmp / "locked"
    base.mkdir()
    (base / "tiny.yaml").write_text(TINY)
    save_preset(loads_preset(TINY), base / "locked.yaml")
    torch.save(build_architecture("tiny_cnn", 6).state_dict(), base / "locked.pt")
    _image_folder(base / "locked images")
    _image_folder(base / "images")
    (base / "locked runs").mkdir()
    (base / "locked out").mkdir()
    locked = {base / "locked.yaml": 0o000, base / "locked.pt": 0o000, base / "locked images": 0o000,
              base / "images" / "moth": 0o000, base / "locked runs": 0o555, base / "locked out": 0o555}
    try:
        for path, mode in locked.items():
            path.chmod(mode)
        command = _unprivileged_command(base / "locked.pt")
        env = {**os.environ, "PYTHONPATH": str(REPO), "SSKT_STUDIO_CONFIG_DIR": str(tmp / "config"),
               "OMP_NUM_THREADS": "1"}
        done = subprocess.run(command + ["-c", UNREADABLE_CHECKS, str(base), str(trained_run.path)],
                              capture_output=True, text=True, env=env, timeout=300)
    finally:
        for path in locked:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    assert list_runs(base / "locked runs") == []
    return base, json.loads(done.stdout.strip().splitlines()[-1])


def test_unreadable_preset_model_runs_and_export_folders_are_one_sentence(unreadable):
    base, results = unreadable
    expected = {
        "preset": ("PresetError", f"preset file {base / 'locked.yaml'} cannot be read (permission denied)"),
        "model source": ("SourceError", f"model file {base / 'locked.pt'} cannot be read (permission denied)"),
        "model file": ("UserInputError", f"model file {base / 'locked.pt'} cannot be read (Permission denied)"),
        "runs folder": ("UserInputError", f"runs folder {base / 'locked runs'} is not writable (permission denied)"),
        "export folder": ("UserInputError", f"cannot write {base / 'locked out' / 'm.pt'}: folder "
                          f"{base / 'locked out'} is not writable"),
    }
    for name, (kind, message) in expected.items():
        assert results[name] == [kind, message], (name, results[name])


def test_unreadable_dataset_folders_are_named_as_unreadable(unreadable):
    base, results = unreadable
    assert results["dataset root"][0] == "DataError", results["dataset root"]
    assert "cannot be read" in results["dataset root"][1]
    assert results["class folder"] == ["DataError", f"folder {base / 'images' / 'moth'} cannot be read "
                                                    "(permission denied)."], results["class folder"]


# ----------------------------------------------------------------------------- spaces and non-ASCII

def test_spaces_and_non_ascii_everywhere_train_export_predict_and_list(tmp_path, capsys, monkeypatch,
                                                                       restore_signals):
    """Preset, dataset, source model, runs folder, export and images all under names with
    spaces, accents, CJK and Cyrillic, with the CLI running under the C locale."""
    home = tmp_path / "Dätä ü 日本 папка"
    images = _image_folder(home / "Bilder mit Leerzeichen é", classes=("Katze ö", "狗 dog", "ant"))
    model = home / "Modelle ü" / "Quell modell é.pt"
    model.parent.mkdir(parents=True)
    torch.save(build_architecture("tiny_cnn", 4).state_dict(), model)
    preset = home / "Präsets ü" / "mein preset é.yaml"
    preset.parent.mkdir()
    cfg = loads_preset(TINY, overrides=[
        "name=Versuch ü 1", "data.dataset=imagefolder", f"data.root={images}", "data.labels_per_class=null",
        "data.image_size=16", "method.name=sskt",
        f"sources=[{{kind: checkpoint, path: '{model}', arch: tiny_cnn, num_classes: 4, input_size: 32}}]"])
    save_preset(cfg, preset)
    runs = home / "Läufe ü"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SSKT_STUDIO_CONFIG_DIR": str(tmp_path / "config"),
           "LC_ALL": "C", "LANG": "C", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "sskt_engine.cli", "train", str(preset), "--runs-dir", str(runs)],
                          capture_output=True, text=True, env=env, timeout=300, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    (run,) = list_runs(runs)
    assert run.status == "finished" and run.name == "Versuch ü 1" and "Versuch-ü-1" in run.path.name
    assert RunFolder(run.path).config() == cfg
    assert f"run: {run.path}" in done.stdout

    monkeypatch.setenv("SSKT_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    capsys.readouterr()
    out = home / "Exporte é" / "modell ü.pt"
    out.parent.mkdir()
    assert cli.main(["export", str(run.path), "--format", "pt", "-o", str(out)]) == cli.EXIT_OK
    model_back, meta = read_model_file(out)
    assert meta["class_names"] == ["Katze ö", "ant", "狗 dog"]
    image = images / "狗 dog" / "0.png"
    assert cli.main(["predict", str(out), str(image)]) == cli.EXIT_OK
    assert cli.main(["runs", "--runs-dir", str(runs)]) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert "狗 dog" in printed and run.path.name in printed
