"""Issue 14, items 3 (archives), 4-8: a run folder has one writer at a time, a full disk or a
kill costs no recorded epoch and leaves nothing behind, an export never writes over a run's
files, a torn log line is skipped, and a zip bomb is refused before it inflates.

Every test here but two failed on the code before the fixes (commit 99207b8); each docstring
says how. The two others pass there too: one guards what a fix must not break (a live export's
temporary), one pins what was already so (a foreign checkpoint is one sentence). Faults are real where they can be: real processes holding and dying with locks
(``kill -9``), real temporaries left by killed writers; a full disk is an injected
``ENOSPC`` from ``os.replace`` as in test_reliability.py.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

from sskt_engine import cli
from sskt_engine import events as ev
from sskt_engine.config import save_preset
from sskt_engine.errors import SourceError, UserInputError
from sskt_engine.export import export_run
from sskt_engine.run_checkpoint import CheckpointError, RunCheckpoint
from sskt_engine.runs import RunFolder, list_runs
from sskt_engine.trainer import Trainer
from test_reliability import restore_signals  # noqa: F401  (a fixture)
from test_reliability import _cli_env, _crash_replacing, _sskt, _start_sskt, _stray_temp_files, tiny_config


def _stopped_after_epoch_1(root: Path, *overrides: str) -> RunFolder:
    stop = threading.Event()
    folder = Trainer(tiny_config(*overrides), root, lambda e: isinstance(e, ev.EpochEnd) and stop.set(), stop).run()
    assert folder.summary().status == "stopped" and folder.summary().epochs_completed == 1
    return folder


def _epoch_ends(folder: RunFolder) -> list[int]:
    return [e.epoch for e in folder.events() if isinstance(e, ev.EpochEnd)]


def _python(code: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the process ended early ({process.returncode}): {process.stderr.read()}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


# ----------------------------------------------------------------------------- 4. one writer per run

HOLD_SETUP_HOOK = textwrap.dedent('''\
    # Test-only: holds Trainer setup (dataset loading) until SSKT_TEST_RELEASE exists, after
    # saying so in SSKT_TEST_READY: the moment the report's two resumes raced through.
    import os
    import time

    if os.environ.get("SSKT_TEST_READY"):
        import sskt_engine.trainer as _trainer

        _load = _trainer.load_dataset

        def _held(*args, **kwargs):
            open(os.environ["SSKT_TEST_READY"], "w").close()
            while not os.path.exists(os.environ["SSKT_TEST_RELEASE"]):
                time.sleep(0.05)
            return _load(*args, **kwargs)

        _trainer.load_dataset = _held
    ''')


def test_a_second_resume_of_a_run_is_refused_while_the_first_holds_it(tmp_path):
    """Before: both resumes passed the status check (the first had not written `running` yet);
    the log ended with two run_started for one attempt. Now the first holds the run's OS lock
    from before its setup, and the second is refused with one sentence, exit 2."""
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    env = _cli_env(tmp_path)
    hook = tmp_path / "hold-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_SETUP_HOOK)
    held_env = dict(env, PYTHONPATH=os.pathsep.join([str(hook), env["PYTHONPATH"]]),
                    SSKT_TEST_READY=str(tmp_path / "ready"), SSKT_TEST_RELEASE=str(tmp_path / "release"))
    first = _start_sskt("resume", str(folder.path), env=held_env)
    try:
        _wait_for(tmp_path / "ready", first)  # the first resume is inside its setup
        second = _sskt("resume", str(folder.path), env=env)
    finally:
        (tmp_path / "release").touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "is in use by another process" in lines[0], second.stderr
    kinds = [ev.event_kind(e) for e in folder.events()]
    assert kinds.count("run_started") == 2 and kinds.count("run_finished") == 1  # first attempt + one resume
    assert _epoch_ends(folder) == [0, 1, 2]
    assert folder.summary().status == "finished"


class FakeMsvcrt:
    """Windows byte-range locks as ``msvcrt.locking`` has them: per handle (two handles of one
    process conflict), from the file position, non-blocking attempts raise, unlocking a range
    this handle does not hold raises."""

    LK_NBLCK, LK_UNLCK = 2, 0

    def __init__(self):
        self.held: dict[tuple[int, int, int], int] = {}  # (device, inode, first byte) -> fd

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        stat = os.fstat(fd)
        key = (stat.st_dev, stat.st_ino, os.lseek(fd, 0, os.SEEK_CUR))
        if mode == self.LK_NBLCK:
            if key in self.held:
                raise OSError(36, "Resource deadlock avoided")
            self.held[key] = fd
        elif self.held.get(key) == fd:
            del self.held[key]
        else:
            raise OSError(13, "Permission denied")


def test_the_windows_lock_code_holds_a_run_against_a_second_writer(tmp_path, monkeypatch):
    """The msvcrt branch cannot run on this machine; the same functions run here with a fake
    msvcrt that keeps Windows' rules."""
    from sskt_engine import run_lock

    fake = FakeMsvcrt()
    try_lock, unlock = run_lock.windows_lock_functions(fake)
    monkeypatch.setattr(run_lock, "_try_lock", try_lock)
    monkeypatch.setattr(run_lock, "_unlock", unlock)
    first, second = run_lock.RunLock(tmp_path), run_lock.RunLock(tmp_path)
    first.acquire()
    os.lseek(first._fd, 5, os.SEEK_SET)  # something moved the file position: the lock is still on byte 0
    assert run_lock.is_held(tmp_path)
    with pytest.raises(run_lock.RunBusy):
        second.acquire(retry_s=0.1)
    first.release()
    assert not run_lock.is_held(tmp_path) and fake.held == {}
    with second:
        assert second.held and run_lock.is_held(tmp_path)
    assert fake.held == {}


