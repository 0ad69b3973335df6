"""Where a study's runs execute: one after another in this process (the default, and the GUI's),
several at once in child processes with a device each (``--parallel N``), or as cluster jobs
through submitit (``--launcher slurm``).

Every run of a study has a fixed folder, ``<study>/runs/<row>-s<seed>/``, holding its run folder.
That makes a run *idempotent*: ``train_or_resume`` keeps a finished run, resumes an unfinished
one from its last checkpoint, and trains the others from the start. A killed study run again,
a pre-empted cluster job resubmitted, and a parallel slot all call the same function, so they
cannot differ, and a resumed study equals an uninterrupted one wherever resume is exact
(deterministic CPU runs).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import ExperimentConfig, save_preset
from .errors import UserInputError
from .runs import FINISHED, RunFolder

PRESETS_DIR = "presets"  # beside runs/ in the study folder: each job's resolved preset, for child processes


@dataclass(frozen=True)
class StudyJob:
    """One run of a study: a row (method or variant) and a seed, with its resolved config."""

    label: str
    seed: int
    config: ExperimentConfig

    @property
    def key(self) -> str:
        """The job's folder name under ``runs/``: stable across restarts of the study."""
        return f"{re.sub(r'[^A-Za-z0-9._+-]+', '-', self.label).strip('-') or 'run'}-s{self.seed}"


@dataclass
class JobOutcome:
    folder: RunFolder | None  # None: no run folder was made (refused at set-up, or never started)
    refused: str = ""  # the sentence a refusal at set-up gave (the row is then "skipped")
    error: str = ""  # a set-up failure that is not the user's input (a bug): the row is "failed"


def existing_run(job_dir: Path) -> RunFolder | None:
    """The run folder a job made earlier (the newest, if a fresh start followed an empty one)."""
    if not job_dir.is_dir():
        return None
    folders = sorted((RunFolder(p) for p in job_dir.iterdir() if p.is_dir() and RunFolder(p).exists()),
                     key=lambda f: f.path.name)
    return folders[-1] if folders else None


def train_or_resume(config: ExperimentConfig, job_dir: Path, on_event: Callable[[Any], None] | None = None,
                    stop_event: threading.Event | None = None, trainer_class: Any = None) -> RunFolder | None:
    """Keep a finished run, resume an unfinished one, or train: the one way every launcher runs a job."""
    if trainer_class is None:
        from .trainer import Trainer as trainer_class  # noqa: N813
    job_dir.mkdir(parents=True, exist_ok=True)
    folder = existing_run(job_dir)
    if folder is not None and folder.summary().status == FINISHED:
        return folder
    # last.pt decides, not the summary: a job pre-empted between writing last.pt and logging that
    # epoch has a summary that still says 0 epochs, and resume writes the missing records
    if folder is not None and (folder.summary().epochs_completed > 0 or folder.checkpoint_path("last").exists()):
        return trainer_class.resume(folder.path, job_dir, on_event, stop_event).run()
    return trainer_class(config, job_dir, on_event, stop_event).run()  # nothing to resume: from the start


class JobRun:
    """``train_or_resume`` as an object with ``run()``, the shape the CLI's run loop drives."""

    def __init__(self, config: ExperimentConfig, job_dir: Path, on_event: Callable[[Any], None] | None = None,
                 stop_event: threading.Event | None = None):
        self.config, self.job_dir, self.on_event, self.stop_event = config, job_dir, on_event, stop_event

    def run(self) -> RunFolder | None:
        return train_or_resume(self.config, self.job_dir, self.on_event, self.stop_event)


# ----------------------------------------------------------------------------- in this process

class SerialRunner:
    """Each job in this process, one after another; the trainer's events reach ``emit`` live."""

    parallel = 1

    def __init__(self, trainer_class: Any = None):
        self.trainer_class = trainer_class

    def run(self, job: StudyJob, runs_dir: Path, emit: Callable[[Any], None],
            stop_event: threading.Event) -> JobOutcome:
        try:
            return JobOutcome(train_or_resume(job.config, runs_dir / job.key, emit, stop_event, self.trainer_class))
        except UserInputError as exc:
            return JobOutcome(None, refused=str(exc))
        except Exception as exc:  # noqa: BLE001  a bug in one method's set-up must not end the study
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            return JobOutcome(None, error=f"set-up failed: {type(exc).__name__}: {first}")


