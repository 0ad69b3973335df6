"""Curves of a run, live or recorded: plain float series keyed by name, read from events.

The same code turns live events (the plots) and a run folder's ``metrics.jsonl`` (the
runs panel's overlays) into points, so both show the same thing. The x axis is the epoch,
fractional inside an epoch (step / steps per epoch); each point also keeps its global step and
training seconds (``app.x_axis``), the other units the plots can show.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.x_axis import STEPS, WALL_TIME, RunClock
from sskt_engine.events import EpochEnd, Event, Progress, RunStarted
from sskt_engine.metric_info import ACCURACY, MetricInfo
from sskt_engine.metrics_file import EventScan
from sskt_engine.runs import RunFolder


class SeriesBuffer:
    """Growing float arrays: x (epochs), y, and the same points' global step and training
    seconds (NaN where not known); amortised O(1) appends, views without copies."""

    def __init__(self, capacity: int = 256):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._step = np.empty(capacity, dtype=np.float64)
        self._time = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def _grow(self, need: int) -> None:
        if need > self._x.shape[0]:
            capacity = max(need, 2 * self._x.shape[0])
            self._x, self._y, self._step, self._time = (np.resize(a, capacity) for a in
                                                        (self._x, self._y, self._step, self._time))

    def append(self, x: float, y: float, step: float = math.nan, time: float = math.nan) -> None:
        if self.n and x < self._x[self.n - 1]:
            # A resumed run repeats the epoch it was stopped in: the later points replace
            # the earlier ones, so x stays increasing (clip-to-view and hover rely on it).
            self.n = int(np.searchsorted(self._x[: self.n], x, side="left"))
        self._grow(self.n + 1)
        self._x[self.n] = x
        self._y[self.n] = y
        self._step[self.n] = step
        self._time[self.n] = time
        self.n += 1

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        need = self.n + len(xs)
        self._grow(need)
        self._x[self.n:need] = xs
        self._y[self.n:need] = ys
        self._step[self.n:need] = np.nan
        self._time[self.n:need] = np.nan
        self.n = need

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    @property
    def steps(self) -> np.ndarray:
        return self._step[: self.n]

    @property
    def seconds(self) -> np.ndarray:
        return self._time[: self.n]

    def x_in(self, unit: str) -> np.ndarray:
        """The x coordinates in ``unit`` (``app.x_axis``: epochs, steps, time)."""
        return {STEPS: self.steps, WALL_TIME: self.seconds}.get(unit, self.x)

    def __len__(self) -> int:
        return self.n


# (plot, series key) -> what it is called in the legend
def series_for_progress(event: Progress, steps_per_epoch: int,
                        train_metric: MetricInfo = ACCURACY) -> list[tuple[str, str, float, float]]:
    """(plot, key, x, y) points of one Progress event; ``train_metric`` names its training
    metric (the run's RunStarted says)."""
    per_epoch = steps_per_epoch or max(1, event.total_steps)
    x = event.epoch + event.step / per_epoch
    points = []
    # The total (target + weighted auxiliary losses) sits with the auxiliary losses, on their
    # scale; the target loss sits with the validation loss, which measures the same thing.
    # With nothing but the target loss (no sources), "target" repeats "loss": drawn once.
    only_target = set(event.losses) <= {"loss", "target"}
    for name, value in event.losses.items():
        if only_target:
            if name == "loss":
                points.append(("loss", "train loss", x, value))
        elif name == "loss":
            points.append(("sources", "train total", x, value))
        elif name == "target":
            points.append(("loss", "train target", x, value))
        elif name.startswith("aux/"):
            points.append(("sources", f"train {name[4:]}", x, value))
        elif "/" in name:  # another per-source term (FitNets' hint/<source>): beside the aux losses
            term, _, source = name.partition("/")
            points.append(("sources", f"train {term} {source}", x, value))
        else:
            points.append(("loss", f"train {name}", x, value))
    points.append(("accuracy", f"train {train_metric.short}", x, train_metric.scaled(event.train_acc)))
    points.append(("lr", "lr", x, event.lr))
    return points


def series_for_epoch(event: EpochEnd, metric: MetricInfo = ACCURACY) -> list[tuple[str, str, float, float]]:
    """Points of one epoch's validation numbers; ``metric``: the run's headline metric (the
    "accuracy" plot shows it, whatever the task calls it)."""
    x = float(event.epoch + 1)
    points = []
    per_network = "/" + metric.key
    for name, value in event.val.items():
        if name == "loss":
            points.append(("loss", "val loss", x, value))
        elif name == metric.key:
            points.append(("accuracy", f"val {metric.short}", x, metric.scaled(value)))
        elif name == "top5":
            points.append(("accuracy", "val top-5", x, 100.0 * value))
        elif name.endswith(per_network):
            points.append(("accuracy", f"val {name[:-len(per_network)]}", x, metric.scaled(value)))
        elif name.endswith("loss"):
            points.append(("loss", f"val {name}", x, value))
    return points


@dataclass
class RunCurves:
    """A recorded run's series: key -> (plot, x, y)."""

    name: str
    series: dict[str, tuple[str, np.ndarray, np.ndarray]] = field(default_factory=dict)
    metric: MetricInfo = ACCURACY  # the run's headline metric: its validation curve is "val <short>"
    damaged_lines: int = 0  # lines of metrics.jsonl a crash damaged: skipped, and the GUI says so
    display_name: str = ""  # the name the user gave the run (labels.json); "" when none
    # the same points' x in the other units: key -> {"steps": xs, "time": xs} (``app.x_axis``)
    axes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


_cache: dict[Path, tuple[tuple[float, int], RunCurves]] = {}
_cache_lock = threading.Lock()  # worker threads read runs; a superseded one may still be running


def load_run_curves(path: Path) -> RunCurves:
    """Read a run folder's metrics once per file change. Reads a whole log: call it from a
    worker thread, never the GUI thread."""
    path = Path(path)
    folder = RunFolder(path)
    try:
        stat = os.stat(folder.metrics_path)
        stamp = (stat.st_mtime, stat.st_size)
    except OSError:
        stamp = (0.0, 0)
    with _cache_lock:
        cached = _cache.get(path)
    if cached and cached[0] == stamp:
        return _with_labels(cached[1], folder)
    points: dict[str, tuple[str, SeriesBuffer]] = {}
    steps_per_epoch = 0
    metric = train_metric = ACCURACY
    clock = RunClock()
    scan = EventScan(folder.metrics_path)
    for event in scan:
        step = seconds = math.nan
        if isinstance(event, RunStarted):
            steps_per_epoch = event.steps_per_epoch
            metric, train_metric = event.headline, event.train_headline
            clock.started(event)
            rows = []
        elif isinstance(event, Progress):
            rows = series_for_progress(event, steps_per_epoch, train_metric)
            step, seconds = clock.position(event)
        elif isinstance(event, EpochEnd):
            rows = series_for_epoch(event, metric)
            step, seconds = clock.position(event)
        else:
            rows = []
        for plot, key, x, y in rows:
            points.setdefault(key, (plot, SeriesBuffer()))[1].append(x, y, step, seconds)
    curves = RunCurves(path.name, {k: (plot, buf.x.copy(), buf.y.copy()) for k, (plot, buf) in points.items()},
                       metric, damaged_lines=scan.damaged,
                       axes={k: {STEPS: buf.steps.copy(), WALL_TIME: buf.seconds.copy()} for k, (_p, buf) in points.items()})
    with _cache_lock:
        _cache[path] = (stamp, curves)
    return _with_labels(curves, folder)


def _with_labels(curves: RunCurves, folder: RunFolder) -> RunCurves:
    """The curves with the run's display name as it is now: labels change without the log
    changing, so they are read on every call (a small file), never cached with the curves."""
    name = folder.labels().name
    return curves if name == curves.display_name else dataclasses.replace(curves, display_name=name)


def replay_before(path: Path, start_epoch: int) -> list[Event]:
    """The recorded Progress and EpochEnd events of epochs before ``start_epoch`` (a resumed run),
    with the RunStarted of each earlier attempt where it was (the plots' wall-time axis places each
    event in its attempt: ``app.x_axis.RunClock``); read in the training thread
    (``app.run_controller.train``)."""
    out: list[Event] = []
    for event in RunFolder(path).events():
        if isinstance(event, (Progress, EpochEnd)) and event.epoch < start_epoch or isinstance(event, RunStarted):
            out.append(event)
    return out