def test_the_lock_not_the_pid_says_whether_a_run_is_running(tmp_path):
    """Before: a `running` summary whose pid belonged to a live process (a reused pid; here
    this very test process) read as running forever and could never be resumed. Now a run is
    running while its lock is held, by a real process, and interrupted once that process dies
    (kill -9: the OS releases the lock)."""
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    summary = folder.summary().updated(status="running", pid=os.getpid())  # a live, unrelated process
    folder.write_summary(summary)
    assert folder.status() == "interrupted"

    holder = _python(f'''
        import time
        from sskt_engine.run_lock import RunLock
        lock = RunLock({str(folder.path)!r})
        lock.acquire()
        open({str(tmp_path / "held")!r}, "w").close()
        time.sleep(600)  # holds the lock until killed
        ''', env=_cli_env(tmp_path))
    _wait_for(tmp_path / "held", holder)
    assert folder.status() == "running"
    assert [r.status for r in list_runs(tmp_path / "runs")] == ["running"]
    with pytest.raises(UserInputError, match="is in use by another process"):
        Trainer(folder.config(), run_folder=folder).run()
    holder.send_signal(signal.SIGKILL)
    holder.wait(60)
    holder.stdout.close()
    holder.stderr.close()
    assert folder.status() == "interrupted"
    assert Trainer.resume(folder.path).run().summary().status == "finished"


# ----------------------------------------------------------------------------- 5. a full disk

