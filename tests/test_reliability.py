"""Engine faults (issue 6, items 1-5, 7 and 8): each fault is injected for real, and each
test checks what the app did and that nothing already saved was lost.

Faults come in through ``Trainer.fault_hook`` (called before every training step), a
patched ``os.replace`` (a crash between writing a temporary file and publishing it),
a patched loss function (NaN / inf at a chosen step), real signals sent to real
``python -m sskt_engine.cli`` processes, and files removed under a running trainer.
What earlier tests already prove is not repeated here: tests/test_trainer.py (failure
message and resume after an exception, NaN naming the term, out of memory, stop within
one step, stop + resume in process), tests/test_data.py (corrupt and empty image folders
at load time), tests/test_gui_run.py (the window's side).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch
from PIL import Image

from sskt_engine import cli
from sskt_engine import events as ev
from sskt_engine import runs as runs_module
from sskt_engine.config import ExperimentConfig, load_preset, loads_preset, save_preset
from sskt_engine.data import image_folder
from sskt_engine.errors import UserInputError
from sskt_engine.export import ExportFailed, export_run, load_run_network, read_model_file
from sskt_engine.run_summary import RunSummary
from sskt_engine.runs import RunFolder, list_runs
from sskt_engine.tasks import SingleLabelTask
from sskt_engine.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]

TINY = """\
name: tiny
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 8}
method: {name: supervised}
train: {epochs: 3, batch_size: 16, lr: 0.05, schedule: cosine, seed: 3, deterministic: true, log_every: 1,
        device: cpu}
