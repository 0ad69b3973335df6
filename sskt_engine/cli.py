"""``sskt``: the command line. Same presets and run folders as the GUI.

Exit codes: 0 success, 1 training failed (or was stopped), 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from . import events as ev
from .errors import StoppedBeforeStart, UserInputError
from .formatting import duration, percent, seconds
from .metric_info import ACCURACY

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


# ----------------------------------------------------------------------------- progress display

def target_part(losses: dict[str, float]) -> str:
    """`` (target 0.0312)`` when the total holds more than the target's own loss (SSKT's auxiliary
    terms, a KD term): a total of 51.7 at 99 % training accuracy is mostly the auxiliary tasks,
    and only the target loss says how the target task is going. Empty when they are equal."""
    target, total = losses.get("target"), losses.get("loss")
    if target is None or total is None or abs(target - total) <= 1e-9 * max(1.0, abs(total)):
        return ""
    return f" (target {target:.4f})"


class TerminalProgress:
    """Prints events: an updating bar on a terminal, a line per event otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.epochs = 0
        self.steps = 0
        self._bar_open = False
        # what the run's task calls its numbers (RunStarted says; accuracy until it has)
        self.metric = self.train_metric = ACCURACY
        self.selects_best = True  # RunStarted.selection: "none" means no best epoch to name

    def line(self, text: str) -> None:
        """One finished line (ends an open progress bar first)."""
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.epochs, self.steps = event.epochs, event.steps_per_epoch
            self.metric, self.train_metric = event.headline, event.train_headline
            self.selects_best = event.selects_best
            srcs = f", sources: {', '.join(event.source_names)}" if event.source_names else ""
            resumed = f", resuming at epoch {event.start_epoch + 1}" if event.start_epoch else ""
            self.line(f"{event.name}: {event.method} on {event.device}, {event.train_size} training / "
                      f"{event.val_size} validation images, {event.num_classes} classes{srcs}{resumed}")
        elif isinstance(event, ev.Progress):
            width = 24
            done = int(width * event.step / max(self.steps, 1))
            bar = "#" * done + "-" * (width - done)
            text = (f"epoch {event.epoch + 1}/{self.epochs} step {event.step}/{self.steps} [{bar}] "
                    f"loss {event.losses.get('loss', float('nan')):.4f}{target_part(event.losses)} "
                    f"{self.train_metric.short} "
                    f"{self.train_metric.format(event.train_acc, 1):>6} "
                    f"{event.samples_per_s:7.0f} img/s ETA {duration(event.eta_s):>7}")
            if self.tty:
                self.stream.write("\r" + text)
                self.stream.flush()
                self._bar_open = True
            else:
                self.line(text)
        elif isinstance(event, ev.EpochEnd):
            best = (f" (best {self.metric.format(event.best_val_acc)}){' *' if event.is_best else ''}"
                    if self.selects_best else "")
            top5 = f" top5 {percent(event.val['top5'], 1)}" if "top5" in event.val else ""
            train, val = self.train_metric, self.metric
            self.line(f"epoch {event.epoch + 1}/{self.epochs}: train loss {event.train.get('loss', 0):.4f}"
                      f"{target_part(event.train)} {train.short} {train.format(event.train.get(train.key, 0), 1)} "
                      f"| val loss {event.val['loss']:.4f} {val.short} {val.format(event.val.get(val.key))}{top5}"
                      f"{best} [{seconds(event.epoch_time_s)}]")
        elif isinstance(event, ev.LogMessage):
            self.line(f"{event.level}: {event.message}")
        elif isinstance(event, ev.RunFinished) and event.epochs_completed == 0:
            self.line(f"{event.status} before the first epoch ended: no epoch completed, so there is no validation "
                      f"score yet; {duration(event.wall_time_s)} wall time")
        elif isinstance(event, ev.RunFinished):
            best = f"best val {self.metric.short} {self.metric.format(event.best_val_acc)}, " if self.selects_best else ""
            final = "final" if self.selects_best else f"final val {self.metric.short}"
            self.line(f"{event.status}: {event.epochs_completed} epoch(s), {best}{final} "
                      f"{self.metric.format(event.final_val_acc)}, {duration(event.wall_time_s)} wall time")
        elif isinstance(event, ev.RunFailed):
            self.line(f"failed: {event.message}")


# ----------------------------------------------------------------------------- commands

def install_stop_signals(stop: threading.Event) -> None:
    """Ctrl+C and SIGTERM stop the run after the current step; the checkpoint stays usable."""

    def handler(signum, frame):
        if stop.is_set():  # a second Ctrl+C: give up at once
            raise KeyboardInterrupt
        sys.stderr.write("\nstopping after this step (Ctrl+C again to abort)...\n")
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _run_trainer(make_trainer: Callable[[threading.Event, ev.EventHandler], object]) -> int:
    from .runs import FINISHED

    stop = threading.Event()
    install_stop_signals(stop)
    trainer = make_trainer(stop, TerminalProgress())
    try:
        folder = trainer.run()
    except StoppedBeforeStart as stopped:
        print(str(stopped), file=sys.stderr, flush=True)
        return EXIT_FAILED
    if folder is None:  # a non-zero rank of a distributed run: rank 0 reports
        return EXIT_OK
    status = folder.summary().status
    print(f"run: {folder.path}", flush=True)
    return EXIT_OK if status == FINISHED else EXIT_FAILED


