"""The live curves' x axis: epochs, steps or wall time (issue 18, item 16), from the events alone.

Every point of a curve keeps all three coordinates (``SeriesBuffer``), so switching the unit
redraws without re-reading anything. Epochs are fractional inside an epoch (``run_history``);
steps are the run's global training step; wall time is the seconds the run has trained, counted
from its start. A resumed run continues from where its checkpoint's epoch ended: the hours it
lay stopped are not on the axis (``RunClock``). Plain floats, no tensor math.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from sskt_engine.events import EpochEnd, Progress, RunStarted
from sskt_engine.formatting import duration

EPOCHS, STEPS, WALL_TIME = "epochs", "steps", "time"
UNITS = ((EPOCHS, "epochs"), (STEPS, "steps"), (WALL_TIME, "wall time"))  # (key, what the selector says)
AXIS_LABELS = {EPOCHS: "epoch", STEPS: "step", WALL_TIME: "wall time"}
# Tick steps a clock is read in (seconds): a run of three hours gets ticks at 0:30:00, 1:00:00, ...
# rather than the decimal 2000, 4000, 6000 s a plain axis would choose.
CLOCK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def format_x(unit: str, x: float, named: bool = True) -> str:
    """A position on the axis, for the hover read-out: 'epoch 2.35', 'step 120', 'time 1:23'
    (``named``: with the unit's name, as the read-out's first line; without, '2.35', '120', '1:23')."""
    if not math.isfinite(x):
        return "-"
    if unit == STEPS:
        name, value = "step", f"{x:.0f}"
    elif unit == WALL_TIME:
        name, value = "time", duration(max(0.0, x))
    else:
        name, value = "epoch", f"{x:.2f}"
    return f"{name} {value}" if named else value


def clock_tick_steps(span: float, max_ticks: int) -> tuple[float, float]:
    """(major, minor) tick steps in seconds for ``span`` seconds of axis: the smallest clock step
    that gives at most ``max_ticks`` major ticks, and the step below it for the minor ones."""
    max_ticks = max(1, max_ticks)
    for index, step in enumerate(CLOCK_STEPS):
        if span / step <= max_ticks:
            return float(step), float(CLOCK_STEPS[index - 1] if index else step)
    largest = float(CLOCK_STEPS[-1])
    days = math.ceil(span / largest / max_ticks)
    return days * largest, largest


def clock_label(seconds: float) -> str:
    """A tick's label: 'm:ss' under an hour, 'h:mm:ss' from one (two parts are minutes, three
    hours), negative values as '-' ones, as the axis may show a margin left of 0."""
    sign = "-" if seconds < 0 else ""
    total = int(round(abs(seconds)))
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{sign}{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class _Attempt:
    start: float  # RunStarted.time
    start_epoch: int  # the epoch it continued from (0: the first attempt)


class RunClock:
    """Where an event lies on the step and wall-time axes.

    Feed it the run's events in the order they were written (RunStarted of each attempt, then
    its Progress and EpochEnd); the live window may also feed a resumed run's earlier events after
    the new RunStarted (``run_history.replay_before``): each event is placed by its own time in
    the attempt that was running then. An attempt that resumed at epoch k starts where epoch k-1
    ended in the attempt before it."""

    def __init__(self) -> None:
        self.steps_per_epoch = 0
        self._attempts: list[_Attempt] = []  # sorted by start time
        self._epoch_ends: dict[int, list[float]] = {}  # epoch -> times of its EpochEnd events, sorted
        self._offsets: dict[float, float] = {}  # an attempt's start -> the training seconds before it
        self._first_time: float | None = None  # when no RunStarted is known: the first event's time

    def started(self, event: RunStarted) -> None:
        if event.steps_per_epoch:
            self.steps_per_epoch = event.steps_per_epoch
        attempt = _Attempt(float(event.time), int(event.start_epoch))
        if attempt not in self._attempts:
            bisect.insort(self._attempts, attempt, key=lambda a: a.start)

    def position(self, event: Progress | EpochEnd) -> tuple[float, float]:
        """(global step, training seconds) of a Progress or EpochEnd."""
        if isinstance(event, Progress):
            step = float(event.global_step)
        else:
            step = float((event.epoch + 1) * self.steps_per_epoch) if self.steps_per_epoch else math.nan
            bisect.insort(self._epoch_ends.setdefault(event.epoch, []), float(event.time))
        return step, self.seconds(float(event.time))

    def seconds(self, time: float) -> float:
        index = bisect.bisect_right([a.start for a in self._attempts], time) - 1
        if index < 0:  # before any start we know of (a log without its RunStarted)
            if self._first_time is None:
                self._first_time = time
            return max(0.0, time - self._first_time)
        attempt = self._attempts[index]
        return self._offset(attempt, index) + (time - attempt.start)

    def _offset(self, attempt: _Attempt, index: int) -> float:
        if attempt.start_epoch == 0 or index == 0:
            return 0.0
        cached = self._offsets.get(attempt.start)
        if cached is not None:
            return cached
        ends = [t for t in self._epoch_ends.get(attempt.start_epoch - 1, []) if t < attempt.start]
        if not ends:  # the epoch it continued from is not known (yet): count from its own start
            return 0.0
        offset = self.seconds(ends[-1])
        self._offsets[attempt.start] = offset
        return offset