# ----------------------------------------------------------------------------- child processes

def slot_devices(parallel: int, device: str = "auto", cuda_count: int | None = None) -> list[str]:
    """The device of each of ``parallel`` slots: one GPU each while there are GPUs (round robin
    when there are fewer GPUs than slots), else the configured device (CPU: threads are split)."""
    if device not in ("auto", "cuda"):
        return [device] * parallel
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cuda_count == 0:
        return ["cpu" if device == "auto" else device] * parallel
    return [f"cuda:{i % cuda_count}" for i in range(parallel)]


def slot_threads(parallel: int, threads: int | None) -> int:
    """CPU threads per child: the cores shared out (or ``--threads`` if given), at least one."""
    return threads or max(1, (os.cpu_count() or 1) // parallel)


class ProcessRunner:
    """Up to ``parallel`` jobs at once, each in its own ``sskt study-job`` process pinned to a
    device (its slot's) and a thread count. A stop request reaches every child as SIGINT, which
    stops it after its current step with a usable checkpoint."""

    def __init__(self, parallel: int, device: str = "auto", threads: int | None = None,
                 cuda_count: int | None = None):
        if parallel < 1:
            raise UserInputError(f"--parallel must be at least 1, not {parallel}")
        self.parallel = parallel
        self.devices = slot_devices(parallel, device, cuda_count)
        self.threads = slot_threads(parallel, threads)
        self._free = list(range(parallel))
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen] = set()

    def run(self, job: StudyJob, runs_dir: Path, emit: Callable[[Any], None],
            stop_event: threading.Event) -> JobOutcome:
        from .child_process import ENGINE_CLI, child_command

        preset = runs_dir.parent / PRESETS_DIR / f"{job.key}.yaml"
        preset.parent.mkdir(parents=True, exist_ok=True)
        save_preset(job.config, preset)
        with self._lock:
            slot = self._free.pop(0)
        try:
            args = ["study-job", str(preset), str(runs_dir / job.key), "--device", self.devices[slot],
                    "--threads", str(self.threads)]
            log = runs_dir / job.key / "study-job.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as out:
                child = subprocess.Popen(child_command(ENGINE_CLI, args), stdout=out, stderr=subprocess.STDOUT)
                with self._lock:
                    self._children.add(child)
                try:
                    while child.poll() is None:
                        if stop_event.wait(0.5) and child.poll() is None:
                            child.send_signal(signal.SIGINT)
                            child.wait()
                finally:
                    with self._lock:
                        self._children.discard(child)
        finally:
            with self._lock:
                self._free.append(slot)
        folder = existing_run(runs_dir / job.key)
        if child.returncode == 2 and folder is None:  # bad input, told in one sentence
            return JobOutcome(None, refused=_last_error(log))
        if folder is None:
            return JobOutcome(None, error=_last_error(log) or f"the run's process ended with exit code "
                                                              f"{child.returncode} before making its folder")
        return JobOutcome(folder)


def _last_error(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: "):]
    return lines[-1][:300] if lines else ""


def run_jobs(runner: Any, jobs: Sequence[StudyJob], runs_dir: Path, emit: Callable[[Any], None],
             stop_event: threading.Event, started: Callable[[StudyJob], None],
             ended: Callable[[StudyJob, JobOutcome], None]) -> None:
    """Every job through ``runner``, ``runner.parallel`` at a time; ``started``/``ended`` are
    called for each (from worker threads when parallel, under one lock, so they may write the
    study's state)."""
    lock = threading.Lock()

    def one(job: StudyJob) -> None:
        if stop_event.is_set():
            return
        with lock:
            started(job)
        outcome = runner.run(job, runs_dir, emit if runner.parallel == 1 else _quiet, stop_event)
        with lock:
            ended(job, outcome)

    if runner.parallel == 1:
        for job in jobs:
            one(job)
        return
    with ThreadPoolExecutor(max_workers=runner.parallel) as pool:
        for future in [pool.submit(one, job) for job in jobs]:
            future.result()


def _quiet(event: Any) -> None:
    """Parallel runs train in child processes; their progress is in their own run folders."""
