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
    methods = parse_methods(args.methods)
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


def cmd_compare(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    stop = threading.Event()
    install_stop_signals(stop)
    study_dir = run_study(spec, args.runs_dir, StudyProgress(), stop)
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
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated methods (default: {','.join(DEFAULT_METHODS)})")
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
    p.set_defaults(func=cmd_compare)


__all__ = ["register_commands", "spec_from_args", "parse_methods", "StudyProgress", "cmd_compare"]
