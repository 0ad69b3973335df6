"""Child processes in a Python install and in the frozen (PyInstaller) bundle: the command lines
that ``sskt train --nproc N`` and the GUI's multi-process runs build, the bundle entry scripts'
dispatch argument, and a two-process run started the way the bundle starts it.

The bundle is simulated: a small executable script stands in for the frozen program. It sets
``sys.frozen`` and ``sys.executable`` as PyInstaller's bootloader does and runs the real entry
script, so everything after the bootloader is the code the bundle runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sskt_engine import cli
from sskt_engine.child_process import DISPATCH_ARG, ENGINE_CLI, TORCHRUN, child_command, run_dispatched

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
BUNDLE_PROGRAM = "/opt/sskt-studio/sskt-studio"

PRESET = """\
name: frozen
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 8, augment: false}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, lr: 0.05, optimizer: sgd, schedule: constant, seed: 5, device: cpu,
        log_every: 2}
"""


@pytest.fixture
def frozen(monkeypatch):
    """This process as the bundle's program: what PyInstaller's bootloader sets."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", BUNDLE_PROGRAM)


@pytest.fixture
def unfrozen(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")


# ----------------------------------------------------------------------------- the command lines

def test_a_child_is_python_dash_m_from_a_python_install(unfrozen):
    assert child_command(ENGINE_CLI, ["train", "p.yaml"]) == ["/usr/bin/python3", "-m", "sskt_engine.cli", "train",
                                                              "p.yaml"]
    assert child_command(ENGINE_CLI, ["train", "p.yaml"], nproc=2) == [
        "/usr/bin/python3", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "sskt_engine.cli", "train", "p.yaml"]
    assert child_command(ENGINE_CLI, ["runs"], executable="/other/python")[:3] == ["/other/python", "-m", ENGINE_CLI]


def test_a_child_is_the_program_itself_with_the_dispatch_argument_in_the_bundle(frozen):
    assert child_command(ENGINE_CLI, ["train", "p.yaml"]) == [BUNDLE_PROGRAM, DISPATCH_ARG, "sskt_engine.cli",
                                                              "train", "p.yaml"]
    # torchrun runs in the program; it starts each rank as the program too (--no-python), never `python -u -m`
    assert child_command(ENGINE_CLI, ["train", "p.yaml"], nproc=4) == [
        BUNDLE_PROGRAM, DISPATCH_ARG, "torch.distributed.run", "--standalone", "--nproc_per_node=4",
        "--no-python", BUNDLE_PROGRAM, DISPATCH_ARG, "sskt_engine.cli", "train", "p.yaml"]


@pytest.mark.parametrize("is_frozen", [False, True])
def test_train_nproc_starts_torchrun_through_child_command(tmp_path, monkeypatch, is_frozen):
    if is_frozen:
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    else:
        monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setattr(sys, "executable", BUNDLE_PROGRAM if is_frozen else "/usr/bin/python3")
    preset = tmp_path / "p.yaml"
    preset.write_text(PRESET)
    started: list[list[str]] = []

    class FakeTorchrun:
        def __init__(self, command):
            started.append(list(command))

        def wait(self):
            return 0

        def send_signal(self, signum):
            pass

    monkeypatch.setattr(subprocess, "Popen", FakeTorchrun)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = cli.main(["train", str(preset), "--nproc", "2", "--runs-dir", str(tmp_path / "runs")])
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert code == 0
    rest = ["sskt_engine.cli", "train", str(preset), "--runs-dir", str(tmp_path / "runs")]  # --nproc is gone
    if is_frozen:
        assert started == [[BUNDLE_PROGRAM, DISPATCH_ARG, TORCHRUN, "--standalone", "--nproc_per_node=2",
                            "--no-python", BUNDLE_PROGRAM, DISPATCH_ARG, *rest]]
    else:
        assert started == [["/usr/bin/python3", "-m", TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", *rest]]


# ----------------------------------------------------------------------------- the entry scripts

def _run_entry(entry: str, args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """Calls the entry script's function in a fresh interpreter that looks frozen, with ``args``
    as the program's arguments; prints whether Qt was imported."""
    code = ("import runpy, sys\n"
            "sys.frozen = True\n"
            f"sys.argv = [{str(PACKAGING / entry)!r}, *{args!r}]\n"
            f"namespace = runpy.run_path({str(PACKAGING / entry)!r}, run_name='bundle_entry')\n"
            "status = namespace['entry']()\n"
            "print('qt imported:', 'PySide6' in sys.modules)\n"
            "sys.exit(status)\n")
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          cwd=str(ROOT))


@pytest.mark.parametrize("entry", ["entry_gui.py", "entry_cli.py"])
def test_entry_scripts_run_the_engine_cli_when_dispatched(tmp_path, entry):
    runs = tmp_path / "runs"
    result = _run_entry(entry, [DISPATCH_ARG, ENGINE_CLI, "runs", "--runs-dir", str(runs)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"no runs in {runs}" in result.stdout
    assert "qt imported: False" in result.stdout  # the GUI program never opened a window
    # the CLI's exit codes come back as the program's
    bad = _run_entry(entry, [DISPATCH_ARG, ENGINE_CLI, "train", str(tmp_path / "missing.yaml")])
    assert bad.returncode == 2 and "error:" in bad.stderr and "missing.yaml" in bad.stderr


def test_dispatch_runs_only_the_modules_a_child_needs(capsys):
    assert run_dispatched(["--help"]) is None and run_dispatched([]) is None  # the program's own arguments
    assert run_dispatched([DISPATCH_ARG, "os"]) == 2
    assert "runs one of sskt_engine.cli, torch.distributed.run, not os" in capsys.readouterr().err


def test_bundle_runs_two_processes_through_its_own_program(tmp_path, monkeypatch):
    """What the GUI of the bundle starts for a two-process run: its own program, dispatched to the
    CLI, which starts torchrun as the program, which starts both ranks as the program."""
    program = tmp_path / "bundle" / "sskt-studio"
    program.parent.mkdir()
    launcher = tmp_path / "bundle" / "bootloader.py"
    launcher.write_text("import runpy, sys\n"
                        "sys.frozen = True\n"
                        f"sys.executable = {str(program)!r}\n"
                        f"sys.argv[0] = {str(program)!r}\n"
                        f"runpy.run_path({str(PACKAGING / 'entry_gui.py')!r}, run_name='__main__')\n")
    program.write_text(f'#!/bin/sh\nexec {sys.executable} {launcher} "$@"\n')
    program.chmod(0o755)
    preset = tmp_path / "ddp.yaml"
    preset.write_text(PRESET)
    runs = tmp_path / "runs"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    command = child_command(ENGINE_CLI, ["train", str(preset), "--nproc", "2", "--runs-dir", str(runs)],
                            executable=str(program))
    monkeypatch.delattr(sys, "frozen")
    assert command[:3] == [str(program), DISPATCH_ARG, ENGINE_CLI]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run: ") == 1
    run_dir = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["processes"] == 2
    assert [p.name for p in runs.iterdir()] == [run_dir.name]  # only rank 0 wrote a run folder
