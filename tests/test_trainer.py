"""The trainer end to end on tiny models and the built-in demo data: events, run folder,
checkpoints, stop and resume, failures, and a run reused as a source."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from sskt_engine import events as ev
from sskt_engine.config import ExperimentConfig, SourceConfig, loads_preset
from sskt_engine.errors import UserInputError
from sskt_engine.runs import RunFolder, list_runs
from sskt_engine.trainer import Trainer

TINY = """\
name: tiny
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 8}
method: {name: supervised}
train: {epochs: 3, batch_size: 16, lr: 0.05, schedule: cosine, seed: 3, deterministic: true, log_every: 2,
        device: cpu}
"""


def tiny_config(*overrides: str) -> ExperimentConfig:
    return loads_preset(TINY, overrides=list(overrides))


def _collect():
    seen: list[ev.Event] = []
    return seen, seen.append


def test_run_writes_folder_events_summary_and_checkpoints(tmp_path):
    seen, on_event = _collect()
    folder = Trainer(tiny_config(), tmp_path, on_event).run()
    kinds = [ev.event_kind(e) for e in seen]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("epoch_end") == 3 and "progress" in kinds
    summary = folder.summary()
    assert summary.status == "finished" and summary.epochs_completed == 3
    assert 0.0 <= summary.final_score <= 1.0
    # val_split 0: the validation numbers are the test split's, so no best epoch is chosen on them
    assert summary.selection == "none" and summary.best_score is None and summary.best_epoch is None
    assert "val_split" in summary.best_score_absent
    assert summary.device == "cpu" and "torch" in summary.versions and summary.wall_time_s > 0
    assert folder.checkpoint_path("last").is_file() and folder.checkpoint_path("best").is_file()
    # what the GUI replays equals what was emitted
    assert [ev.event_kind(e) for e in folder.events()] == kinds
    report = folder.eval_report("best")
    assert len(report.confusion) == 6 and len(report.per_class) == 6
    assert sum(map(sum, report.confusion)) == summary.val_size
    assert report.epoch == 3 and report.values["acc"] == summary.final_score  # best.pt is the last epoch's
    checkpoint = torch.load(folder.checkpoint_path("last"), weights_only=True)
    assert checkpoint["epoch"] == 3 and set(checkpoint["models"]) == {"target"} and "rng" in checkpoint
    assert list_runs(tmp_path)[0].status == "finished"


def test_progress_events_carry_plain_values(tmp_path):
    seen, on_event = _collect()
    Trainer(tiny_config("train.epochs=1"), tmp_path, on_event).run()
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert progress and all(isinstance(v, float) for p in progress for v in p.losses.values())
    assert all(p.samples_per_s > 0 and p.lr > 0 for p in progress)
    json.loads(ev.to_json(progress[0]))


def test_stop_then_resume_equals_an_uninterrupted_run(tmp_path):
    straight = Trainer(tiny_config(), tmp_path / "a").run().summary()

    stop = threading.Event()

    def stop_after_first_epoch(event):
        if isinstance(event, ev.Progress) and event.epoch == 1 and event.step >= 2:
            stop.set()

    folder = Trainer(tiny_config(), tmp_path / "b", stop_after_first_epoch, stop).run()
    assert folder.summary().status == "stopped" and folder.summary().epochs_completed == 1
    resumed = Trainer.resume(folder.path).run().summary()
    assert resumed.status == "finished" and resumed.epochs_completed == 3
    assert resumed.final_score == straight.final_score
    assert resumed.final_val["loss"] == pytest.approx(straight.final_val["loss"], abs=1e-6)
    epochs = [e.epoch for e in RunFolder(folder.path).events() if isinstance(e, ev.EpochEnd)]
    assert epochs == [0, 1, 2]  # the stopped partial epoch left no duplicate in the log


def test_stop_is_honoured_within_one_step(tmp_path):
    stop = threading.Event()
    steps_after_stop = []

    def on_event(event):
        if isinstance(event, ev.Progress):
            if stop.is_set():
                steps_after_stop.append(event.step)
            stop.set()

    trainer = Trainer(tiny_config("train.log_every=1"), tmp_path, on_event, stop)
    folder = trainer.run()
    assert folder.summary().status == "stopped" and steps_after_stop == []


def test_exception_in_a_step_fails_the_run_and_keeps_the_checkpoint(tmp_path):
    seen, on_event = _collect()
    trainer = Trainer(tiny_config(), tmp_path, on_event)

    def explode(epoch, step):
        if epoch == 1 and step == 2:
            raise RuntimeError("disk on fire")

    trainer.fault_hook = explode
    folder = trainer.run()
    assert folder.summary().status == "failed" and "disk on fire" in folder.summary().message
    failed = [e for e in seen if isinstance(e, ev.RunFailed)]
    assert failed and "epoch 2" in failed[0].message and "Traceback" in failed[0].detail
    state = torch.load(folder.checkpoint_path("last"), weights_only=True)
    assert state["epoch"] == 1
    # and it resumes to the end
    assert Trainer.resume(folder.path).run().summary().status == "finished"


def test_nan_loss_names_the_steps_and_the_term(tmp_path):
    trainer = Trainer(tiny_config("train.log_every=1"), tmp_path)

    def poison(epoch, step):
        if epoch == 0 and step == 3:
            with torch.no_grad():
                for p in trainer._setup_cache.method.net.parameters():
                    p.fill_(float("nan"))

    original_setup = trainer._setup

    def setup():
        trainer._setup_cache = original_setup()
        return trainer._setup_cache

    trainer._setup = setup
    trainer.fault_hook = poison
    folder = trainer.run()
    message = folder.summary().message
    assert folder.summary().status == "failed"
    assert "NaN" in message and "epoch 1" in message and "step" in message and "target" in message


def test_out_of_memory_suggests_a_smaller_batch(tmp_path):
    trainer = Trainer(tiny_config(), tmp_path)

    def oom(epoch, step):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    trainer.fault_hook = oom
    folder = trainer.run()
    assert folder.summary().status == "failed" and "smaller train.batch_size" in folder.summary().message


def test_bad_input_raises_before_any_folder(tmp_path):
    cfg = tiny_config().replace(sources=(SourceConfig(kind="checkpoint", path=str(tmp_path / "none.pt"),
                                                      arch="tiny_cnn"),))
    with pytest.raises(UserInputError, match="does not exist"):
        Trainer(cfg, tmp_path / "runs").run()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_sskt_with_an_earlier_run_as_source(tmp_path):
    first = Trainer(tiny_config("train.epochs=1"), tmp_path).run()
    cfg = tiny_config("train.epochs=1", "method.name=sskt", "method.head=transfer_module",
                      f"sources=[{{kind: run, path: '{first.path}', name: earlier}}]")
    assert cfg.sources == (SourceConfig(kind="run", path=str(first.path), name="earlier"),)
    seen, on_event = _collect()
    folder = Trainer(cfg, tmp_path, on_event).run()
    assert folder.summary().status == "finished"
    progress = next(e for e in seen if isinstance(e, ev.Progress))
    assert set(progress.losses) == {"loss", "target", "aux/earlier"}
    assert folder.summary().sources[0]["num_classes"] == 6


def test_warmup_longer_than_the_run_trains_with_a_warning(tmp_path):
    # `--set train.epochs=1` on a preset with warmup must still run (the demo has 3 warmup epochs)
    seen, on_event = _collect()
    folder = Trainer(tiny_config("train.epochs=1", "train.warmup_epochs=3"), tmp_path, on_event).run()
    assert folder.summary().status == "finished"
    warnings = [e.message for e in seen if isinstance(e, ev.LogMessage) and e.level == "warning"]
    assert ("train.warmup_epochs (3) is not fewer than train.epochs (1): the whole run is warmup (the learning "
            "rate climbs toward train.lr and train.schedule never applies)") in warnings
    lrs = [e.lr for e in seen if isinstance(e, ev.Progress)]
    assert lrs == sorted(lrs) and lrs[-1] < 0.05 / 3 + 1e-9  # still ramping: a third of the way at most
