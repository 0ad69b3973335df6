"""The soft-label cache (``train.source_view: clean``, or augmentation off): cached outputs
equal fresh ones to float16 precision; the fingerprint sees a changed source file, input size,
normalisation or dataset; a resumed run reuses a valid cache and recomputes an invalid one; a
cache over the memory budget is a memory-mapped file; distributed ranks each compute their own
share and end with the whole table."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import sskt_engine.catalog  # noqa: F401  registers the built-ins
from sskt_engine import events as ev
from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.data.batches import Batch, BatchStream
from sskt_engine.data.sets import ImageSet
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.models import build_architecture
from sskt_engine.soft_label_cache import DESCRIPTION_NAME, TABLE_NAME, fingerprint, load_table
from sskt_engine.soft_labels import SoftLabels
from sskt_engine.sources import FrozenSource, SourceEnsemble, build_source
from sskt_engine.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def _source(name: str, classes: int, size: int, seed: int, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
    torch.manual_seed(seed)
    module = build_architecture("tiny_cnn", classes).eval().requires_grad_(False)
    return FrozenSource(name, module, classes, size, mean, std, None, "test")


def _images(n: int = 21, seed: int = 0) -> ImageSet:
    generator = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=generator),
                    torch.zeros(n, dtype=torch.long))


def _stream(images: ImageSet, batch_size: int = 8, shard=(0, 1)) -> BatchStream:
    return BatchStream(images, batch_size=batch_size, shuffle=True, augment=True, mean=(0.5,) * 3, std=(0.25,) * 3,
                       device=CPU, seed=0, shard=shard).unaugmented()


def _filled(sources, images, **kwargs) -> SoftLabels:
    labels = SoftLabels(SourceEnsemble(sources), view="clean")
    labels.request()
    assert labels.fill(_stream(images).epoch(0), images, CPU, **kwargs)
    return labels


def test_cached_outputs_equal_fresh_ones_to_float16_precision():
    sources = [_source("a", 5, 32, 1), _source("b", 7, 24, 2)]
    images = _images()
    labels = _filled(sources, images)
    assert labels.table is not None and not labels.table.mapped
    assert labels.table.bytes_per_image == 2 * (5 + 7)
    # a shuffled training batch of the clean images, read by dataset index
    order = torch.tensor([20, 3, 7, 0, 11])
    pixels = images.images[order].float() / 255
    batch = Batch(pixels, (pixels - 0.5) / 0.25, torch.zeros(5, dtype=torch.long), order)
    cached = labels.request()(batch)
    fresh = SourceEnsemble(sources)(pixels)
    for got, want in zip(cached, fresh):
        assert got.dtype == torch.float32 and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3)  # float16 keeps 11 significant bits


def test_the_augmented_view_runs_the_sources_on_each_batch_and_caches_nothing():
    sources = SourceEnsemble([_source("a", 5, 32, 1)])
    augmented = SoftLabels(sources, view="augmented", batches_vary=True)
    reader = augmented.request()
    assert not augmented.needs_fill
    pixels = torch.rand(4, 3, 16, 16)
    batch = Batch(pixels, pixels, torch.zeros(4, dtype=torch.long), torch.arange(4))
    torch.testing.assert_close(reader(batch)[0], sources(pixels)[0])
    # without augmentation the batch is the clean image every epoch: both views cache
    assert SoftLabels(sources, view="augmented", batches_vary=False).request().owner.needs_fill
    assert SoftLabels(sources, view="clean", batches_vary=True).request().owner.needs_fill
    with pytest.raises(ValueError, match="source view"):
        SoftLabels(sources, view="blurred")


def test_a_clean_reader_refuses_to_run_before_the_cache_is_filled():
    labels = SoftLabels(SourceEnsemble([_source("a", 5, 32, 1)]), view="clean")
    pixels = torch.rand(2, 3, 16, 16)
    with pytest.raises(RuntimeError, match="not filled"):
        labels.request()(Batch(pixels, pixels, torch.zeros(2, dtype=torch.long), torch.arange(2)))


def test_kd_caches_only_its_teacher():
    sources = SourceEnsemble([_source("other", 12, 32, 1), _source("teacher", 6, 32, 2)])
    cfg = loads_preset("method: {name: kd, teacher: 1}\nsources: [{kind: run, path: x}, {kind: run, path: y}]\n"
                       "train: {device: cpu}\n")
    labels = SoftLabels(sources, view="clean")
    ctx = MethodContext(cfg, 6, tuple("abcdef"), 16, CPU, sources, soft_labels=labels)
    method = METHODS.get("kd").build(ctx)
    images = _images()
    assert labels.fill(_stream(images).epoch(0), images, CPU)
    assert labels.table.widths == (6,)  # the other source never ran
    pixels = images.images[:4].float() / 255
    out = method.train_step(Batch(pixels, (pixels - 0.5) / 0.25, torch.tensor([0, 1, 2, 3]), torch.arange(4)), 0)
    assert torch.isfinite(out.losses["kd"])


# ----------------------------------------------------------------------------- the fingerprint

def _checkpoint_source(path: Path, seed: int, **fields) -> FrozenSource:
    torch.manual_seed(seed)
    save_file(build_architecture("tiny_cnn", 5).state_dict(), str(path))
    return build_source(SourceConfig(kind="checkpoint", arch="tiny_cnn", path=str(path), **fields))


def test_the_fingerprint_changes_with_source_file_size_normalisation_and_dataset(tmp_path):
    path = tmp_path / "source.safetensors"
    images = _images()
    base = fingerprint([_checkpoint_source(path, 1, input_size=32)], "float32", images)
    assert fingerprint([_checkpoint_source(path, 1, input_size=32)], "float32", images) == base  # stable
    changed = {
        "another file at the same path": fingerprint([_checkpoint_source(path, 2, input_size=32)], "float32", images),
        "input size": fingerprint([_checkpoint_source(path, 1, input_size=40)], "float32", images),
        "mean/std": fingerprint([_checkpoint_source(path, 1, input_size=32, mean=(0.4, 0.4, 0.4))], "float32",
                                images),
        "pixel scale": fingerprint([_checkpoint_source(path, 1, input_size=32, pixel_scale=128.0,
                                                       pixel_offset=127.0)], "float32", images),
        "precision": fingerprint([_checkpoint_source(path, 1, input_size=32)], "bfloat16", images),
        "another subset": fingerprint([_checkpoint_source(path, 1, input_size=32)], "float32",
                                      images.subset(torch.arange(1, 21))),
        "one pixel": fingerprint([_checkpoint_source(path, 1, input_size=32)], "float32",
                                 ImageSet(images.images.clone().index_put_((torch.tensor([3]),) * 1,
                                                                           torch.tensor(7, dtype=torch.uint8)),
                                          images.labels)),
    }
    for what, key in changed.items():
        assert key != base, what


def test_a_table_saved_under_one_fingerprint_is_not_loaded_under_another(tmp_path):
    images = _images()
    sources = [_source("a", 5, 32, 1)]
    labels = _filled(sources, images, folder=tmp_path)
    key = fingerprint(sources, "float32", images)
    assert json.loads((tmp_path / DESCRIPTION_NAME).read_text())["fingerprint"] == key
    again = load_table(tmp_path, key, len(images), [5], CPU, budget=1 << 30)
    assert again is not None and torch.equal(again.values, labels.table.values)
    assert load_table(tmp_path, "0" * 64, len(images), [5], CPU, budget=1 << 30) is None
    assert load_table(tmp_path, key, len(images) + 1, [5], CPU, budget=1 << 30) is None
    (tmp_path / TABLE_NAME).write_bytes(b"cut short")
    assert load_table(tmp_path, key, len(images), [5], CPU, budget=1 << 30) is None


def test_a_cache_over_the_memory_budget_is_a_memory_mapped_file(tmp_path):
    sources = [_source("a", 5, 32, 1), _source("b", 3, 20, 2)]
    images = _images()
    in_memory = _filled(sources, images)
    on_disk = _filled(sources, images, folder=tmp_path, budget=100)  # 21 images x 16 bytes is over 100 bytes
    table = on_disk.table
    assert table.mapped and table.path == tmp_path / TABLE_NAME
    assert (tmp_path / TABLE_NAME).stat().st_size == len(images) * 2 * 8
    assert torch.equal(table.values, in_memory.table.values)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the temporary was renamed
    reloaded = load_table(tmp_path, fingerprint(sources, "float32", images), len(images), [5, 3], CPU, budget=100)
    assert reloaded is not None and reloaded.mapped and torch.equal(reloaded.values, in_memory.table.values)
    indices = torch.tensor([4, 0, 9])
    for got, want in zip(reloaded.read(indices, [0, 1]), in_memory.table.read(indices, [0, 1])):
        assert torch.equal(got, want)


# ----------------------------------------------------------------------------- through the Trainer

TINY = """\
name: cache
target: {arch: tiny_cnn}
sources: [{kind: checkpoint, arch: tiny_cnn, path: SOURCE, input_size: 40, name: shapes}]
data: {dataset: demo, labels_per_class: 4, val_split: 0.1}
method: {name: sskt}
train: {epochs: 2, batch_size: 8, lr: 0.05, schedule: cosine, seed: 1, deterministic: true, log_every: 1,
        device: cpu, source_view: clean}
