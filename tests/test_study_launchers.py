"""Studies that outgrow one process: ``--parallel N`` gives the serial study's table, a study
killed with ``kill -9`` continues where it was when the same command runs again (and equals an
uninterrupted one), and runs go through submitit (its debug executor in this process, its local
executor in real processes, one of them pre-empted and resubmitted)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sskt_engine.cli import main
from sskt_engine.config import loads_preset
from sskt_engine.events import RunStarted
from sskt_engine.runs import RunFolder
from sskt_engine.study import StudySpec, load_study, run_study
from sskt_engine.study_jobs import slot_devices, slot_threads

TINY = """\
name: launch-test
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4, val_split: 0.1}
method: {name: supervised}
train: {epochs: 3, batch_size: 16, lr: 0.05, schedule: constant, seed: 5, log_every: 1, device: cpu}
"""


def _preset(tmp_path: Path) -> Path:
    path = tmp_path / "preset.yaml"
    path.write_text(TINY)
    return path


def _scores(study: Path) -> dict[tuple[str, int], tuple[float, float, int]]:
    state = load_study(study)
    return {(r["method"], r["seed"]): (r["best_val_acc"], r["final_val_acc"], r["epochs_completed"])
            for r in state["runs"]}


def _table(study: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((study / "table.csv").read_text())))
    for row in rows:
        row.pop("wall_time_mean_s", None)
        row.pop("wall_time_std_s", None)
    return rows


def _study_of(out: str) -> Path:
    return Path(out.strip().splitlines()[-1][len("study: "):])


def test_slots_take_one_gpu_each_or_share_the_cpu():
    assert slot_devices(3, "auto", cuda_count=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert slot_devices(2, "auto", cuda_count=0) == ["cpu", "cpu"]
    assert slot_devices(2, "cuda:1", cuda_count=4) == ["cuda:1", "cuda:1"]
    assert slot_threads(2, 3) == 3 and slot_threads(64, None) == 1


def test_parallel_runs_give_the_serial_studys_table(tmp_path, capsys):
    preset = _preset(tmp_path)
    common = [str(preset), "--methods", "supervised,dml", "--seeds", "2", "--threads", "1",
              "--set", "train.epochs=1"]
    assert main(["compare", *common, "--runs-dir", str(tmp_path / "serial")]) == 0
    serial = _study_of(capsys.readouterr().out)
    assert main(["compare", *common, "--runs-dir", str(tmp_path / "parallel"), "--parallel", "2"]) == 0
    parallel = _study_of(capsys.readouterr().out)
    assert _scores(parallel) == _scores(serial) and _table(parallel) == _table(serial)
    # each run trained in its own process, in the study's own folder for that row and seed
    state = load_study(parallel)
    assert sorted(Path(r["run_path"]).parent.name for r in state["runs"]) == [
        "dml-s5", "dml-s6", "supervised-s5", "supervised-s6"]
    assert all((Path(r["run_path"]).parent / "study-job.log").exists() for r in state["runs"])


def test_a_study_killed_in_the_middle_continues_and_equals_an_uninterrupted_one(tmp_path, capsys):
    preset = _preset(tmp_path)
    runs = tmp_path / "runs"
    args = ["compare", str(preset), "--methods", "supervised,dml", "--seeds", "1", "--threads", "1",
            "--runs-dir", str(runs)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-m", "sskt_engine.cli", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:  # kill -9 once the first run is done and the second has checkpointed an epoch
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            lasts = list((runs / "studies").glob("*/runs/dml-s5/*/checkpoints/last.pt"))
            if lasts:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the study never reached its second run")
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    killed = next((runs / "studies").iterdir())
    assert json.loads((killed / "study.json").read_text())["status"] == "running"  # it never got to say more

    assert main(args) == 0  # the same command again
    out = capsys.readouterr().out
    assert f"continuing study {killed.name}" in out and _study_of(out) == killed
    dml = RunFolder(load_study(killed)["runs"][1]["run_path"])
    started = [e for e in dml.events() if isinstance(e, RunStarted)]
    assert len(started) == 2 and started[1].start_epoch >= 1  # resumed from its checkpoint, not retrained

    assert main([*args[:-2], "--runs-dir", str(tmp_path / "fresh")]) == 0  # uninterrupted
    fresh = _study_of(capsys.readouterr().out)
    assert _scores(killed) == _scores(fresh) and _table(killed) == _table(fresh)
    assert load_study(killed)["status"] == "finished"


def test_a_study_of_other_settings_is_not_continued(tmp_path, capsys):
    preset = _preset(tmp_path)
    args = ["compare", str(preset), "--methods", "supervised", "--seeds", "1", "--threads", "1",
            "--set", "train.epochs=1", "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    first = _study_of(capsys.readouterr().out)
    assert main([*args[:-2], "--set", "train.lr=0.01", "--runs-dir", str(tmp_path / "runs"),
                 "--resume", str(first)]) == 2
    assert "was started with other settings" in capsys.readouterr().err
    assert main(args) == 0  # a finished study is not continued: a new one starts
    assert _study_of(capsys.readouterr().out) != first


submitit = pytest.importorskip("submitit", reason="the cluster launcher needs submitit (the test extra has it)")


def test_submitit_debug_executor_runs_the_study_in_this_process(tmp_path):
    from sskt_engine.cluster_launcher import LauncherOptions, SubmititRunner

    spec = StudySpec(config=loads_preset(TINY, overrides=["train.epochs=1"]), methods=("supervised", "dml"),
                     seeds=(5,))
    runner = SubmititRunner(LauncherOptions("debug"))
    study = run_study(spec, tmp_path / "runs", runner=runner)
    state = load_study(study)
    assert state["status"] == "finished" and [r["status"] for r in state["runs"]] == ["finished", "finished"]
    assert len(runner.submitted) == 2


def _job_processes(folder: Path) -> list[int]:
    """The pids of submitit task processes (``python -m submitit.core._submit FOLDER``) under ``folder``."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parts = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"submitit.core._submit" in part for part in parts) and any(str(folder).encode() in part
                                                                           for part in parts):
            pids.append(int(entry.name))
    return pids