def test_a_full_disk_copying_best_pt_in_epoch_1_loses_no_epoch_record(tmp_path, monkeypatch):
    """Before: last.pt of epoch 1 was kept, but the EpochEnd line, eval files and summary of
    epoch 1 never written, and resume went on from epoch 2: the finished log lacked epoch 1."""
    copies = []

    def first_best_pt(dst: Path) -> bool:
        if dst.name == "best.pt":
            copies.append(dst)
            return len(copies) == 1
        return False

    _crash_replacing(monkeypatch, first_best_pt)
    folder = Trainer(tiny_config(), tmp_path).run()
    monkeypatch.undo()
    assert folder.summary().status == "failed" and "No space left on device" in folder.summary().message
    assert torch.load(folder.checkpoint_path("last"), weights_only=True)["epoch"] == 1

    seen: list[ev.Event] = []
    resumed = Trainer.resume(folder.path, on_event=seen.append).run()
    summary = resumed.summary()
    assert summary.status == "finished" and summary.epochs_completed == 3
    assert _epoch_ends(resumed) == [0, 1, 2]  # every completed epoch exactly once
    assert any(isinstance(e, ev.LogMessage) and "epoch 1 was checkpointed" in e.message for e in seen)
    best = torch.load(resumed.checkpoint_path("best"), weights_only=True)
    # val_split 0: no best epoch is chosen on the test split; best.pt follows the last epoch
    assert summary.best_epoch is None and best["epoch"] == 3
    assert resumed.eval_report("best").epoch == 3
    assert resumed.eval_report("last").epoch == 3
    assert _stray_temp_files(resumed.path) == []