"""


def _config(source: Path, *overrides: str):
    return loads_preset(TINY.replace("SOURCE", str(source)), overrides=list(overrides))


def _messages(events) -> list[str]:
    return [e.message for e in events if isinstance(e, ev.LogMessage) and e.message.startswith("soft labels")]


def test_a_resumed_run_reuses_a_valid_cache_and_recomputes_an_invalid_one(tmp_path):
    source = tmp_path / "source.safetensors"
    torch.manual_seed(3)
    save_file(build_architecture("tiny_cnn", 12).state_dict(), str(source))
    straight_events: list = []
    straight = Trainer(_config(source), tmp_path / "a", straight_events.append).run()
    assert straight.summary().status == "finished", straight.summary().message
    assert any("computing the sources' outputs once" in m for m in _messages(straight_events))
    assert not (straight.path / "checkpoints" / TABLE_NAME).exists()  # a finished run keeps no cache

    stop = threading.Event()
    first: list = []

    def stop_after_first_epoch(event):
        first.append(event)
        if isinstance(event, ev.EpochEnd) and event.epoch == 0:
            stop.set()

    folder = Trainer(_config(source), tmp_path / "b", stop_after_first_epoch, stop).run()
    assert folder.summary().status == "stopped"
    assert (folder.path / "checkpoints" / TABLE_NAME).is_file()
    resumed_events: list = []
    resumed = Trainer.resume(folder.path, on_event=resumed_events.append).run().summary()
    assert resumed.status == "finished"
    messages = _messages(resumed_events)
    assert any("reusing the sources' outputs" in m for m in messages)
    assert not any("computing" in m for m in messages)
    assert resumed.final_score == pytest.approx(straight.summary().final_score, abs=1e-6)
    assert resumed.final_val["loss"] == pytest.approx(straight.summary().final_val["loss"], abs=1e-5)

    # the same, but the source file is replaced while the run is stopped: the cache is stale
    stop.clear()
    folder = Trainer(_config(source), tmp_path / "c", stop_after_first_epoch, stop).run()
    torch.manual_seed(4)
    save_file(build_architecture("tiny_cnn", 12).state_dict(), str(source))
    changed_events: list = []
    assert Trainer.resume(folder.path, on_event=changed_events.append).run().summary().status == "finished"
    assert any("computing the sources' outputs once" in m for m in _messages(changed_events))


def test_stop_during_the_fill_stops_the_run_before_any_epoch(tmp_path):
    source = tmp_path / "source.safetensors"
    save_file(build_architecture("tiny_cnn", 12).state_dict(), str(source))
    stop = threading.Event()
    seen: list = []

    def stop_when_the_fill_starts(event):
        seen.append(event)
        if isinstance(event, ev.LogMessage) and "computing the sources' outputs" in event.message:
            stop.set()

    folder = Trainer(_config(source), tmp_path, stop_when_the_fill_starts, stop).run()
    assert folder.summary().status == "stopped" and folder.summary().epochs_completed == 0
    assert not any(isinstance(e, ev.Progress) for e in seen)
    assert Trainer.resume(folder.path).run().summary().status == "finished"


# ----------------------------------------------------------------------------- distributed

RANK_SCRIPT = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from sskt_engine.data.batches import BatchStream
from sskt_engine.data.sets import ImageSet
from sskt_engine.distributed import DistContext
from sskt_engine.soft_labels import SoftLabels
from sskt_engine.sources import FrozenSource, SourceEnsemble

ctx = DistContext.from_env()
ctx.init(torch.device("cpu"))
sources = []
for name, classes, size, seed in (("a", 5, 32, 1), ("b", 3, 20, 2)):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(4, classes)).eval()
    sources.append(FrozenSource(name, module, classes, size, (0.5,) * 3, (0.25,) * 3, None, "test"))
seen = []
sources[0].module.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[0]))
generator = torch.Generator().manual_seed(0)
images = ImageSet(torch.randint(0, 256, (21, 3, 16, 16), dtype=torch.uint8, generator=generator),
                  torch.zeros(21, dtype=torch.long))
stream = BatchStream(images, batch_size=4, shuffle=True, augment=True, mean=(0.5,) * 3, std=(0.25,) * 3,
                     device="cpu", seed=0, shard=(ctx.rank, ctx.world)).unaugmented()
labels = SoftLabels(SourceEnsemble(sources), view="clean")
labels.request()
assert labels.fill(stream.epoch(0), images, torch.device("cpu"), dist=ctx)
# the same sources in one process, over every image
whole = SourceEnsemble(sources)(images.images.float() / 255)
torch.save({"values": labels.table.values, "whole": torch.cat(whole, dim=1), "images_run": sum(seen)},
           sys.argv[2])
ctx.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_ranks_compute_their_own_share_and_each_hold_the_whole_table(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    port = str(_free_port())
    processes = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1")
        processes.append(subprocess.Popen([sys.executable, str(script), str(ROOT), str(tmp_path / f"{rank}.pt")],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
    results = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in range(2)]
    # each rank ran the sources on its own share of the 21 images (plus the check over all 21)
    assert [r["images_run"] - 21 for r in results] == [11, 10]
    for result in results:  # and holds the whole table, equal to a single process's outputs
        torch.testing.assert_close(result["values"].float(), result["whole"], rtol=1e-3, atol=1e-3)