def test_a_job_ended_between_last_pt_and_its_log_line_is_resumed_not_restarted(tmp_path, monkeypatch):
    """The window a pre-emption hit in CI: last.pt written, the epoch not yet in the summary. The
    next attempt must resume that folder (and write the missing records), not start a new run."""
    from sskt_engine.study_jobs import train_or_resume
    from sskt_engine.trainer import Trainer

    config = loads_preset(TINY, overrides=["train.epochs=2"])
    publish = Trainer._publish_records

    def preempted_after_last_pt(self, records):
        raise SystemExit(-1)  # what submitit's signal handler raises in the job

    monkeypatch.setattr(Trainer, "_publish_records", preempted_after_last_pt)
    with pytest.raises(SystemExit):
        train_or_resume(config, tmp_path / "job")
    (first,) = (tmp_path / "job").iterdir()
    assert (first / "checkpoints" / "last.pt").exists()
    assert RunFolder(first).summary().epochs_completed == 0
    monkeypatch.setattr(Trainer, "_publish_records", publish)
    folder = train_or_resume(config, tmp_path / "job")
    assert folder.path == first and [p.name for p in (tmp_path / "job").iterdir()] == [first.name]
    assert folder.summary().epochs_completed == 2
    started = [e for e in folder.events() if isinstance(e, RunStarted)]
    assert [e.start_epoch for e in started] == [0, 1]
    # the test-split scores of the epoch the dead process never summarised come from last.pt
    whole = train_or_resume(config, tmp_path / "uninterrupted").summary()
    resumed = folder.summary()
    assert whole.best_test_score is not None
    assert (resumed.best_test_score, resumed.final_test_score) == (whole.best_test_score, whole.final_test_score)
    assert (resumed.best_score, resumed.best_epoch) == (whole.best_score, whole.best_epoch)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the job's process through /proc")
def test_submitit_local_jobs_and_a_preempted_job_resubmitted_resumes(tmp_path):
    """A job sent the signal SLURM pre-empts with (USR2, what submitit listens for) is checkpointed
    and resubmitted by submitit, and the new job resumes the run from its last checkpoint."""
    from sskt_engine.cluster_launcher import LauncherOptions, SubmititRunner

    # Enough epochs (about 7 s on one idle core) that the signal, sent once the first checkpoint
    # exists, lands well before the run could finish on a fast machine.
    spec = StudySpec(config=loads_preset(TINY, overrides=["train.epochs=24", "data.labels_per_class=12"]),
                     methods=("supervised",), seeds=(5,))
    runner = SubmititRunner(LauncherOptions("local", timeout_min=30), threads=1)
    preempted = []

    def preempt_after_the_first_checkpoint() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not preempted:
            if list(tmp_path.glob("runs/studies/*/runs/supervised-s5/*/checkpoints/last.pt")):
                for pid in _job_processes(tmp_path):
                    os.kill(pid, signal.SIGUSR2)
                    preempted.append(pid)
            time.sleep(0.05)

    watcher = threading.Thread(target=preempt_after_the_first_checkpoint)
    watcher.start()
    study = run_study(spec, tmp_path / "runs", runner=runner)
    watcher.join()
    state = load_study(study)
    assert preempted and state["status"] == "finished", state["runs"]
    run = RunFolder(state["runs"][0]["run_path"])
    assert run.summary().epochs_completed == 24
    started = [e for e in run.events() if isinstance(e, RunStarted)]
    assert len(started) == 2, f"the job was not resumed: {len(started)} start(s)"
    assert started[1].start_epoch >= 1  # the resubmitted job resumed the same run
