"""A run's checkpoints through their one reader and writer (``run_checkpoint.RunCheckpoint``):
the trainer's files read back typed, today's layout kept key for key, and every damaged or
foreign checkpoint refused in one sentence by resume, export and run-as-source alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.errors import SourceError, UserInputError
from sskt_engine.export import export_run
from sskt_engine.run_checkpoint import CHECKPOINT_FORMAT, CheckpointError, CheckpointMeta, RunCheckpoint
from sskt_engine.runs import RunFolder
from sskt_engine.sources import build_source
from sskt_engine.trainer import Trainer

TINY = """\
name: checkpoints
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, device: cpu, seed: 3}
"""
# The keys every checkpoint of this app has held since its first version.
LAYOUT = {"models", "optimizers", "format", "version", "epoch", "global_step", "best_val_acc", "best_epoch",
          "skipped_steps", "scaler", "rng", "preset", "meta", "records"}  # records: issue 14 item 5
META_KEYS = {"arch", "num_classes", "class_names", "input_size", "mean", "std", "method", "export_network",
             "networks", "sources", "val", "multi_label"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunFolder:
    return Trainer(loads_preset(TINY), tmp_path_factory.mktemp("runs")).run()


def _copy(run: RunFolder, tmp_path: Path) -> Path:
    copy = tmp_path / run.path.name
    shutil.copytree(run.path, copy)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, "status": "stopped"}))
    return copy


def test_the_trainers_checkpoint_reads_back_typed_in_todays_layout(run):
    raw = torch.load(run.checkpoint_path("last"), weights_only=True)
    assert set(raw) == LAYOUT and raw["format"] == CHECKPOINT_FORMAT and set(raw["meta"]) == META_KEYS
    checkpoint = RunCheckpoint.read(run.checkpoint_path("last"), "the last checkpoint")
    meta = checkpoint.meta
    assert isinstance(meta, CheckpointMeta) and meta.arch == "tiny_cnn" and meta.num_classes == 6
    assert meta.networks == {"target": "tiny_cnn"} and meta.export_network == "target"
    assert len(meta.class_names) == 6 and meta.input_size == 32 and len(meta.mean) == 3
    assert checkpoint.epoch == 1 and checkpoint.best_epoch == 0 and checkpoint.preset.startswith("schema_version")
    # written back, the same keys and values: reading and writing lose nothing
    again = checkpoint.to_dict()
    assert set(again) == LAYOUT and again["meta"] == raw["meta"] and again["best_val_acc"] == raw["best_val_acc"]
    assert torch.equal(again["rng"]["torch"], raw["rng"]["torch"])
    assert checkpoint.backbone_weights("target").keys() == {k[len("backbone."):] for k in raw["models"]["target"]
                                                              if k.startswith("backbone.")}


def test_method_state_round_trips_extra_keys():
    state = {"models": {"target": {}}, "optimizers": {}, "generator": {"w": torch.ones(1)}}  # as MAXL keeps
    meta = CheckpointMeta(arch="tiny_cnn", num_classes=2, class_names=("a", "b"), input_size=32, mean=(0.5,) * 3,
                          std=(0.25,) * 3, method="maxl", export_network="target", networks={"target": "tiny_cnn"})
    checkpoint = RunCheckpoint.from_method_state(state, epoch=1, global_step=2, best_score=0.5, best_epoch=0,
                                                 skipped_steps=0, scaler=None, rng={}, preset="", meta=meta)
    raw = checkpoint.to_dict()
    assert "generator" in raw and set(RunCheckpoint.from_dict(raw, "x").method_state()) == set(state)


@pytest.mark.parametrize("damage, words", [
    (lambda raw: raw.pop("models"), "holds no trained network; it is not a checkpoint of SSKT Studio"),
    (lambda raw: raw.pop("meta"), "lacks meta; it is not a checkpoint of SSKT Studio"),
    (lambda raw: raw["meta"].pop("input_size"), "does not say its network's input_size"),
    (lambda raw: raw["meta"].update(num_classes=10**9), "its metadata gives an impossible class count"),
    (lambda raw: raw["meta"].update(mean="grey"), "its metadata gives an impossible mean"),
    (lambda raw: raw.update(epoch="one"), "is damaged: its counters are not numbers"),
])
def test_a_damaged_checkpoint_is_one_sentence_for_resume_export_and_sources(run, tmp_path, damage, words):
    """Missing keys and impossible metadata (10^9 classes would size a 128 GB network) are refused
    before anything is built, in one sentence, by every reader."""
    copy = _copy(run, tmp_path)
    for which in ("last", "best"):
        raw = torch.load(copy / "checkpoints" / f"{which}.pt", weights_only=True)
        damage(raw)
        torch.save(raw, copy / "checkpoints" / f"{which}.pt")
    with pytest.raises(UserInputError, match=rf"the last checkpoint of run .* {words}.*; it cannot be resumed"):
        Trainer.resume(copy).run()
    with pytest.raises(UserInputError, match=rf"the best checkpoint of run .* {words}"):
        export_run(copy, "pt", tmp_path / "out.pt")
    with pytest.raises(SourceError, match=rf"the best checkpoint of run .* {words}"):
        build_source(SourceConfig(kind="run", path=str(copy)))
    assert not (tmp_path / "out.pt").exists()


def test_a_checkpoint_of_other_networks_cannot_be_resumed_and_says_why(run, tmp_path):
    copy = _copy(run, tmp_path)
    raw = torch.load(copy / "checkpoints" / "last.pt", weights_only=True)
    raw["models"] = {"peer1": raw["models"]["target"]}
    torch.save(raw, copy / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match=r"does not fit the run's networks .*it cannot be resumed") as info:
        Trainer.resume(copy).run()
    assert "\n" not in str(info.value)


def test_the_epoch_records_in_last_pt_are_compressed_and_older_text_ones_still_read(tmp_path):
    import zlib

    from sskt_engine.trainer import MAX_RECORD_BYTES, _EpochRecords, _inflate

    folder = Trainer(loads_preset(TINY), tmp_path).run()
    raw = torch.load(folder.checkpoint_path("last"), weights_only=True)["records"]
    assert isinstance(raw["eval_zlib"], bytes) and "eval" not in raw
    records = _EpochRecords.from_dict(raw)
    assert records is not None and records.report == folder.eval_report("last")
    older = {**{k: v for k, v in raw.items() if k != "eval_zlib"}, "eval": zlib.decompress(raw["eval_zlib"]).decode()}
    assert _EpochRecords.from_dict(older).report == records.report  # a last.pt of the previous version
    # a checkpoint from anyone: a report that would inflate past the cap is dropped, not inflated
    bomb = zlib.compress(b" " * (MAX_RECORD_BYTES + 1), 9)
    assert len(bomb) < 1024 * 1024 and _inflate(bomb) is None
    assert _inflate(b"not zlib") is None and _inflate("text") is None
