"""``sskt frames`` (one-time frame extraction) and the video demo from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("av")

import sskt_engine.catalog  # noqa: E402,F401
from sskt_engine.cli import main  # noqa: E402
from sskt_engine.config import DataConfig  # noqa: E402
from sskt_engine.data import load_dataset  # noqa: E402
from sskt_engine.data.frame_folders import frame_files  # noqa: E402
from sskt_engine.resources import resource_path  # noqa: E402
from video_test_files import UCF_CLASSES, frames_of, make_ucf101, write_audio_only, write_video  # noqa: E402


def test_frames_extracts_a_dataset_that_then_reads_as_the_videos_did(tmp_path, capsys):
    src = make_ucf101(tmp_path / "ucf")
    write_audio_only(src / "UCF-101" / "Basketball" / "v_Basketball_g04_c02.avi")  # unreadable: counted
    dest = tmp_path / "frames"
    assert main(["frames", str(src), str(dest), "--size", "20"]) == 0
    out = capsys.readouterr()
    assert "23 video(s) extracted" in out.out and "1 unreadable" in out.out and "2 already" not in out.out
    assert "v_Basketball_g04_c02" in out.err
    folder = dest / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g03_c01"
    files = frame_files(str(folder))
    assert [Path(f).name for f in files] == [f"image_{i:05d}.jpg" for i in range(1, 9)]  # 5 + group frames
    assert not list(dest.rglob("*.partial"))
    # the split files came along: DEST replaces SRC as data.root
    cfg = DataConfig(dataset="ucf101", root=str(dest), image_size=16, clip_len=4)
    from_frames, from_videos = load_dataset(cfg, seed=0), load_dataset(DataConfig(**{**cfg.__dict__, "root": str(src)}),
                                                                       seed=0)
    assert from_frames.class_names == UCF_CLASSES
    assert len(from_frames.train) == 17 and len(from_videos.train) == 17  # the unreadable one left out both ways
    assert all(os.path.isdir(p) for p in from_frames.train.paths)
    # a second run resumes: nothing is decoded again
    assert main(["frames", str(src), str(dest)]) == 0
    assert "0 video(s) extracted" in capsys.readouterr().out


def test_frames_of_one_file_and_refusals(tmp_path, capsys):
    video = write_video(tmp_path / "in" / "walk.mp4", frames_of(7), "libx264")
    assert main(["frames", str(video), str(tmp_path / "out"), "--workers", "2"]) == 0
    assert len(frame_files(str(tmp_path / "out" / "walk"))) == 7
    assert main(["frames", str(tmp_path / "nothing"), str(tmp_path / "out")]) == 2
    assert main(["frames", str(tmp_path / "in"), str(tmp_path / "in" / "frames")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["frames", str(tmp_path / "empty"), str(tmp_path / "out2")]) == 2
    assert "no video files" in capsys.readouterr().err


def test_the_video_demo_trains_one_epoch_from_the_cli(tmp_path):
    env = dict(os.environ, SSKT_STUDIO_CONFIG_DIR=str(tmp_path / "config"))
    result = subprocess.run(
        [sys.executable, "-m", "sskt_engine.cli", "train", str(resource_path("presets", "demo-video.yaml")),
         "--set", "train.epochs=1", "--set", "data.labels_per_class=4", "--threads", "1",
         "--runs-dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == 1
    assert summary["sources"][0]["name"] == "shapes-cnn"
    assert "48 training / 720 validation" in result.stderr  # 4 clips of each of the 12 classes
    # the Results tab's look inside the run: validation clips as strips of frames with their predictions
    from sskt_engine.validation_preview import validation_predictions

    strips, truth, predicted = validation_predictions(run, count=3)
    assert strips.shape == (3, 32, 4 * 32 + 3 * 2, 3) and len(truth) == len(predicted) == 3


def test_a_paper_ucf101_preset_checks_and_trains_sskt_from_the_cli(tmp_path, monkeypatch):
    """The issue's 'a user with UCF101 on disk': the shipped P+I scratch preset on a tiny UCF101 in the
    official layout (AVI files, ucfTrainTestlist/), with both ResNet-50 sources in their real on-disk
    formats (the torchvision cache file under TORCH_HOME, the CSAIL Places365 pickle), through
    ``sskt check`` and ``sskt train`` as a user would run them; only the sizes are shrunk."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from paper_standins import write_imagenet_resnet50, write_places365_resnet50

    root = make_ucf101(tmp_path / "UCF101")
    write_imagenet_resnet50(tmp_path / "torch_home")
    places = write_places365_resnet50(tmp_path / "models")
    env = dict(os.environ, SSKT_STUDIO_CONFIG_DIR=str(tmp_path / "config"), TORCH_HOME=str(tmp_path / "torch_home"))
    preset = str(resource_path("presets", "paper", "paper-ucf101-resnet3d18-scratch-pi.yaml"))
    shrink = [f"data.root={root}", f"sources[0].path={places}", "data.image_size=32", "data.clip_len=4",
              "data.num_workers=0", "train.epochs=1", "train.batch_size=6", "train.device=cpu"]
    options = [item for value in shrink for item in ("--set", value)]

    def sskt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sskt_engine.cli", *args], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path, env=env)

    checked = sskt("check", preset, *options)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    trained = sskt("train", preset, *options, "--threads", "1", "--runs-dir", str(tmp_path / "runs"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = Path(trained.stdout.strip().splitlines()[-1].removeprefix("run: "))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["method"] == "sskt" and summary["dataset"] == "ucf101"
    assert [s["name"] for s in summary["sources"]] == ["places365", "imagenet"]
    assert "18 training / 6 validation" in trained.stderr  # split 1: groups 2-4 train, group 1 tests
