"""Start checks the preset first: the engine's ``check_experiment`` (``sskt check``) in a worker.

It reads what a run would read before any epoch (the dataset's files, every source's model file
through the safe loader, the target's initial weights, the method's networks), which can take a
moment for a large model file, so it runs off the GUI thread (``app.worker``). A problem it finds
is said in one sentence and the run is not started: no run folder is made for settings that could
never train, and the person sees the file or field at fault rather than a failed run.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6 import QtCore

from app.worker import Worker, WorkerError, start_worker


def all_problems(config: Any) -> list[str]:
    """Every problem ``check_experiment`` finds with ``config``, one sentence each (worker thread)."""
    from sskt_engine.preset_check import check_experiment

    return check_experiment(config).problems


class StartCheck(QtCore.QObject):
    """``check(config, go)``: runs the engine's check and calls ``go()`` when it finds nothing;
    else emits ``refused(sentence, problems)``. ``cancel()`` drops the answer of a check under way."""

    refused = QtCore.Signal(str, list)
    busy_changed = QtCore.Signal(bool)

    def __init__(self, check: Callable[[Any], list[str]] = all_problems, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._check = check
        self._worker: Worker | None = None
        self._ticket = 0  # which request an answer belongs to: a cancelled one is ignored

    def busy(self) -> bool:
        return self._worker is not None

    def check(self, config: Any, go: Callable[[], None]) -> None:
        self._ticket += 1
        ticket = self._ticket
        self._worker = start_worker(lambda: self._check(config),
                                    returned=lambda problems: self._answered(ticket, problems, go),
                                    errored=lambda error: self._crashed(ticket, error, go),
                                    name="sskt-start-check")
        self.busy_changed.emit(True)

    def cancel(self) -> None:
        if self._worker is not None:
            self._ticket += 1
            self._done()

    def _done(self) -> None:
        self._worker = None
        self.busy_changed.emit(False)

    def _answered(self, ticket: int, problems: list[str], go: Callable[[], None]) -> None:
        if ticket != self._ticket:
            return
        self._done()
        if problems:
            more = len(problems) - 1
            sentence = problems[0] + (f" ({more} more problem{'s' if more != 1 else ''} in the Log)" if more else "")
            self.refused.emit(sentence, list(problems))
        else:
            go()

    def _crashed(self, ticket: int, error: WorkerError, go: Callable[[], None]) -> None:
        """The check itself broke (a bug, not a finding): start anyway, the run reports its own problems."""
        if ticket != self._ticket:
            return
        self._done()
        go()
