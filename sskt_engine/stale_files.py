"""Temporary files that a killed writer left behind, found and removed.

Every file this app writes is first written to a hidden temporary beside it (``atomic``:
``.NAME.XXXXXXXX.tmp``; an export: ``.NAME.XXXXXXXX.partial``) and then renamed. ``kill -9``
between the two leaves the temporary forever, as big as a checkpoint. They are removed:

* in a run folder, by whoever takes the run's lock (resume, an export into the run): while
  the lock is held nobody else writes there, so every temporary found is stale;
* in an export's target folder, by the next export there. Another export may be writing into
  the same folder at that moment, so each export holds an OS lock on its own temporary while
  it lives (``TempGuard``) and only unlocked ones are removed (on Windows an open file cannot
  be deleted, which protects it the same way).

Only names of exactly this shape are touched, never a user's own hidden files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# tempfile.mkstemp's random part: 8 characters of [a-z0-9_]
_RUN_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.(tmp|partial)$")
_EXPORT_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.partial$")
RUN_SUBFOLDERS = ("", "checkpoints", "eval")  # where a run writes its files

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    def _lock(fd: int) -> bool:
        return True  # an open file cannot be removed on Windows: being open is the guard

    def _unlock(fd: int) -> None:
        pass
else:  # the run folder's own lock primitives: one non-blocking exclusive flock, one release
    from .run_lock import try_lock_fd as _lock, unlock_fd as _unlock


def _candidates(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return [Path(e.path) for e in entries if pattern.match(e.name) and e.is_file(follow_symlinks=False)]


def remove_run_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Remove the temporaries in a run folder; the caller holds the run's lock. Returns them."""
    removed = []
    for sub in RUN_SUBFOLDERS:
        for path in _candidates(Path(run_dir) / sub, _RUN_TEMP):
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed


def remove_export_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.partial`` files in ``folder`` that no live export holds. Returns them."""
    removed = []
    for path in _candidates(Path(folder), _EXPORT_TEMP):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _lock(fd):
                continue  # an export in progress
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
        finally:
            os.close(fd)
    return removed


class TempGuard:
    """Holds an OS lock on an export's temporary while it is written, verified and published,
    so that another export's cleanup leaves it alone."""

    def __init__(self, fd: int):
        self._fd: int | None = fd
        _lock(fd)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _unlock(fd)
            except OSError:
                pass
            os.close(fd)