"""
STEPS_PER_EPOCH = 3  # 6 classes x 8 labels = 48 images, batches of 16


def tiny_config(*overrides: str) -> ExperimentConfig:
    return loads_preset(TINY, overrides=list(overrides))


def _collect():
    seen: list[ev.Event] = []
    return seen, seen.append


def _stray_temp_files(folder: Path) -> list[Path]:
    """What atomic writes leave behind when they are not cleaned up: ``.NAME.*.tmp`` / ``.partial``."""
    return [p for p in folder.rglob(".*") if p.suffix in (".tmp", ".partial")]


def _events(folder: Path) -> list[ev.Event]:
    return list(RunFolder(folder).events())


# ----------------------------------------------------------------------------- 1. exception in a step

def test_exception_in_a_step_keeps_the_checkpoint_usable_and_a_new_run_starts(tmp_path):
    seen, on_event = _collect()
    trainer = Trainer(tiny_config("train.epochs=2"), tmp_path, on_event)

    def explode(epoch, step):
        if (epoch, step) == (1, 2):
            raise RuntimeError("injected fault in a training step")

    trainer.fault_hook = explode
    failed = trainer.run()  # returns: a training failure never raises
    summary = failed.summary()
    assert summary.status == "failed" and summary.epochs_completed == 1
    assert summary.message == ("training failed in epoch 2: RuntimeError: injected fault in a training step")
    assert isinstance(seen[-1], ev.RunFailed) and seen[-1].message == summary.message
    assert isinstance(_events(failed.path)[-1], ev.RunFailed)  # the log says so too
    # the last completed epoch's checkpoint is intact and loads the way export loads it
    state = torch.load(failed.checkpoint_path("last"), map_location="cpu", weights_only=True)
    assert state["epoch"] == 1
    backbone, meta, _ = load_run_network(failed, "last")
    assert meta["epoch"] == 1 and backbone(torch.rand(2, 3, 32, 32)).shape == (2, 6)
    before = failed.checkpoint_path("last").read_bytes()

    # the same process trains again, into a new folder, leaving the failed run alone
    again = Trainer(tiny_config("train.epochs=1"), tmp_path).run()
    assert again.path != failed.path and again.summary().status == "finished"
    assert failed.checkpoint_path("last").read_bytes() == before
    assert {r.status for r in list_runs(tmp_path)} == {"failed", "finished"}


# ----------------------------------------------------------------------------- 2. NaN / inf loss

@pytest.fixture
def poisoned_loss(monkeypatch):
    """Make the target loss NaN or infinite at chosen training steps (1-based, counted
    over the whole process); evaluation sums its own loss and stays clean."""
    plan: dict[int, float] = {}
    calls = [0]
    real = SingleLabelTask.loss

    def loss(self, logits, labels):
        value = real(self, logits, labels)
        calls[0] += 1
        return value * plan[calls[0]] if calls[0] in plan else value

    monkeypatch.setattr(SingleLabelTask, "loss", loss)
    return plan


def test_infinite_loss_stops_the_run_with_one_sentence_naming_step_and_term(tmp_path, poisoned_loss):
    poisoned_loss[STEPS_PER_EPOCH + 2] = float("inf")  # epoch 2, step 2
    folder = Trainer(tiny_config(), tmp_path).run()
    summary = folder.summary()
    message = summary.message
    assert summary.status == "failed" and summary.epochs_completed == 1
    assert message.startswith("the loss became infinite in epoch 2 at step 2 (term: target);")
    assert "\n" not in message and message.count(". ") == 0  # one sentence
    assert torch.load(folder.checkpoint_path("last"), weights_only=True)["epoch"] == 1


def test_nan_policy_skip_skips_and_counts_batches_and_keeps_them_out_of_the_curves(tmp_path, poisoned_loss):
    poisoned_loss.update({2: float("nan"), STEPS_PER_EPOCH + 2: float("nan")})  # step 2 of epochs 1 and 2
    seen, on_event = _collect()
    stop = threading.Event()

    def stop_in_epoch_3(event):
        on_event(event)
        if isinstance(event, ev.Progress) and event.epoch == 2:
            stop.set()

    folder = Trainer(tiny_config("train.nan_policy=skip"), tmp_path, stop_in_epoch_3, stop).run()
    assert folder.summary().status == "stopped" and folder.summary().skipped_steps == 2
    warnings = [e.message for e in seen if isinstance(e, ev.LogMessage) and e.level == "warning"]
    assert [w for w in warnings if w.startswith("skipped 1 batch(es) with a NaN")] and len(
        [w for w in warnings if "batch(es)" in w]) == 2
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert all(v == v for p in progress for v in p.losses.values())  # no NaN reaches the plots
    epoch_ends = [e for e in seen if isinstance(e, ev.EpochEnd)]
    assert all(e.train["loss"] == e.train["loss"] and e.val["loss"] == e.val["loss"] for e in epoch_ends)

    # the count survives a resume (it lives in the checkpoint)
    resumed = Trainer.resume(folder.path).run().summary()
    assert resumed.status == "finished" and resumed.skipped_steps == 2


# ----------------------------------------------------------------------------- 3 and 5. CLI processes

PAUSE_HOOK = textwrap.dedent('''\
    # Test-only: on this process's PYTHONPATH alone. Holds the training loop before the step
    # named by SSKT_TEST_PAUSE_AT ("epoch,step", 0-based epoch) until a stop is requested.
    import os
    import time

    _where = os.environ.get("SSKT_TEST_PAUSE_AT")
    if _where:
        import sskt_engine.trainer as _trainer

        _epoch, _step = (int(x) for x in _where.split(","))
        _init = _trainer.Trainer.__init__

        def _patched_init(self, *args, **kwargs):
            _init(self, *args, **kwargs)

            def pause(epoch, step):
                if (epoch, step) == (_epoch, _step):
                    deadline = time.time() + 120
                    while not self.stop_event.is_set() and time.time() < deadline:
                        time.sleep(0.02)

            self.fault_hook = pause

        _trainer.Trainer.__init__ = _patched_init
    ''')


def _cli_env(tmp: Path, pause_at: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO)]
    if pause_at:
        hook = tmp / "pause-hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(PAUSE_HOOK)
        paths.append(str(hook))
        env["SSKT_TEST_PAUSE_AT"] = pause_at
    env["PYTHONPATH"] = os.pathsep.join(paths + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else paths)
    env["SSKT_STUDIO_CONFIG_DIR"] = str(tmp / "config")
    env["OMP_NUM_THREADS"] = "1"  # the same thread count in every process: identical float sums
    return env


def _sskt(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sskt_engine.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _start_sskt(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sskt_engine.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_progress(runs_dir: Path, process: subprocess.Popen, epoch: int, step: int,
                       timeout: float = 240) -> Path:
    """Poll the run's metrics.jsonl until the EpochEnd of ``epoch - 1`` and a Progress at
    (epoch, step) are there; returns the run folder."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sskt ended early ({process.returncode}): {process.stderr.read()}")
        for folder in runs_dir.glob("*/metrics.jsonl"):
            events = _events(folder.parent)
            ended = any(isinstance(e, ev.EpochEnd) and e.epoch == epoch - 1 for e in events)
            if ended and any(isinstance(e, ev.Progress) and (e.epoch, e.step) == (epoch, step) for e in events):
                return folder.parent
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the run never reached the expected step")


