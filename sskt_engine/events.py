"""What crosses threads and files: frozen dataclasses of plain floats, ints and strings.

The trainer emits these; the CLI prints them, the GUI plots them, and every one
is appended to the run's ``metrics.jsonl`` (``to_json``/``from_json`` round-trip),
so a run started anywhere can be replayed anywhere. Never a tensor in here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from .metric_info import ACCURACY, MetricInfo


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    name: str
    method: str
    device: str
    epochs: int
    start_epoch: int  # 0 for a fresh run; the epoch a resumed run continues from
    steps_per_epoch: int
    num_classes: int
    class_names: tuple[str, ...]
    networks: tuple[str, ...]  # evaluated networks, e.g. ("target",) or ("peer1", "peer2")
    source_names: tuple[str, ...]
    train_size: int
    val_size: int
    time: float
    # The run's task (sskt_engine.tasks) and how its numbers are named (MetricInfo as JSON):
    # ``metric`` is the validation headline (EpochEnd.val[key], best_val_acc, final_val_acc),
    # ``train_metric`` what Progress.train_acc and EpochEnd.train[key] hold. Logs written
    # before these fields were single-label runs: accuracy.
    task: str = "single_label"
    metric: dict[str, Any] = field(default_factory=ACCURACY.to_json)
    train_metric: dict[str, Any] = field(default_factory=ACCURACY.to_json)
    # "validation": the best epoch is chosen on a split held out of training. "none": no such
    # split, so the validation numbers are the test split's; no best epoch is chosen and
    # best_val_acc / is_best only follow the last epoch: say "final", never "best".
    selection: str = "validation"

    @property
    def selects_best(self) -> bool:
        return self.selection == "validation"

    @property
    def headline(self) -> MetricInfo:
        return MetricInfo.from_json(self.metric)

    @property
    def train_headline(self) -> MetricInfo:
        return MetricInfo.from_json(self.train_metric)


@dataclass(frozen=True)
class Progress:
    """Every ``train.log_every`` steps: running means since the previous Progress."""

    epoch: int  # 0-based
    step: int  # step within the epoch, 1-based
    global_step: int
    total_steps: int
    losses: dict[str, float]  # "loss" (total), "target", "aux/<source>", ...
    train_acc: float  # the task's training-window metric (RunStarted.train_metric; accuracy), same window
    lr: float
    samples_per_s: float
    eta_s: float
    time: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 0-based, the epoch just completed
    train: dict[str, float]  # epoch means: losses and the training metric (key of RunStarted.train_metric)
    # "loss", the task's metrics ("acc", "top5" where >= 5 classes), "<network>/<key>" for several networks
    val: dict[str, float]
    lr: float
    best_val_acc: float  # best value so far of the headline metric (RunStarted.metric; accuracy)
    is_best: bool
    epoch_time_s: float
    time: float


@dataclass(frozen=True)
class LogMessage:
    level: str  # "info" | "warning"
    message: str
    time: float


@dataclass(frozen=True)
class RunFinished:
    status: str  # "finished" | "stopped"
    epochs_completed: int
    best_val_acc: float  # the headline metric (RunStarted.metric), -1 if no epoch ended
    final_val_acc: float
    wall_time_s: float
    run_dir: str
    time: float


@dataclass(frozen=True)
class RunFailed:
    message: str  # one sentence for a person
    detail: str  # traceback or extra context
    epochs_completed: int
    run_dir: str
    time: float


Event = Union[RunStarted, Progress, EpochEnd, LogMessage, RunFinished, RunFailed]
EventHandler = Callable[[Event], None]

_KINDS: dict[str, type] = {
    "run_started": RunStarted,
    "progress": Progress,
    "epoch_end": EpochEnd,
    "log": LogMessage,
    "run_finished": RunFinished,
    "run_failed": RunFailed,
}
_NAMES = {cls: name for name, cls in _KINDS.items()}


def event_kind(event: Event) -> str:
    return _NAMES[type(event)]


def to_json(event: Event) -> str:
    body = dataclasses.asdict(event)
    body = {"event": event_kind(event), **body}
    return json.dumps(body, allow_nan=True, separators=(",", ":"))


def from_json(line: str) -> Event | None:
    """Parse one metrics.jsonl line; returns None for lines this version does not know."""
    try:
        body: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return None
    cls = _KINDS.get(body.pop("event", None))
    if cls is None:
        return None
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in body.items():
        if key in names:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except TypeError:
        return None