@pytest.mark.parametrize("file_name", ["preset.yaml", "summary.json"])
def test_a_full_disk_at_run_creation_is_one_sentence_and_lists_no_run(tmp_path, monkeypatch, capsys,
                                                                         restore_signals, file_name):
    """Before: the ENOSPC escaped as a traceback, and with summary.json unwritten the folder
    was listed as `running` forever (no summary: no host, so no pid check)."""
    preset = tmp_path / "tiny.yaml"
    save_preset(tiny_config("train.epochs=1"), preset)
    monkeypatch.setenv("SSKT_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    _crash_replacing(monkeypatch, lambda dst: dst.name == file_name and dst.parent.parent == tmp_path / "runs")
    code = cli.main(["train", str(preset), "--runs-dir", str(tmp_path / "runs")])
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "No space left on device" in err[0], err
    assert list_runs(tmp_path / "runs") == []
    assert list((tmp_path / "runs").iterdir()) == []  # the half-made folder is gone


# ----------------------------------------------------------------------------- 6. stale temporaries

_KILLED_WRITER = '''
    import os, sys, time
    from pathlib import Path
    {setup}
    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"x" * 4096)
            handle.flush()
        open({ready!r}, "w").close()
        time.sleep(600)  # killed here, between writing the temporary and publishing it
    {call}
    '''


def _kill_a_writer(tmp_path: Path, setup: str, call: str) -> None:
    ready = tmp_path / "writing"
    ready.unlink(missing_ok=True)
    process = _python(_KILLED_WRITER.format(setup=setup, call=call, ready=str(ready)), env=_cli_env(tmp_path))
    _wait_for(ready, process)
    process.send_signal(signal.SIGKILL)
    process.wait(60)
    process.stdout.close()
    process.stderr.close()


def test_temporaries_left_by_kill_9_are_removed_on_resume_and_on_the_next_export(tmp_path):
    """Before: the `.tmp` of a checkpoint and the `.partial` of an export killed mid-write
    stayed forever (as big as a checkpoint each)."""
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    last = folder.checkpoint_path("last")
    _kill_a_writer(tmp_path, "from sskt_engine.atomic import atomic_write_with",
                   f"atomic_write_with(Path({str(last)!r}), write)")
    exports = tmp_path / "exports"
    exports.mkdir()
    target = exports / "model.pt"
    _kill_a_writer(tmp_path, "from sskt_engine.export import _stage_and_publish",
                   f"_stage_and_publish(Path({str(target)!r}), write, lambda tmp: (0.0, ''))")
    assert len(_stray_temp_files(folder.path)) == 1 and len(_stray_temp_files(exports)) == 1

    seen: list[ev.Event] = []
    assert Trainer.resume(folder.path, on_event=seen.append).run().summary().status == "finished"
    assert _stray_temp_files(folder.path) == []
    notes = [e.message for e in seen if isinstance(e, ev.LogMessage)]
    assert any("removed 1 temporary file(s)" in n and "checkpoints/.last.pt." in n for n in notes), notes
    assert any("removed 1 temporary file(s)" in e.message for e in folder.events() if isinstance(e, ev.LogMessage))

    result = export_run(folder.path, "pt", target)
    assert _stray_temp_files(exports) == [] and target.is_file()
    assert any("removed 1 unfinished export file(s)" in n for n in result.notes), result.notes


def test_the_next_export_leaves_the_temporary_of_a_live_export_alone(tmp_path):
    """The cleanup must not delete what another export is writing into the same folder now."""
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    exports = tmp_path / "exports"
    exports.mkdir()
    ready = tmp_path / "writing"
    live = _python(_KILLED_WRITER.format(
        setup="from sskt_engine.export import _stage_and_publish",
        call=f"_stage_and_publish(Path({str(exports / 'other.pt')!r}), write, lambda tmp: (0.0, ''))",
        ready=str(ready)), env=_cli_env(tmp_path))
    try:
        _wait_for(ready, live)
        result = export_run(folder.path, "pt", exports / "model.pt", checkpoint="last")
        assert not any("unfinished export" in n for n in result.notes)
        assert len(_stray_temp_files(exports)) == 1  # the live one
    finally:
        live.kill()
        live.wait(60)
        live.stdout.close()
        live.stderr.close()


# ----------------------------------------------------------------------------- 7. a run's own files

@pytest.mark.parametrize("own", ["checkpoints/last.pt", "checkpoints/best.pt", "summary.json", "metrics.jsonl",
                                 "preset.yaml", "eval/best.json"])
def test_an_export_over_a_runs_own_files_is_refused(tmp_path, own):
    """Before: `sskt export RUN --format pt -o RUN/checkpoints/last.pt` replaced the checkpoint
    with the export, and resume then failed on it."""
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    target = folder.path / own
    before = target.read_bytes()
    with pytest.raises(UserInputError, match=r"is one of run .*'s own files"):
        export_run(folder.path, "pt", target, checkpoint="last")
    assert target.read_bytes() == before
    alias = tmp_path / "alias"
    alias.symlink_to(folder.path)  # the same files under another name
    with pytest.raises(UserInputError, match="own files"):
        export_run(folder.path, "pt", alias / own, checkpoint="last")
    assert target.read_bytes() == before
    written = export_run(folder.path, "pt", folder.path / "model.pt", checkpoint="last")  # beside them: fine
    assert written.path.is_file()
    assert Trainer.resume(folder.path).run().summary().status == "finished"


def test_a_checkpoint_replaced_by_an_export_is_one_sentence_on_resume(tmp_path, capsys, restore_signals, monkeypatch):
    """The other half of item 7 (already true at 99207b8 through RunCheckpoint.read): a
    checkpoint without the keys of one (here an exported file copied over last.pt) is one
    sentence, exit 2, no traceback."""
    monkeypatch.setenv("SSKT_STUDIO_CONFIG_DIR", str(tmp_path / "config"))
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    export_run(folder.path, "pt", tmp_path / "model.pt", checkpoint="last")
    (tmp_path / "model.pt").replace(folder.checkpoint_path("last"))
    assert cli.main(["resume", str(folder.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no trained network" in err[0] and "cannot be resumed" in err[0], err


# ----------------------------------------------------------------------------- 8. a torn log line

def test_a_torn_utf8_last_line_of_the_log_is_skipped_by_resume_and_the_curves(tmp_path):
    """Before: `UnicodeDecodeError` from resume's trim and from every reader of the log (the
    GUI's curves): the last write was cut inside a two-byte character."""
    folder = _stopped_after_epoch_1(tmp_path / "runs")
    with open(folder.metrics_path, "ab") as handle:
        handle.write('{"event":"log","level":"info","message":"caf'.encode() + "é".encode()[:1])
    assert _epoch_ends(folder) == [0]  # readers skip the torn line

    from app.run_history import load_run_curves  # the GUI's curves; no Qt needed to read them
    assert load_run_curves(folder.path).series

    seen: list[ev.Event] = []
    assert Trainer.resume(folder.path, on_event=seen.append).run().summary().status == "finished"
    assert _epoch_ends(folder) == [0, 1, 2]
    assert any(isinstance(e, ev.LogMessage) and "dropped 1 damaged line(s) of metrics.jsonl" in e.message
               for e in seen)
    folder.metrics_path.read_bytes().decode("utf-8")  # the rewritten log is whole UTF-8 again


# ----------------------------------------------------------------------------- 3. zip bombs

def _deflated(path: Path, out: Path) -> Path:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return out


def test_a_zip_bomb_model_file_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    """Before: a ~66 KB `.pt` (64 MB of zeros, deflated) loaded into 64 MB without a check;
    the report's 262 KB file into 256 MB. Now it is refused from the archive's directory:
    torch.load is never called."""
    from sskt_engine.model_files import read_tensor_file

    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(16 * 1024 * 1024)}, plain)
    bomb = _deflated(plain, tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 200_000 < 64_000_000 < plain.stat().st_size
    assert torch.load(bomb, weights_only=True)["weight"].numel() == 16 * 1024 * 1024  # torch does inflate it

    folder = _stopped_after_epoch_1(tmp_path / "runs")
    padded = torch.load(folder.checkpoint_path("last"), weights_only=True)
    padded["padding"] = torch.zeros(16 * 1024 * 1024)  # a real checkpoint with a bomb inside
    torch.save(padded, tmp_path / "padded.pt")
    _deflated(tmp_path / "padded.pt", tmp_path / "last-bomb.pt").replace(folder.checkpoint_path("last"))
    real_load = torch.load

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was called on a zip bomb")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(SourceError, match=r"bomb.pt was refused: its archive entry .* would inflate from .* zip bomb"):
        read_tensor_file(bomb)
    with pytest.raises(CheckpointError, match="was refused: .*zip bomb"):
        RunCheckpoint.read(folder.checkpoint_path("last"), "the last checkpoint")
    monkeypatch.setattr(torch, "load", real_load)
    assert read_tensor_file(plain)[0]["weight"].shape == (16 * 1024 * 1024,)  # stored, as torch.save writes: fine
    buffer = io.BytesIO()
    torch.save({"w": torch.randn(1000)}, buffer)  # real weights deflate a little: far within the bound
    small = tmp_path / "small.pt"
    small.write_bytes(buffer.getvalue())
    assert read_tensor_file(_deflated(small, tmp_path / "small-deflated.pt"))[0]["w"].shape == (1000,)


def test_a_zip_bomb_inside_a_compiled_file_is_refused(tmp_path):
    """The same bound for TorchScript and torch.export archives, checked on the bytes read once."""
    from sskt_engine.model_files import read_compiled

    linear = torch.nn.Linear(4096, 4096)
    with torch.no_grad():
        linear.weight.zero_()  # 64 MB of zeros
    scripted = torch.jit.script(torch.nn.Sequential(linear))
    plain = tmp_path / "net.pt"
    torch.jit.save(scripted, str(plain))
    bomb = _deflated(plain, tmp_path / "net-bomb.pt")
    with pytest.raises(SourceError, match="zip bomb"):
        read_compiled(bomb)


def test_the_gui_curves_count_damaged_log_lines_instead_of_hiding_them(tmp_path):
    from app.run_history import load_run_curves
    from sskt_engine.metrics_file import EventScan

    folder = Trainer(tiny_config("train.epochs=2"), tmp_path).run()
    lines = folder.metrics_path.read_bytes().split(b"\n")
    whole = [i for i, line in enumerate(lines) if b'"event":"epoch_end"' in line]
    lines[whole[0]] = b"\xff\xfe not json"  # a crash left garbage where the first epoch's end was
    folder.metrics_path.write_bytes(b"\n".join(lines))
    scan = EventScan(folder.metrics_path)
    events = list(scan)
    assert scan.damaged == 1 and sum(isinstance(e, ev.EpochEnd) for e in events) == 1
    curves = load_run_curves(folder.path)
    assert curves.damaged_lines == 1
    assert any(len(x) == 1 for _, x, _ in curves.series.values())  # the epoch curves miss one point