@pytest.fixture(scope="module")
def cli_preset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    save_preset(tiny_config(), path)
    assert load_preset(path).train.deterministic
    return path


@pytest.fixture(scope="module")
def uninterrupted(cli_preset, tmp_path_factory) -> RunSummary:
    """The reference: the same preset trained by ``sskt train`` from start to end."""
    tmp = tmp_path_factory.mktemp("straight")
    done = _sskt("train", str(cli_preset), "--runs-dir", str(tmp / "runs"), env=_cli_env(tmp))
    assert done.returncode == 0, done.stderr
    summary = list_runs(tmp / "runs")[0]
    return RunFolder(summary.path).summary()


def _assert_same_result(resumed: RunSummary, straight: RunSummary) -> None:
    assert resumed.status == "finished" and resumed.epochs_completed == 3
    assert resumed.final_score == straight.final_score
    assert resumed.final_val["loss"] == pytest.approx(straight.final_val["loss"], abs=1e-6)
    assert resumed.best_score == straight.best_score


def test_kill_9_in_the_middle_of_an_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, cli_preset,
                                                                                   uninterrupted):
    runs_dir = tmp_path / "runs"
    process = _start_sskt("train", str(cli_preset), "--runs-dir", str(runs_dir),
                          env=_cli_env(tmp_path, pause_at="1,2"))
    run_dir = _wait_for_progress(runs_dir, process, epoch=1, step=1)  # epoch 2 has begun
    process.send_signal(signal.SIGKILL)
    assert process.wait(60) == -signal.SIGKILL
    process.stdout.close()
    process.stderr.close()

    folder = RunFolder(run_dir)
    assert folder.summary().status == "running"  # the killed process could not say anything...
    assert folder.status() == "interrupted"  # ...and the app sees that its process is gone
    assert torch.load(folder.checkpoint_path("last"), weights_only=True)["epoch"] == 1

    resumed = _sskt("resume", str(run_dir), env=_cli_env(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch 2" in resumed.stderr
    _assert_same_result(folder.summary(), uninterrupted)
    events = _events(run_dir)
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnd)] == [0, 1, 2]  # no duplicated stretch
    assert _stray_temp_files(run_dir) == []


