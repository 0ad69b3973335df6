"""An exclusive OS lock on a run folder: held by whoever writes the run (train, resume, an export
into it) for as long as it writes, and released by the operating system when that process
ends in any way, ``kill -9`` included.

A pid in summary.json cannot say this: a pid is reused after its process dies (so a dead run
looked alive and could never be resumed), and two ``sskt resume`` started together both saw
no live pid before either wrote one. A lock is taken or refused in one system call.

POSIX: ``fcntl.flock`` on ``<run>/.sskt.lock`` (per open file, so two opens in one process
conflict too: a GUI thread probing a run trained by another thread sees it held). Windows:
``msvcrt.locking`` on the file's first byte.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

LOCK_NAME = ".sskt.lock"

# A probe (``is_held``) takes the lock for a moment; a writer starting in that moment retries
# for this long instead of reporting the run busy.
_RETRY_S = 2.0

def windows_lock_functions(msvcrt):  # the module is passed in so a test can run this on POSIX
    """(try_lock, unlock) with ``msvcrt.locking`` on the lock file's first byte. ``locking``
    works from the file position, so both seek to byte 0 first (a failed attempt or a read
    elsewhere must not move the locked range)."""

    def try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    return try_lock, unlock


if os.name == "nt":  # pragma: no cover - exercised on Windows; tests run the same code with a fake msvcrt
    import msvcrt

    _try_lock, _unlock = windows_lock_functions(msvcrt)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


try_lock_fd, unlock_fd = _try_lock, _unlock  # for the other lock holder, stale_files (POSIX)


class RunBusy(Exception):
    """Another process (or another writer in this one) holds the run's lock."""


class RunLock:
    """``with RunLock(folder):`` or ``acquire()`` / ``release()``; not reentrant."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, retry_s: float = _RETRY_S) -> None:
        """Take the lock or raise ``RunBusy``; ``OSError`` if the lock file cannot be made."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + retry_s
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                os.close(fd)
                raise RunBusy(str(self.path.parent))
            time.sleep(0.05)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        except OSError:
            pass  # closing releases it anyway
        os.close(fd)

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_held(folder: str | os.PathLike) -> bool:
    """Whether some writer holds the run's lock now. Never creates the lock file: a folder
    without one (written by an older version, or never trained) is not held."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    except OSError:
        return False
    try:
        if not _try_lock(fd):
            return True
        try:
            _unlock(fd)
        except OSError:
            pass
        return False
    finally:
        os.close(fd)
