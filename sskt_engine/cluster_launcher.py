"""``sskt compare --launcher slurm``: each run of a study as a SLURM job, through submitit (the
library research groups use to submit Python functions to SLURM; optional, ``pip install
submitit`` or the ``cluster`` extra).

The study folder must be on storage the cluster's nodes share. A job runs
``study_jobs.train_or_resume`` on its job folder, so a job that SLURM pre-empts or that reaches
its time limit is resubmitted by submitit (``Checkpointable``) and simply resumes from the run's
last checkpoint; the study waits for its jobs and reads their ordinary run folders.
``--launcher submitit-local`` runs the same jobs as processes on this machine (submitit's local
executor), to try a study out before sending it to a cluster.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import ExperimentConfig, load_preset, save_preset
from .errors import UserInputError
from .study_jobs import PRESETS_DIR, JobOutcome, StudyJob, existing_run, train_or_resume

try:
    import submitit
    from submitit.helpers import Checkpointable
except ImportError:  # the extra is not installed: one sentence when a launcher is asked for
    submitit = None
    Checkpointable = object

MAX_JOBS_AT_ONCE = 256  # jobs waited on at a time; SLURM queues the rest of what is submitted anyway


@dataclass(frozen=True)
class LauncherOptions:
    cluster: str  # "slurm", or "local" (submitit's local executor) / "debug" (in this process, for tests)
    timeout_min: int = 24 * 60
    partition: str = ""
    gpus_per_job: int = 0
    extra: dict[str, str] = field(default_factory=dict)  # more SLURM options (account, qos, ...)


def launcher_options(args: argparse.Namespace, config: ExperimentConfig) -> LauncherOptions:
    """The launcher's settings from the command line."""
    if submitit is None:
        raise UserInputError("--launcher needs submitit: pip install submitit (or the app's 'cluster' extra)")
    extra = {}
    for item in args.slurm or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--slurm takes KEY=VALUE, not {item!r}")
        extra[key.strip()] = value.strip()
    gpus = args.gpus_per_job
    if gpus is None:
        gpus = 1 if config.train.device in ("auto", "cuda") or config.train.device.startswith("cuda:") else 0
    if gpus < 0 or (args.time is not None and args.time < 1):
        raise UserInputError("--gpus-per-job must be 0 or more and --time at least 1 minute")
    return LauncherOptions(cluster="slurm" if args.launcher == "slurm" else "local",
                           timeout_min=args.time or 24 * 60, partition=args.partition or "", gpus_per_job=gpus,
                           extra=extra)


class StudyJobTask(Checkpointable):
    """What a cluster job runs. Resubmitted as it is after a pre-emption or a timeout
    (``Checkpointable.checkpoint``); since ``train_or_resume`` continues whatever the job folder
    holds, the resubmitted job resumes the run from its last checkpoint."""

    def __call__(self, preset: str, job_dir: str, threads: int | None = None) -> str:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from .plugins import load_plugins

        load_plugins()  # a fresh process on a node: plugin architectures must be registered
        folder = train_or_resume(load_preset(preset), Path(job_dir))
        return str(folder.path) if folder is not None else ""


class SubmititRunner:
    """Each study job submitted through submitit and waited for; run several at once."""

    parallel = MAX_JOBS_AT_ONCE

    def __init__(self, options: LauncherOptions, threads: int | None = None):
        self.options = options
        self.threads = threads
        self.submitted: list[Any] = []  # submitit jobs, for tests and for cancelling on stop
        self._lock = threading.Lock()

    def _executor(self, folder: Path) -> Any:
        o = self.options
        if o.cluster == "debug":
            executor = submitit.DebugExecutor(folder=folder)
        elif o.cluster == "local":
            executor = submitit.LocalExecutor(folder=folder)
            executor.update_parameters(timeout_min=o.timeout_min, gpus_per_node=o.gpus_per_job)
        else:
            executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
            params: dict[str, Any] = {"timeout_min": o.timeout_min, "gpus_per_node": o.gpus_per_job,
                                      "tasks_per_node": 1, "nodes": 1}
            if o.partition:
                params["slurm_partition"] = o.partition
            if o.extra:
                params["slurm_additional_parameters"] = dict(o.extra)
            executor.update_parameters(**params)
        return executor

    def run(self, job: StudyJob, runs_dir: Path, emit: Callable[[Any], None],
            stop_event: threading.Event) -> JobOutcome:
        preset = runs_dir.parent / PRESETS_DIR / f"{job.key}.yaml"
        preset.parent.mkdir(parents=True, exist_ok=True)
        save_preset(job.config, preset)
        job_dir = runs_dir / job.key
        job_dir.mkdir(parents=True, exist_ok=True)
        executor = self._executor(runs_dir.parent / "submitit" / job.key)
        submitted = executor.submit(StudyJobTask(), str(preset), str(job_dir), self.threads)
        with self._lock:
            self.submitted.append(submitted)
        error = ""
        try:
            while not submitted.done():
                if stop_event.wait(2.0):
                    submitted.cancel(check=False)
                    break
            if not stop_event.is_set():
                submitted.result()
        except Exception as exc:  # noqa: BLE001  a job's failure is told, and the study goes on
            error = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
        folder = existing_run(job_dir)
        if folder is None and "UserInputError: " in error:  # refused at set-up: the row is skipped
            return JobOutcome(None, refused=error.split("UserInputError: ", 1)[1])
        if folder is None:
            return JobOutcome(None, error=error or "the job ended before making its run folder")
        return JobOutcome(folder)
