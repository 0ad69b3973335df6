"""Where an export may write: never over a run's own files, and into a run folder only while
holding that run's lock (so a resume cannot start, trim or clean up under the export).

``sskt export RUN --format pt -o RUN/checkpoints/last.pt`` used to be accepted: the exported
file replaced the checkpoint and the next resume failed on it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import UserInputError
from .run_lock import RunBusy, RunLock
from .runs import RunFolder


def run_folder_around(path: Path) -> RunFolder | None:
    """The run folder ``path`` would be written into (its folder, or checkpoints/ or eval/ of
    one), links followed; None outside every run."""
    parent = Path(os.path.realpath(path)).parent
    for candidate in (parent, parent.parent):
        folder = RunFolder(candidate)
        if folder.exists():
            return folder
    return None


def refuse_run_files(path: Path) -> None:
    """One sentence if ``path`` is a file some run writes itself (any run, not only the exported one)."""
    folder = run_folder_around(path)
    if folder is not None and folder.owns(path):
        raise UserInputError(f"cannot write {path}: it is one of run {folder.path.name}'s own files (checkpoints, "
                             "evaluations, log, summary and preset are written by training only); choose another "
                             "file name or folder")


@contextmanager
def locked_if_in_a_run(path: Path) -> Iterator[None]:
    """Hold the lock of the run folder ``path`` lies in, if any, while the export writes there."""
    folder = run_folder_around(path)
    if folder is None:
        yield
        return
    lock = RunLock(folder.path)
    try:
        lock.acquire()
    except RunBusy:
        raise UserInputError(f"cannot write {path}: run {folder.path.name} is in use by another process "
                             "(training or resuming); export into its folder once it has ended") from None
    except OSError as exc:
        raise UserInputError(f"cannot write {path}: run folder {folder.path} cannot be locked "
                             f"({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()
