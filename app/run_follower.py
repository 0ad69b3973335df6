"""Follows a run that another process writes: finds its new folder in the runs folder and
reads what its ``metrics.jsonl`` gained, turning each line back into an engine event.

Everything here reads files, so it runs in a worker thread (``follow`` is a worker function
with a control); the GUI thread only gets the events. No Qt here.
"""

from __future__ import annotations

from pathlib import Path

from app.worker import WorkerControl
from sskt_engine.events import Event, from_json
from sskt_engine.runs import RunFolder

POLL_S = 0.25  # how often the log is looked at: ~4 Hz is live enough for curves


class MetricsFollower:
    """The run folder that appears in ``root`` after ``before`` (the names there at the start),
    read incrementally: each call returns only the events written since the last."""

    def __init__(self, root: Path, before: set[str]):
        self.root = Path(root)
        self.before = set(before)
        self.run_dir = ""
        self._offset = 0
        self._partial = b""

    def _find_run_dir(self) -> str:
        if not self.root.is_dir():
            return ""
        fresh = [p for p in self.root.iterdir() if p.name not in self.before and p.is_dir()
                 and RunFolder(p).metrics_path.exists()]
        return str(max(fresh, key=lambda p: p.name)) if fresh else ""

    def read_new(self) -> list[Event]:
        """The events of complete lines written since the last call."""
        if not self.run_dir:
            self.run_dir = self._find_run_dir()
            if not self.run_dir:
                return []
        try:
            with open(RunFolder(self.run_dir).metrics_path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return []
        if not data:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next read
        return self._parse(lines)

    def read_rest(self) -> list[Event]:
        """After the process ended: the last lines, a final one without its newline too."""
        events = self.read_new()
        rest, self._partial = self._partial, b""
        return events + self._parse([rest])

    @staticmethod
    def _parse(lines: list[bytes]) -> list[Event]:
        events = []
        for line in lines:
            if line.strip():
                event = from_json(line.decode("utf-8", errors="replace"))
                if event is not None:
                    events.append(event)
        return events


def follow(follower: MetricsFollower, control: WorkerControl) -> str:
    """Worker function: yield each batch of new events (a list) until asked to quit, which the
    controller does once the process has ended; then the rest. Returns the run folder found."""
    while not control.quit_requested():
        events = follower.read_new()
        if events:
            control.yield_value(events)
        control.quit_event.wait(POLL_S)
    events = follower.read_rest()
    if events:
        control.yield_value(events)
    return follower.run_dir
