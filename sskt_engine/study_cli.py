"""``sskt compare``: a study (every method x seed on the same data split) from the command line.

The study itself is ``study.run_study``; this module turns the arguments into a ``StudySpec``,
prints a line per run (and each run's own progress below it), and ends with the table and
``study: <folder>``. Exit codes follow ``cli``: 0 the study finished, 1 a run failed or it was
stopped, 2 bad input (one sentence on stderr, through ``cli.main``).
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from .cli import EXIT_FAILED, EXIT_OK, TerminalProgress, add_threads_argument, install_stop_signals
from .config import load_preset, parse_overrides
from .errors import UserInputError
from .study import (DEFAULT_METHODS, StudyFinished, StudyRunEnded, StudyRunStarted, StudySpec, load_study,
                    run_study, split_overrides)


def parse_methods(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def spec_from_args(args: argparse.Namespace) -> StudySpec:
    if getattr(args, "ablate_sources", False) or getattr(args, "grid", None):
        return _variant_spec(args)
    methods = parse_methods(args.methods or ",".join(DEFAULT_METHODS))
    if args.seeds < 1:
        raise UserInputError(f"--seeds must be at least 1, not {args.seeds}")
    shared, per_method = split_overrides(args.set or [], methods)
    if args.device:
        shared.append(f"train.device={args.device}")
    parse_overrides(shared)  # a malformed item is named before the preset is read
    config = load_preset(args.preset, shared)
    seeds = tuple(config.train.seed + i for i in range(args.seeds))
    return StudySpec(config=config, methods=methods, seeds=seeds, method_overrides=per_method,
                     teacher=args.teacher or "", teacher_arch=args.teacher_arch or "", name=args.name or "",
                     preset_path=str(Path(args.preset).resolve()))


def _variant_spec(args: argparse.Namespace) -> StudySpec:
    """``--ablate-sources`` or ``--grid``: rows that are variants of a method (``study_variants``)."""
    from .variant_specs import variant_study_spec

    shared = list(args.set or [])
    if any(":" in item.partition("=")[0] for item in shared):
        raise UserInputError("per-method --set METHOD:KEY=VALUE does not combine with --ablate-sources or --grid; "
                             "set the key for every row instead")
    if args.device:
        shared.append(f"train.device={args.device}")
    parse_overrides(shared)
    config = load_preset(args.preset, shared)
    spec, notes = variant_study_spec(config, ablate=args.ablate_sources, grid_items=args.grid or (),
                                     methods=parse_methods(args.methods) if args.methods else (), seeds=args.seeds,
                                     name=args.name or "", preset_path=str(Path(args.preset).resolve()))
    for note in notes:
        print(note, flush=True)
    return spec


class StudyProgress:
    """Prints a line per run of the study, and the run's own progress below it."""

    def __init__(self, stream=None):
        self.run_progress = TerminalProgress(stream)
        self.stream = self.run_progress.stream

    def __call__(self, event: Any) -> None:
        if isinstance(event, StudyRunStarted):
            self.run_progress.line(f"[{event.index}/{event.total}] {event.method}, seed {event.seed}")
        elif isinstance(event, StudyRunEnded):
            if event.status == "skipped":
                self.run_progress.line(f"[{event.index}/{event.total}] {event.method} skipped: {event.message}")
            elif event.status == "not run":
                self.run_progress.line(f"[{event.index}/{event.total}] {event.method} not run: {event.message}")
        elif isinstance(event, StudyFinished):
            self.run_progress.line(f"study {event.status}")
        else:
            self.run_progress(event)


def _runner(args: argparse.Namespace, spec: StudySpec) -> Any:
    """Where the runs execute (``study_jobs``): here one by one, here N at a time, or on a cluster."""
    from .study_jobs import ProcessRunner, SerialRunner

    launcher = args.launcher or "here"
    if launcher in ("slurm", "submitit-local"):
        from .cluster_launcher import SubmititRunner, launcher_options

        return SubmititRunner(launcher_options(args, spec.config), threads=getattr(args, "threads", None))
    if args.parallel > 1:
        return ProcessRunner(args.parallel, spec.config.train.device, getattr(args, "threads", None))
    if args.parallel < 1:
        raise UserInputError(f"--parallel must be at least 1, not {args.parallel}")
    return SerialRunner()