def _torchrun(nproc: int, argv: list[str]) -> int:
    """Re-launch this command under torchrun with ``nproc`` processes on this machine.
    Ctrl+C / SIGTERM reach torchrun, which passes them to every rank (each stops cleanly)."""
    import subprocess

    from .child_process import ENGINE_CLI, child_command

    child = subprocess.Popen(child_command(ENGINE_CLI, argv, nproc=nproc))  # in the bundle too

    def forward(signum, frame):
        child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return child.wait()


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--nproc":
            skip = True
            continue
        if item.startswith("--nproc="):
            continue
        out.append(item)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_preset
    from .trainer import Trainer

    if args.nproc > 1:
        config = load_preset(args.preset, list(args.set or []))  # bad input: one sentence now, not N times
        if config.train.batch_size % args.nproc:
            raise UserInputError(f"train.batch_size ({config.train.batch_size}) must divide evenly over "
                                 f"{args.nproc} processes")
        return _torchrun(args.nproc, _without_nproc(list(args.argv)))
    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.name:
        overrides.append(f"name={args.name}")
    config = load_preset(args.preset, overrides)
    return _run_trainer(lambda stop, show: Trainer(config, args.runs_dir, show, stop))


def cmd_resume(args: argparse.Namespace) -> int:
    from .trainer import Trainer

    return _run_trainer(lambda stop, show: Trainer.resume(args.run_dir, args.runs_dir, show, stop))


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import default_runs_root, list_runs

    root = Path(args.runs_dir) if args.runs_dir else default_runs_root()
    runs = list_runs(root)
    if not runs:
        print(f"no runs in {root}")
        return EXIT_OK
    labelled = any(r.labels.name or r.labels.tags for r in runs)  # the column only when a run has a name or tags
    print(f"{'run':<44} {'status':<11} {'method':<11} {'epochs':>9} {'best':>7} {'final':>7}"
          + ("  name #tags (sskt label)" if labelled else ""))
    for r in runs:
        best = r.metric.format(r.best_score, sign=False, missing="-")  # each run's own headline metric
        final = r.metric.format(r.final_score, sign=False, missing="-")
        labels = (f"  {r.labels.name}" if r.labels.name else "") + "".join(f" #{t}" for t in r.labels.tags)
        print(f"{r.path.name:<44} {r.status:<11} {r.method:<11} {r.epochs_completed:>4}/{r.epochs:<4} "
              f"{best:>7} {final:>7}{labels}")
    for r in runs:
        if r.labels_warning:
            print(f"warning: {r.labels_warning}", file=sys.stderr)
    absent = next((r.best_absent for r in runs if r.best_absent and r.best_score is None), "")
    if absent:
        print(f"best '-': {absent}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser

def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for PyTorch in this process (default: PyTorch's own choice, one per core); "
                             "on a busy machine 1 or 2 is often much faster than the default")


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads N`` before any tensor work. With several processes (``--nproc``) each child is
    started with the same arguments, so each applies it to itself."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    if threads < 1:
        raise UserInputError(f"--threads must be at least 1, not {threads}")
    import torch

    torch.set_num_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sskt", description="SSKT Studio from the command line: train, resume "
                                     "and list knowledge-transfer experiments.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train from a YAML preset")
    p.add_argument("preset", help="preset file (see resources/presets/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset key, e.g. train.epochs=5")
    p.add_argument("--runs-dir", help="runs folder (default: $SSKT_RUNS_DIR or the user data folder)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--name", help="experiment name (used in the run folder's name)")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel processes on this machine (via torchrun; "
                   "one per GPU, or CPU processes with gloo)")
    add_threads_argument(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="continue a stopped or failed run from its last checkpoint")
    p.add_argument("run_dir", help="run folder, or its name inside the runs folder")
    p.add_argument("--runs-dir")
    add_threads_argument(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("runs", help="list past runs")
    p.add_argument("--runs-dir")
    p.set_defaults(func=cmd_runs)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register_commands(sub)
    return parser


# Modules that add subcommands (compare, export, predict, ...) through a
# ``register_commands(subparsers)`` function, so this file does not grow with each.
COMMAND_MODULES: tuple[str, ...] = ("sskt_engine.export_cli", "sskt_engine.study_cli", "sskt_engine.video_cli",
                                    "sskt_engine.source_cli", "sskt_engine.check_cli", "sskt_engine.label_cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    from .plugins import load_plugins

    for warning in load_plugins():  # before any preset: plugin architectures must be known to validation
        print(f"warning: {warning}", file=sys.stderr)
    try:
        apply_threads(args)
        return args.func(args)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
