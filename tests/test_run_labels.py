"""A user's labels for a run (issue 18, item 15): display name, tags and note in the run folder's
labels.json (``sskt_engine.run_labels``), shared by the GUI's runs table and ``sskt label``."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch

from sskt_engine import cli
from sskt_engine import events as ev
from sskt_engine.config import loads_preset
from sskt_engine.errors import UserInputError
from sskt_engine.run_labels import (LABELS_NAME, MAX_FILE_BYTES, RunLabels, load_labels, read_labels, update_labels,
                                    write_labels)
from sskt_engine.run_summary import RunSummary
from sskt_engine.runs import RunFolder, list_runs

TINY = """\
name: tiny
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4}
method: {name: supervised}
train: {epochs: 2, batch_size: 12, lr: 0.05, schedule: constant, seed: 3, log_every: 1, device: cpu}
"""


@pytest.fixture
def run(tmp_path) -> RunFolder:
    """A run folder as the trainer makes it (preset, summary), without training."""
    folder = RunFolder.create(tmp_path / "runs", loads_preset(TINY))
    folder.write_summary(RunSummary(name="tiny", status="finished", method="supervised", epochs=2,
                                    epochs_completed=2))
    return folder


def test_labels_round_trip_and_show_in_the_run_list(run):
    write_labels(run.path, RunLabels(name="baseline · lr 0.05", tags=("paper", "fast"), note="first try\nok"))
    assert read_labels(run.path) == RunLabels("baseline · lr 0.05", ("paper", "fast"), "first try\nok")
    assert run.labels() == read_labels(run.path)
    info = list_runs(run.path.parent)[0]
    assert info.display_name == "baseline · lr 0.05" and info.name == "tiny"
    assert info.labels.tags == ("paper", "fast") and info.labels_warning == ""
    # changing one label keeps the others; tags dedupe ignoring case
    labels = update_labels(run.path, add_tags=["Paper", "lr0.05"], remove_tags=["FAST"])
    assert labels == RunLabels("baseline · lr 0.05", ("paper", "lr0.05"), "first try\nok")
    # clearing everything removes the file: the run is back to its own name
    update_labels(run.path, name="", tags=(), note="")
    assert not run.labels_path.exists()
    assert list_runs(run.path.parent)[0].display_name == "tiny"


def test_a_run_without_labels_has_none_and_no_warning(run):
    assert load_labels(run.path) == (RunLabels(), "")
    assert run.info().display_name == "tiny"


@pytest.mark.parametrize("content, problem, kept", [
    (b"\x00\xff not json", "not a JSON file", RunLabels()),
    (b"[1, 2, 3]", "does not hold a JSON object", RunLabels()),
    (b"{" * 100_000, "larger than", RunLabels()),
    # one bad field is dropped, the rest of the file counts
    (json.dumps({"name": "x" * 500, "tags": ["ok"], "note": "kept"}).encode(), "name", RunLabels("", ("ok",), "kept")),
    (json.dumps({"name": "kept", "tags": "not a list", "note": "kept"}).encode(), "tags", RunLabels("kept", (), "kept")),
    (json.dumps({"name": "kept", "tags": ["two words"], "note": "kept"}).encode(), "tags",
     RunLabels("kept", (), "kept")),
    (json.dumps({"name": "a\nb\u202e", "tags": [], "note": 5}).encode(), "name", RunLabels()),
])
def test_a_damaged_or_hostile_labels_file_is_ignored_with_a_warning(run, content, problem, kept):
    run.labels_path.write_bytes(content)
    labels, warning = load_labels(run.path)
    assert problem in warning and labels == kept
    info = run.info()  # the run still lists, under its own name when the name was refused
    assert info.display_name == (kept.name or "tiny") and info.labels_warning == warning


def test_a_fifo_or_folder_named_labels_json_never_blocks_or_breaks_a_reader(run):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(run.labels_path)  # opening a FIFO for reading would wait for a writer forever
    labels, warning = load_labels(run.path)
    assert labels == RunLabels() and "not a regular file" in warning
    run.labels_path.unlink()
    run.labels_path.mkdir()
    assert "not a regular file" in load_labels(run.path)[1] or "cannot be read" in load_labels(run.path)[1]


def test_writing_refuses_bad_labels_in_one_sentence_and_keeps_the_old_file(run):
    write_labels(run.path, RunLabels(name="good"))
    for bad in (RunLabels(name="line\nbreak"), RunLabels(tags=("two words",)), RunLabels(name="n" * 121),
                RunLabels(tags=tuple(f"t{i}" for i in range(40))), RunLabels(note="x" * 9000)):
        with pytest.raises(UserInputError) as caught:
            write_labels(run.path, bad)
        assert "\n" not in str(caught.value)
    assert read_labels(run.path) == RunLabels(name="good")
    assert os.path.getsize(run.labels_path) < MAX_FILE_BYTES
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]  # atomic: no temporaries left


def test_the_trainer_never_owns_or_overwrites_labels(run):
    assert run.owns(run.labels_path)  # an export into the run folder may not replace it


def _train(tmp_path, on_event, stop=None):
    from sskt_engine.trainer import Trainer

    torch.set_num_threads(1)
    return Trainer(loads_preset(TINY), tmp_path / "runs", on_event, stop).run()


def test_labels_written_during_training_survive_every_summary_rewrite_and_a_resume(tmp_path):
    from sskt_engine.trainer import Trainer

    stop = threading.Event()
    run_dir: list[str] = []

    def label_while_training(event):
        # the GUI or the CLI labelling a run while it trains, between the trainer's summary writes
        if isinstance(event, ev.RunStarted):
            run_dir.append(event.run_dir)
            update_labels(event.run_dir, name="renamed while training", add_tags=["live"])
        if isinstance(event, ev.EpochEnd):
            update_labels(run_dir[0], note="after epoch 1")
            stop.set()

    folder = _train(tmp_path, label_while_training, stop)
    assert folder.summary().status == "stopped", folder.summary().message  # summary rewritten at epoch end + stop
    assert folder.labels() == RunLabels("renamed while training", ("live",), "after epoch 1")
    resumed = Trainer.resume(folder.path).run()
    assert resumed.summary().status == "finished" and resumed.summary().epochs_completed == 2
    assert resumed.labels() == RunLabels("renamed while training", ("live",), "after epoch 1")
    assert list_runs(tmp_path / "runs")[0].display_name == "renamed while training"


# ----------------------------------------------------------------------------- sskt label

def test_cli_label_sets_shows_and_lists_labels(run, capsys):
    root = str(run.path.parent)
    code = cli.main(["label", run.path.name, "--runs-dir", root, "--name", "baseline", "--tag", "paper",
                     "--tag", "fast", "--note", "seed 3"])
    assert code == cli.EXIT_OK
    assert run.labels() == RunLabels("baseline", ("paper", "fast"), "seed 3")
    assert cli.main(["label", str(run.path), "--untag", "fast"]) == cli.EXIT_OK  # a path works too
    capsys.readouterr()
    assert cli.main(["label", str(run.path)]) == cli.EXIT_OK  # no options: shows them
    shown = capsys.readouterr().out
    assert "name: baseline" in shown and "tags: paper" in shown and "note: seed 3" in shown
    assert cli.main(["runs", "--runs-dir", root]) == cli.EXIT_OK
    listed = capsys.readouterr().out
    assert run.path.name in listed and "baseline" in listed and "#paper" in listed and "#fast" not in listed


@pytest.mark.parametrize("args, words", [
    (["--tag", "two words"], "one word"),
    (["--name", "x" * 200], "at most 120"),
    (["--untag", ""], "cannot be empty"),
])
def test_cli_label_bad_input_is_one_sentence_and_exit_2(run, capsys, args, words):
    code = cli.main(["label", str(run.path), *args])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_BAD_INPUT
    assert err.startswith("error: ") and words in err and "\n" not in err
    assert not run.labels_path.exists()  # nothing half-written


def test_cli_label_of_a_missing_run_is_exit_2(tmp_path, capsys):
    assert cli.main(["label", "nope", "--runs-dir", str(tmp_path), "--name", "x"]) == cli.EXIT_BAD_INPUT
    assert "does not exist" in capsys.readouterr().err


def test_cli_warns_about_a_damaged_labels_file_and_still_lists(run, capsys):
    run.labels_path.write_text("{not json")
    assert cli.main(["runs", "--runs-dir", str(run.path.parent)]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert run.path.name in out and "labels ignored" in err and LABELS_NAME in err