def cmd_compare(args: argparse.Namespace) -> int:
    from .study import find_resumable

    spec = spec_from_args(args)
    runner = _runner(args, spec)
    resume = args.resume
    if resume is None and not args.new:
        resume = find_resumable(spec, args.runs_dir)
        if resume is not None:
            print(f"continuing study {resume.name}, which did not finish: finished runs are kept, unfinished ones "
                  "resumed from their checkpoints (--new starts a fresh study)", flush=True)
    stop = threading.Event()
    install_stop_signals(stop)
    study_dir = run_study(spec, args.runs_dir, StudyProgress(), stop, runner=runner, resume=resume)
    state = load_study(study_dir)
    print((study_dir / "table.md").read_text(encoding="utf-8"), flush=True)
    print(f"study: {study_dir}", flush=True)
    return EXIT_OK if state.get("status") == "finished" else EXIT_FAILED


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="run several methods x seeds on the same data split and tabulate mean ± std",
        description="Train every method with every seed on the same labelled subset and write a study folder "
                    "with table.md, table.csv and table.tex (mean ± sample std of best and final validation "
                    "accuracy, mean wall time). The last line printed is 'study: <folder>'.")
    p.add_argument("preset", help="preset file: data, target, sources and recipe shared by every method")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default: {','.join(DEFAULT_METHODS)}; with --grid: supervised and "
                        "the preset's method)")
    p.add_argument("--seeds", type=int, default=3, help="runs per method, seeds train.seed, train.seed+1, ...")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a preset key for every method, or for one with METHOD:KEY=VALUE "
                        "(e.g. kd:method.distill_weight=0.5)")
    p.add_argument("--runs-dir", help="runs folder; the study goes to <runs-dir>/studies/")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    add_threads_argument(p)
    p.add_argument("--name", help="study name (default: the preset's name)")
    p.add_argument("--teacher", help="KD's teacher: a run folder or model file trained on the target's classes "
                                     "(default: the preset's source number method.teacher)")
    p.add_argument("--teacher-arch", help="train KD's teacher for each seed: this architecture, supervised on "
                                          "the same labelled subset and recipe (reported as its own row)")
    p.add_argument("--ablate-sources", action="store_true",
                   help="rows: supervised, the preset's method with each source alone, with all but one (3+ sources) "
                        "and with all; a gains table shows each source's contribution over the seeds")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                   help="train every combination of these values (repeat for more keys), e.g. --grid "
                        "method.alpha=0.1,0.5,1 --grid method.temperature=1,2,3; the best setting is chosen on a "
                        "validation split held out of the training images (data.val_split, 0.1 unless set), never "
                        "on the test split")
    p.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="run up to N runs at once, each in its own process: one GPU each while there are GPUs, "
                        "else the CPU cores shared out (or --threads each)")
    p.add_argument("--launcher", choices=("here", "slurm", "submitit-local"),
                   help="where runs execute: here (default), or each as a SLURM job through submitit "
                        "(submitit-local: the same on this machine, for trying it out)")
    p.add_argument("--partition", help="SLURM partition (--launcher slurm)")
    p.add_argument("--time", type=int, metavar="MINUTES", help="SLURM time limit per job; a job that reaches it "
                   "is resubmitted and resumes from its last checkpoint")
    p.add_argument("--gpus-per-job", type=int, help="GPUs per SLURM job (default 1 when the preset's device is "
                   "auto or cuda)")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                   help="another SLURM option for every job, e.g. --slurm account=myproject --slurm qos=normal")
    p.add_argument("--resume", type=Path, metavar="STUDY",
                   help="continue this study folder: finished runs are kept, unfinished ones resumed")
    p.add_argument("--new", action="store_true",
                   help="start a fresh study even if one of the same settings did not finish (by default the same "
                        "command continues it)")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("study-job", help=argparse.SUPPRESS)  # one run of a study, in a child process
    p.add_argument("preset")
    p.add_argument("job_dir")
    p.add_argument("--device")
    add_threads_argument(p)
    p.set_defaults(func=cmd_study_job)


def cmd_study_job(args: argparse.Namespace) -> int:
    """Train or resume one run of a study in its job folder (``study_jobs.train_or_resume``):
    what ``--parallel`` children and cluster jobs run."""
    from .cli import _run_trainer
    from .study_jobs import JobRun

    overrides = [f"train.device={args.device}"] if args.device else []
    config = load_preset(args.preset, overrides)
    return _run_trainer(lambda stop, show: JobRun(config, Path(args.job_dir), show, stop))


__all__ = ["register_commands", "spec_from_args", "parse_methods", "StudyProgress", "cmd_compare"]
