"""The video demo from the command line: the shipped demo-video preset (a 3D target taught by the
shipped 2D shapes network on each clip's centre frame) for one epoch, then exported and used to
predict a clip; and the same on two gloo processes (data-parallel training of a 3D target)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sskt_engine.resources import resource_path

SMALL = ["--set", "train.epochs=1", "--set", "data.labels_per_class=4", "--set", "train.log_every=1"]


def _sskt(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "sskt_engine.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _run_dir(result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))


def test_the_video_demo_trains_one_epoch_exports_and_predicts_from_the_cli(tmp_path):
    preset = str(resource_path("presets", "demo-video.yaml"))
    run = _run_dir(_sskt("train", preset, "--runs-dir", str(tmp_path / "runs"), "--threads", "1",
                         "--device", "cpu", *SMALL))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["method"] == "sskt" and summary["dataset"] == "demo-video"
    assert summary["sources"][0]["name"] == "shapes-cnn" and summary["train_size"] == 48
    from sskt_engine import events as ev

    events = [ev.from_json(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    progress = [event for event in events if isinstance(event, ev.Progress)]
    assert progress and "aux/shapes-cnn" in progress[0].losses

    model = tmp_path / "demo-video.onnx"
    exported = _sskt("export", str(run), "--format", "onnx", "-o", str(model), "--checkpoint", "last")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "clips of 8 frames" in exported.stdout

    from PIL import Image

    frames = tmp_path / "clip"
    frames.mkdir()
    for index in range(10):
        Image.new("RGB", (40, 32), (20 * index, 90, 160)).save(frames / f"image_{index + 1:05d}.jpg")
    predicted = _sskt("predict", str(model), str(frames), "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    out = predicted.stdout.splitlines()
    assert out[0].endswith("clip") and len(out) == 3


@pytest.mark.slow  # two processes, each drawing the demo's clips and validating on all 720 of them
def test_two_gloo_processes_train_a_3d_target_with_sskt(tmp_path):
    preset = str(resource_path("presets", "demo-video.yaml"))
    run = _run_dir(_sskt("train", preset, "--runs-dir", str(tmp_path), "--device", "cpu", "--nproc", "2",
                         *SMALL))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["processes"] == 2
    assert (run / "checkpoints" / "last.pt").is_file()
