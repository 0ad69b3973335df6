"""Following a run another process writes (app/run_follower.py): its folder is found, whole
lines become events, a half-written line waits, and the end of the log is read after the
process has ended. The follower runs in a worker thread; here its parts are called directly."""

from __future__ import annotations

import threading

from app.run_follower import MetricsFollower, follow
from app.worker import WorkerControl
from sskt_engine.events import LogMessage, to_json


def _line(text: str) -> str:
    return to_json(LogMessage("info", text, 0.0))


def test_whole_lines_become_events_and_a_half_written_one_waits(tmp_path):
    (tmp_path / "older-run").mkdir()  # there before the start: never followed
    (tmp_path / "older-run" / "metrics.jsonl").write_text(_line("old") + "\n")
    follower = MetricsFollower(tmp_path, {"older-run"})
    assert follower.read_new() == [] and follower.run_dir == ""  # no new run folder yet

    run = tmp_path / "20261130-090000-new"
    run.mkdir()
    metrics = run / "metrics.jsonl"
    second = _line("second")
    metrics.write_text(_line("first") + "\n" + second[:10])
    assert [e.message for e in follower.read_new()] == ["first"]
    assert follower.run_dir == str(run)
    with metrics.open("a") as handle:
        handle.write(second[10:] + "\n" + "not json\n" + _line("last, no newline"))
    assert [e.message for e in follower.read_new()] == ["second"]  # an unknown line is skipped
    assert [e.message for e in follower.read_rest()] == ["last, no newline"]  # after the process ended
    assert follower.read_rest() == []


def test_follow_yields_batches_until_asked_to_quit_then_reads_the_rest(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(_line("a") + "\n" + _line("b"))
    batches: list[list[str]] = []
    quit_event = threading.Event()

    def collect(events) -> None:
        batches.append([e.message for e in events])
        quit_event.set()  # the process "ends" once the first batch is in

    folder = follow(MetricsFollower(tmp_path, set()), WorkerControl(collect, quit_event))
    assert folder == str(run)
    assert batches == [["a"], ["b"]]
