"""The GUI's one worker pattern (app/worker.py): signals in order, quit requests honoured,
errors handed over as data and never raised into Qt or the window."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.worker import Worker, WorkerError, start_worker, wait_for_all
from conftest import TINY_PRESET
from sskt_engine.config import from_dict

SIGNALS = ("started", "yielded", "returned", "errored", "aborted", "finished")


def _record(worker: Worker) -> list[tuple]:
    seen: list[tuple] = []
    for name in SIGNALS:
        getattr(worker, name).connect(lambda *args, name=name: seen.append((name, *args)))
    return seen


def _run(qtbot, worker: Worker) -> list[tuple]:
    seen = _record(worker)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
    return seen


def test_a_generator_yields_then_returns_then_finishes_in_the_gui_thread(qtbot):
    threads = []

    def count():
        threads.append(threading.current_thread())
        for i in range(3):
            yield i
        return "done"

    worker = Worker(count)
    seen = _run(qtbot, worker)
    assert seen == [("started",), ("yielded", 0), ("yielded", 1), ("yielded", 2), ("returned", "done"), ("finished",)]
    assert threads and threads[0] is not threading.main_thread()
    assert not worker.is_running()


def test_a_plain_function_returns_its_value(qtbot):
    seen = _run(qtbot, Worker(lambda: {"answer": 42}))
    assert seen == [("started",), ("returned", {"answer": 42}), ("finished",)]


def test_a_function_with_a_control_yields_values_and_honours_quit(qtbot):
    def train(control):
        step = 0
        while not control.quit_requested():
            step += 1
            control.yield_value(step)
            control.quit_event.wait(0.005)  # what the trainer does: checks the request every step
        return f"stopped after {step} steps"

    worker = Worker(train, takes_control=True)
    seen = _record(worker)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
        qtbot.waitUntil(lambda: any(s[0] == "yielded" for s in seen), timeout=5000)
        assert not worker.quit_requested()
        worker.quit()
        assert worker.quit_requested()
    names = [s[0] for s in seen]
    assert names[0] == "started" and names[-2:] == ["returned", "finished"]
    assert set(names[1:-2]) == {"yielded"}
    steps = [s[1] for s in seen if s[0] == "yielded"]
    assert steps == list(range(1, len(steps) + 1))  # every value, in order
    assert seen[-2][1] == f"stopped after {steps[-1]} steps"


def test_quit_closes_a_generator_between_two_values(qtbot):
    closed = threading.Event()
    gate = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
                gate.wait(5)  # the second value waits until the test has asked to quit
        finally:
            closed.set()

    worker = Worker(endless)
    seen = _record(worker)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
        qtbot.waitUntil(lambda: ("yielded", 0) in seen, timeout=5000)
        worker.quit()
        gate.set()
    names = [s[0] for s in seen]
    assert names[-2:] == ["aborted", "finished"] and "returned" not in names and "errored" not in names
    assert closed.is_set()  # the generator's finally block ran
    assert len([n for n in names if n == "yielded"]) <= 2  # at most the value being made when asked


def test_an_exception_becomes_errored_with_its_traceback(qtbot):
    def broken():
        yield "first"
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")

    seen = _run(qtbot, Worker(broken))
    assert [s[0] for s in seen] == ["started", "yielded", "errored", "finished"]
    error = seen[2][1]
    assert isinstance(error, WorkerError) and isinstance(error.exception, RuntimeError)
    assert error.sentence == "CUDA out of memory."  # its first line, for a one-sentence message
    assert "Traceback" in error.detail and "in broken" in error.detail
    assert WorkerError(ValueError(), "").sentence == "ValueError"  # no message: the type's name


def test_an_error_nobody_listens_to_is_printed_not_raised(qtbot, capfd):
    worker = Worker(lambda: 1 / 0, name="sskt-test-divide")
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
    err = capfd.readouterr().err
    assert "sskt-test-divide" in err and "ZeroDivisionError" in err


def test_cancel_drops_what_comes_later_but_finished_still_comes(qtbot):
    release = threading.Event()

    def slow():
        release.wait(5)
        return "stale"

    worker = Worker(slow)
    seen = _record(worker)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
        worker.cancel()
        release.set()
    assert seen == [("started",), ("finished",)]
    assert worker.quit_requested()


def test_a_worker_runs_once(qtbot):
    worker = Worker(lambda: None)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
    with pytest.raises(RuntimeError, match="runs once"):
        worker.start()


def test_wait_for_all_delivers_every_result(qtbot):
    got: list[int] = []
    for i in range(4):
        start_worker(lambda i=i: i * i, returned=got.append)
    assert wait_for_all(10000)
    assert sorted(got) == [0, 1, 4, 9]


def test_an_error_in_a_worker_leaves_the_window_working(make_window, fake_trainer, tiny_preset, qtbot, gui_env,
                                                        monkeypatch):
    # Reading the selected runs' curves fails (say the disk went away): a warning in the log,
    # and the window goes on as before.
    run = fake_trainer(from_dict(TINY_PRESET), gui_env / "runs").run().path
    window = make_window(fake_trainer, tiny_preset)
    qtbot.waitUntil(lambda: window.runs_panel.info(Path(run)) is not None, timeout=10000)

    def unreadable(path):
        raise OSError(f"{path}: input/output error")

    monkeypatch.setattr("app.main_window.load_run_curves", unreadable)
    window.runs_panel.select([Path(run)])
    qtbot.waitUntil(lambda: "Could not read the curves" in window.log.toPlainText(), timeout=10000)
    assert "input/output error" in window.log.toPlainText()
    assert window.isVisible() and not window.plots.overlays
    with qtbot.waitSignal(window.controller.finished, timeout=20000) as finished:
        window.start_action.trigger()
    assert finished.args[1] == "finished"
