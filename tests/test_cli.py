"""The command line as a user runs it: a subprocess on the shipped demo preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sskt_engine.resources import resource_path


def _sskt(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SSKT_STUDIO_CONFIG_DIR=str(cwd / "config"))
    return subprocess.run([sys.executable, "-m", "sskt_engine.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


def test_demo_preset_trains_one_epoch_offline(tmp_path):
    result = _sskt("train", str(resource_path("presets", "demo.yaml")), "--set", "train.epochs=1",
                   "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("run: ")
    run = Path(last.removeprefix("run: "))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == 1
    assert summary["sources"][0]["name"] == "shapes-cnn"  # the shipped source model was loaded
    assert "epoch 1/1" in result.stderr and "img/s" in result.stderr  # the progress display
    assert (run / "checkpoints" / "best.pt").is_file()

    listing = _sskt("runs", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert listing.returncode == 0 and run.name in listing.stdout and "finished" in listing.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("train:\n  lr: -1\n")
    result = _sskt("train", str(preset), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: bad.yaml: line 2: train.lr: must be greater than 0.0, not -1.0"
    assert not (tmp_path / "runs").exists()
    missing = _sskt("train", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_threads_is_taken_by_train_resume_and_compare_and_checked(capsys):
    """Issue 20, item 4: on a busy 2-core machine a 40 s run took 300 s with PyTorch's default."""
    import torch

    from sskt_engine.cli import apply_threads, build_parser, main

    before = torch.get_num_threads()
    try:
        for argv in (["train", "p.yaml", "--threads", "1"], ["resume", "run", "--threads", "1"],
                     ["compare", "p.yaml", "--threads", "1"]):
            args = build_parser().parse_args(argv)
            torch.set_num_threads(2)
            apply_threads(args)
            assert args.threads == 1 and torch.get_num_threads() == 1, argv
    finally:
        torch.set_num_threads(before)
    assert main(["resume", "no-such-run", "--threads", "0"]) == 2
    assert "--threads must be at least 1, not 0" in capsys.readouterr().err
