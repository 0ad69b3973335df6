"""Model files of sources, checked as they are chosen rather than at Start.

A checkpoint source's file is read in a worker thread (``app.worker``) with the engine's own reader,
so a text file named ``.pt`` or a TorchScript file given as ``kind: checkpoint`` is marked on the
source's Path field in the engine's plain words ("notes.pt is a text file, not a PyTorch
checkpoint") while the person is still in the form. Each file is read once per size and mtime.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore

from app.worker import Worker, WorkerError, start_worker

Key = tuple[str, int, float]  # path, size, mtime


def check_checkpoint(path: Path) -> str:
    """The problem with a checkpoint file, in one sentence; "" when it reads (worker thread)."""
    from sskt_engine.errors import SourceError, UserInputError
    from sskt_engine.model_files import read_tensor_file

    try:
        read_tensor_file(path)
    except (SourceError, UserInputError) as exc:
        return str(exc)
    return ""


def _file_key(path: Path) -> Key | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None  # a missing file: the preset check says so already
    return str(path), stat.st_size, stat.st_mtime


class SourceFileChecker(QtCore.QObject):
    """Watches the document's sources; ``apply(errors)`` returns the document's errors plus the
    file problems found so far (keyed by the Path field, ``sources[i].path``)."""

    checked = QtCore.Signal()  # a file's answer came: the form should show it

    def __init__(self, document: Any, check: Callable[[Path], str] = check_checkpoint,
                 parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.document = document
        self.check = check
        self.results: dict[Key, str] = {}
        self._workers: dict[Key, Worker] = {}
        document.changed.connect(self.refresh)

    def _checkpoint_files(self) -> list[tuple[int, Key]]:
        from sskt_engine.frozen_source import resolve_path

        files = []
        for index, source in enumerate(self.document.get(("sources",)) or []):
            if not isinstance(source, dict) or source.get("kind") != "checkpoint":
                continue
            path = source.get("path")
            if not isinstance(path, str) or not path.strip():
                continue
            key = _file_key(resolve_path(path.strip()))
            if key is not None and Path(key[0]).is_file():
                files.append((index, key))
        return files

    def refresh(self) -> None:
        for _index, key in self._checkpoint_files():
            if key in self.results or key in self._workers:
                continue
            path = Path(key[0])
            self._workers[key] = start_worker(lambda p=path: self.check(p), returned=lambda r, k=key: self._done(k, r),
                                              errored=lambda e, k=key: self._failed(k, e),
                                              name="sskt-check-source-file")

    def busy(self) -> bool:
        return bool(self._workers)

    def _done(self, key: Key, problem: str) -> None:
        self._workers.pop(key, None)
        self.results[key] = problem
        self.checked.emit()

    def _failed(self, key: Key, error: WorkerError) -> None:
        self._workers.pop(key, None)
        self.results[key] = f"{Path(key[0]).name} could not be read ({error.sentence})"
        self.checked.emit()

    def problems(self) -> dict[str, str]:
        out = {}
        for index, key in self._checkpoint_files():
            problem = self.results.get(key)
            if problem:
                out[f"sources[{index}].path"] = problem
        return out

    def apply(self, errors: dict[str, str]) -> dict[str, str]:
        """The preset's own problems first; a file problem where the field has none."""
        merged = dict(errors)
        for path, problem in self.problems().items():
            merged.setdefault(path, problem)
        return merged
