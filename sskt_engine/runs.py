"""The run folder: everything a run produces, in one place the GUI and CLI both read.

    <runs root>/<YYYYmmdd-HHMMSS>-<name>/
        preset.yaml        the experiment as run (after --set overrides)
        metrics.jsonl      one event per line (events.to_json)
        summary.json       status, epochs, best/final headline metric, device, versions (run_summary)
        eval/best.json     per-class numbers and confusion matrix at the best epoch (eval_report)
        eval/last.json     the same for the last evaluated epoch
        checkpoints/       last.pt and best.pt
        labels.json        the user's display name, tags and note (run_labels; never written by the trainer)
        .sskt.lock         the OS lock of the one process writing the run (run_lock)
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import appdirs

from . import __version__
from .atomic import atomic_write_text
from .config import ExperimentConfig, dumps_preset, load_preset
from .errors import UserInputError
from .eval_report import EvalReport
from .events import Event, to_json
from .metric_info import ACCURACY, MetricInfo
from .metrics_file import iter_events
from .run_labels import LABELS_NAME, RunLabels, load_labels, write_labels
from .run_lock import LOCK_NAME, is_held
from .run_summary import RunSummary

RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"
INTERRUPTED = "interrupted"  # shown for a "running" run whose lock nobody holds (its process is gone)
# The files a run writes itself; an export must never replace one (``RunFolder.owns``).
RUN_FILES = ("preset.yaml", "metrics.jsonl", "summary.json", LABELS_NAME, LOCK_NAME)
RUN_FILE_FOLDERS = ("checkpoints", "eval")


def default_runs_root() -> Path:
    env = os.environ.get("SSKT_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(appdirs.user_data_dir("sskt-studio", "SSKT")) / "runs"


def _slug(name: str) -> str:
    slug = re.sub(r"[^\w.+-]+", "-", name.strip(), flags=re.UNICODE).strip("-")
    return slug[:60] or "run"


def library_versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    return {"sskt_studio": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


@dataclass(frozen=True)
class RunInfo:
    path: Path
    name: str
    status: str
    method: str
    epochs_completed: int
    epochs: int
    best_score: float | None  # the run's headline metric (``metric``) at its best epoch
    final_score: float | None
    started: str
    message: str
    metric: MetricInfo = ACCURACY
    best_absent: str = ""  # why best_score is empty although epochs completed (no held-out validation split)
    labels: RunLabels = RunLabels()  # the user's name, tags and note (labels.json)
    labels_warning: str = ""  # why labels.json (or part of it) was ignored

    @property
    def display_name(self) -> str:
        """The name the user gave the run, else the run's own name."""
        return self.labels.name or self.name


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- creation ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, config: ExperimentConfig) -> "RunFolder":
        """A new, unique folder. ``mkdir`` is atomic, so two runs started at the same second
        (GUI and CLI, or two CLIs) get different folders and never share files."""
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # root, or a folder above it, is a file
            raise UserInputError(f"runs folder {root} cannot be created: it or a folder above it is a file") from None
        except PermissionError:
            raise UserInputError(f"runs folder {root} cannot be created (permission denied)") from None
        except OSError as exc:
            raise UserInputError(f"runs folder {root} cannot be created ({exc.strerror or exc})") from None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(config.name)}"
        for attempt in range(1000):
            path = root / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
            except PermissionError:
                raise UserInputError(f"runs folder {root} is not writable (permission denied)") from None
            except OSError as exc:  # a read-only file system, a full disk
                raise UserInputError(f"cannot create a run folder in {root} ({exc.strerror or exc})") from None
        else:
            raise UserInputError(f"could not create a unique run folder in {root}")
        run = cls(path)
        try:
            (path / "checkpoints").mkdir()
            (path / "eval").mkdir()
            atomic_write_text(path / "preset.yaml", dumps_preset(config))
        except OSError as exc:  # a full disk: no half-made folder stays behind to be listed
            shutil.rmtree(path, ignore_errors=True)
            raise UserInputError(f"cannot create a run folder in {root} ({exc.strerror or exc})") from None
        return run

    # -- paths ------------------------------------------------------------------------------
    @property
    def preset_path(self) -> Path:
        return self.path / "preset.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    def checkpoint_path(self, which: str = "last") -> Path:
        return self.path / "checkpoints" / f"{which}.pt"

    def eval_path(self, which: str = "best") -> Path:
        return self.path / "eval" / f"{which}.json"

    @property
    def labels_path(self) -> Path:
        return self.path / LABELS_NAME

    # -- reading ----------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.preset_path.is_file()

    def config(self) -> ExperimentConfig:
        return load_preset(self.preset_path)

    def summary(self) -> RunSummary:
        """The run's summary.json; the default summary (nothing known) if missing or damaged."""
        return RunSummary.read(self.summary_path)

    def events(self) -> Iterator[Event]:
        """Every event recorded so far; a half-written last line (a run still going) and a line
        a crash damaged (not UTF-8 or not JSON) are skipped (``metrics_file``)."""
        return iter_events(self.metrics_path)

    def labels(self) -> RunLabels:
        """The user's labels (labels.json); none when missing or damaged (``run_labels``)."""
        return load_labels(self.path)[0]

    def eval_report(self, which: str = "best") -> EvalReport | None:
        """eval/best.json or eval/last.json; None before the first evaluation (or if damaged)."""
        return EvalReport.read(self.eval_path(which))

    def status(self, summary: RunSummary | None = None) -> str:
        """The summary's status, except that a "running" run whose lock (``run_lock``) nobody
        holds is INTERRUPTED: its process died without a word. A summary written on another
        machine (``host``) is taken at its word; an empty host (no summary yet) is this one."""
        summary = summary if summary is not None else self.summary()
        status = summary.status
        if status == RUNNING and summary.host in ("", socket.gethostname()) and not self.is_locked():
            return INTERRUPTED
        return status

    def is_locked(self) -> bool:
        """Whether a process is writing this run now (training, resuming, exporting into it)."""
        return is_held(self.path)

    def owns(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is (or would be) one of the files the run writes itself: its preset,
        log, summary, lock, or anything in checkpoints/ or eval/. Links are followed."""
        target = Path(os.path.realpath(path))
        here = Path(os.path.realpath(self.path))
        if target.parent == here:
            return target.name in RUN_FILES or target.name in RUN_FILE_FOLDERS
        return any(target.is_relative_to(here / sub) for sub in RUN_FILE_FOLDERS)

    def info(self) -> RunInfo:
        summary = self.summary()  # read once: status and numbers from the same version of the file
        labels, labels_warning = load_labels(self.path)
        return RunInfo(
            path=self.path, name=summary.name or self.path.name, status=self.status(summary),
            method=summary.method, epochs_completed=summary.epochs_completed, epochs=summary.epochs,
            best_score=summary.best_score, final_score=summary.final_score, started=summary.started,
            message=summary.message, metric=summary.metric, best_absent=summary.best_score_absent,
            labels=labels, labels_warning=labels_warning,
        )

    # -- writing ----------------------------------------------------------------------------
    def write_summary(self, summary: RunSummary) -> None:
        summary.write(self.summary_path)

    def write_eval(self, which: str, report: EvalReport) -> None:
        report.write(self.eval_path(which))

    def write_labels(self, labels: RunLabels) -> None:
        """The user's labels; safe while the run trains (the trainer never writes this file)."""
        write_labels(self.path, labels)

    def open_metrics(self):
        """Append mode with line buffering: each event reaches the file as one whole line."""
        return open(self.metrics_path, "a", encoding="utf-8", buffering=1)


class MetricsLog:
    """Appends events to metrics.jsonl; the trainer's on_event chain starts here."""

    def __init__(self, run: RunFolder):
        self._handle = run.open_metrics()

    def __call__(self, event: Event) -> None:
        self._handle.write(to_json(event) + "\n")

    def close(self) -> None:
        self._handle.close()


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run folder under ``root``, newest first."""
    root = Path(root) if root is not None else default_runs_root()
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        folder = RunFolder(path)
        if path.is_dir() and folder.exists():
            runs.append(folder.info())
    runs.sort(key=lambda r: r.path.name, reverse=True)
    return runs


def find_run(path_or_name: str, root: str | os.PathLike | None = None) -> RunFolder:
    """A run by folder path, or by folder name inside the runs root."""
    candidate = Path(path_or_name).expanduser()
    if not candidate.exists():
        candidate = (Path(root) if root else default_runs_root()) / path_or_name
    folder = RunFolder(candidate)
    if candidate.exists() and not candidate.is_dir():
        raise UserInputError(f"{candidate} is a file, not a run folder")
    if not candidate.is_dir():
        raise UserInputError(f"run folder {path_or_name} does not exist")
    if not folder.exists():
        raise UserInputError(f"{candidate} is not a run folder (it has no preset.yaml)")
    return folder


def ensure_folder(folder: Path) -> None:
    """Make ``folder`` (and its parents) or say in one sentence why it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserInputError(f"{folder} is a file, not a folder") from None
    except PermissionError:
        raise UserInputError(f"{folder} cannot be created (permission denied)") from None


def now_iso() -> str:
    return datetime.now().isoformat(timespec="seconds")