def test_sigterm_stops_the_cli_run_exit_1_and_resume_finishes_it(tmp_path, cli_preset, uninterrupted):
    runs_dir = tmp_path / "runs"
    process = _start_sskt("train", str(cli_preset), "--runs-dir", str(runs_dir),
                          env=_cli_env(tmp_path, pause_at="1,2"))
    run_dir = _wait_for_progress(runs_dir, process, epoch=1, step=1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "stopping after this step" in err and f"run: {run_dir}" in out
    summary = RunFolder(run_dir).summary()
    assert summary.status == "stopped" and summary.epochs_completed == 1 and summary.pid is None

    resumed = _sskt("resume", str(run_dir), env=_cli_env(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_result(RunFolder(run_dir).summary(), uninterrupted)


def test_resume_refuses_a_run_whose_last_checkpoint_vanished_and_keeps_the_rest(tmp_path):
    """Starting such a run over would trim its logged epochs and overwrite best.pt."""
    stop = threading.Event()
    folder = Trainer(tiny_config(), tmp_path, lambda e: isinstance(e, ev.EpochEnd) and stop.set(), stop).run()
    assert folder.summary().status == "stopped" and folder.summary().epochs_completed == 1
    folder.checkpoint_path("last").unlink()
    kept = {p: p.read_bytes() for p in (folder.checkpoint_path("best"), folder.metrics_path, folder.summary_path)}
    with pytest.raises(UserInputError, match=r"completed 1 epoch\(s\) but its last checkpoint .* is missing"):
        Trainer.resume(folder.path).run()
    assert all(p.read_bytes() == data for p, data in kept.items())


# ----------------------------------------------------------------------------- 4. crash before os.replace

class InjectedCrash(OSError):
    pass


def _crash_replacing(monkeypatch, should_crash):
    """``os.replace`` raises (as a crash or a full disk would stop it) when
    ``should_crash(destination)`` says so; the temporary file is already fully written."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if should_crash(Path(dst)):
            raise InjectedCrash(errno.ENOSPC, "No space left on device (injected)")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def test_crash_while_saving_a_preset_keeps_the_old_preset(tmp_path, monkeypatch):
    path = tmp_path / "preset.yaml"
    save_preset(tiny_config(), path)
    _crash_replacing(monkeypatch, lambda dst: dst == path)
    with pytest.raises(InjectedCrash):
        save_preset(tiny_config("train.epochs=99"), path)
    monkeypatch.undo()
    assert load_preset(path) == tiny_config()
    assert _stray_temp_files(tmp_path) == []


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    writes = []

    def second_last_pt(dst: Path) -> bool:
        if dst.name == "last.pt":
            writes.append(dst)
            return len(writes) == 2  # the checkpoint of epoch 2
        return False

    _crash_replacing(monkeypatch, second_last_pt)
    folder = Trainer(tiny_config("train.epochs=2"), tmp_path).run()
    monkeypatch.undo()
    summary = folder.summary()
    assert summary.status == "failed" and "No space left on device" in summary.message
    for which in ("last", "best"):
        assert torch.load(folder.checkpoint_path(which), weights_only=True)["epoch"] == 1
    assert _stray_temp_files(folder.path) == []
    assert Trainer.resume(folder.path).run().summary().status == "finished"


def test_a_summary_that_cannot_be_written_leaves_the_previous_one_and_run_still_returns(tmp_path, monkeypatch):
    writes = []

    def summary_from_the_third_write(dst: Path) -> bool:
        if dst.name == "summary.json":
            writes.append(dst)
            return len(writes) >= 3  # start, epoch 1 written; epoch 2 and the failure report refused
        return False

    seen, on_event = _collect()
    _crash_replacing(monkeypatch, summary_from_the_third_write)
    folder = Trainer(tiny_config("train.epochs=2"), tmp_path, on_event).run()  # must not raise
    monkeypatch.undo()
    failed = [e for e in seen if isinstance(e, ev.RunFailed)]
    assert failed and "No space left on device" in failed[0].message
    assert "summary.json could not be updated either" in failed[0].message
    summary = json.loads(folder.summary_path.read_text())  # still whole JSON: the epoch-1 summary
    assert summary["epochs_completed"] == 1 and summary["status"] == "running"
    assert isinstance(_events(folder.path)[-1], ev.RunFailed)
    assert torch.load(folder.checkpoint_path("last"), weights_only=True)["epoch"] == 2  # written before
    assert _stray_temp_files(folder.path) == []


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> RunFolder:
    folder = Trainer(tiny_config("train.epochs=1"), tmp_path_factory.mktemp("finished")).run()
    assert folder.summary().status == "finished"
    return folder


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_crash_while_exporting_keeps_the_previous_export(tmp_path, monkeypatch, finished_run, fmt):
    out = tmp_path / f"model.{fmt}"
    export_run(finished_run.path, fmt, out)
    before = out.read_bytes()
    _crash_replacing(monkeypatch, lambda dst: dst == out)
    with pytest.raises((InjectedCrash, ExportFailed)):
        export_run(finished_run.path, fmt, out, checkpoint="last")
    monkeypatch.undo()
    assert out.read_bytes() == before
    model, meta = read_model_file(out)
    assert meta["num_classes"] == 6 and model(torch.rand(1, 3, 32, 32)).shape == (1, 6)
    assert _stray_temp_files(tmp_path) == []


# ----------------------------------------------------------------------------- 7. two runs at once

class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2024, 5, 6, 7, 8, 9)


def test_run_folders_created_at_the_same_second_are_unique(tmp_path, monkeypatch):
    monkeypatch.setattr(runs_module, "datetime", _FrozenClock)
    configs = [tiny_config(f"train.seed={i}") for i in range(16)]
    barrier = threading.Barrier(len(configs))
    made: list[RunFolder] = []

    def create(cfg):
        barrier.wait()
        made.append(RunFolder.create(tmp_path, cfg))

    threads = [threading.Thread(target=create, args=(cfg,)) for cfg in configs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({f.path for f in made}) == 16 and all(f.path.name.startswith("20240506-070809-tiny") for f in made)
    seeds = sorted(load_preset(f.preset_path).train.seed for f in made)
    assert seeds == list(range(16))  # every folder holds its own run's preset: nothing clobbered


def test_two_trainings_started_at_the_same_moment_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(runs_module, "datetime", _FrozenClock)
    barrier = threading.Barrier(2)
    results: dict[int, RunFolder] = {}

    def train(seed):
        trainer = Trainer(tiny_config("train.epochs=1", f"train.seed={seed}"), tmp_path)
        barrier.wait()
        results[seed] = trainer.run()

    threads = [threading.Thread(target=train, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20240506-070809-tiny", "20240506-070809-tiny-2"]
    for seed, folder in results.items():
        events = _events(folder.path)
        started = [e for e in events if isinstance(e, ev.RunStarted)]
        assert len(started) == 1 and started[0].run_dir == str(folder.path)
        assert folder.summary().status == "finished" and folder.summary().seed == seed
        assert folder.config().train.seed == seed
        assert torch.load(folder.checkpoint_path("last"), weights_only=True)["epoch"] == 1


# ----------------------------------------------------------------------------- 8. datasets

def _image_folder(root: Path, per_class: int = 12) -> Path:
    for name, colour in (("ant", (0, 250, 0)), ("moth", (0, 0, 250)), ("zebra", (250, 0, 0))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16 + i % 3, 16), colour).save(root / name / f"{i}.png")
    return root


def _folder_config(root: Path, *overrides: str) -> ExperimentConfig:
    return tiny_config("data.dataset=imagefolder", f"data.root={root}", "data.labels_per_class=null",
                       "data.image_size=16", "data.augment=false", *overrides)


def test_dataset_folder_removed_mid_run_fails_with_a_sentence_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    root = _image_folder(tmp_path / "images")
    monkeypatch.setattr(image_folder, "IN_MEMORY_LIMIT_BYTES", 0)  # a "large" set: read from disk every epoch
    trainer = Trainer(_folder_config(root, "train.epochs=2", "data.device_resident=off"), tmp_path / "runs")

    def remove_dataset(epoch, step):
        if (epoch, step) == (1, 1):
            shutil.rmtree(root)

    trainer.fault_hook = remove_dataset
    folder = trainer.run()
    summary = folder.summary()
    assert summary.status == "failed" and summary.data_resident is False
    assert "could not be read any more; was it changed or removed after the dataset was loaded?" in summary.message
    assert str(root) in summary.message
    assert torch.load(folder.checkpoint_path("last"), weights_only=True)["epoch"] == 1


def _corrupt_files(root: Path) -> None:
    (root / "ant" / "garbage.png").write_bytes(b"this is not a png at all")
    noise = Image.effect_noise((64, 64), 60).convert("RGB")
    noise.save(root / "moth" / "whole.png")
    data = (root / "moth" / "whole.png").read_bytes()
    (root / "moth" / "whole.png").unlink()
    (root / "moth" / "truncated.png").write_bytes(data[: len(data) // 2])  # a valid header, half the pixels


def test_corrupt_images_are_skipped_with_a_warning_count_and_the_run_finishes(tmp_path):
    """The documented choice: unreadable images are skipped, the run says how many (and one
    example), it does not fail. A class left with no readable image is an error instead."""
    root = _image_folder(tmp_path / "images")
    _corrupt_files(root)
    seen, on_event = _collect()
    folder = Trainer(_folder_config(root, "train.epochs=1"), tmp_path / "runs", on_event).run()
    assert folder.summary().status == "finished"
    warnings = [e.message for e in _events(folder.path) if isinstance(e, ev.LogMessage) and e.level == "warning"]
    assert any(w.startswith("skipped 2 unreadable image(s), e.g. ") for w in warnings), warnings
    assert folder.summary().train_size + folder.summary().val_size == 36


def test_corrupt_images_in_a_dataset_left_on_disk_are_skipped_too(tmp_path, monkeypatch):
    root = _image_folder(tmp_path / "images")
    _corrupt_files(root)
    monkeypatch.setattr(image_folder, "IN_MEMORY_LIMIT_BYTES", 0)
    folder = Trainer(_folder_config(root, "train.epochs=1", "data.device_resident=off"), tmp_path / "runs").run()
    assert folder.summary().status == "finished", folder.summary().message


@pytest.fixture
def restore_signals():
    """cli.main installs SIGINT/SIGTERM handlers for graceful stops; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_empty_class_folder_is_one_sentence_exit_2_and_no_run_folder(tmp_path, capsys, monkeypatch,
                                                                      restore_signals):
    monkeypatch.setenv("SSKT_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    root = _image_folder(tmp_path / "images")
    (root / "empty class").mkdir()
    preset = tmp_path / "folder.yaml"
    save_preset(_folder_config(root), preset)
    code = cli.main(["train", str(preset), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_BAD_INPUT
    assert err == f"error: class folder {root / 'empty class'} holds no images (.jpg, .jpeg, .png, ...)."
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
