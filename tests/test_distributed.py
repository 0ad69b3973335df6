"""Data-parallel training through torchrun with gloo on CPU, two processes, on the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRESET = """\
name: ddp
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 40, augment: false}
method: {name: supervised}
train: {epochs: 1, batch_size: 32, lr: 0.05, optimizer: sgd, schedule: constant, seed: 5, device: cpu,
        deterministic: true, log_every: 2}
"""


def _train(tmp_path: Path, runs: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    preset = tmp_path / "ddp.yaml"
    preset.write_text(PRESET)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "sskt_engine.cli", "train", str(preset), "--runs-dir",
                             str(tmp_path / runs), *extra], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    return result, json.loads((run_dir / "summary.json").read_text())


def test_two_gloo_processes_match_one_process(tmp_path):
    _, single = _train(tmp_path, "single")
    result, double = _train(tmp_path, "double", "--nproc", "2")
    assert double["status"] == "finished" and double["processes"] == 2
    run_dirs = list((tmp_path / "double").iterdir())
    assert len(run_dirs) == 1  # only rank 0 wrote a run folder
    names = {p.name for p in run_dirs[0].iterdir()}
    assert {"preset.yaml", "metrics.jsonl", "summary.json", "checkpoints", "eval"} <= names
    assert result.stdout.count("run: ") == 1
    # Same global batch, seed and data order; gradients averaged over ranks equal the
    # full-batch gradient except for BatchNorm, whose statistics each rank takes over
    # its own half batch, and float summation order. One epoch stays within 5 points.
    assert abs(double["final_score"] - single["final_score"]) <= 0.05
    assert double["val_size"] == single["val_size"]


def test_batch_size_must_divide_over_processes(tmp_path):
    preset = tmp_path / "odd.yaml"
    preset.write_text(PRESET.replace("batch_size: 32", "batch_size: 33"))
    result = subprocess.run([sys.executable, "-m", "sskt_engine.cli", "train", str(preset), "--runs-dir",
                             str(tmp_path), "--nproc", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "divide evenly over 2 processes" in result.stderr
