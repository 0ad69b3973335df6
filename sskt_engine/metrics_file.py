"""Reading ``metrics.jsonl`` tolerantly: a log that a crash cut in the middle of a line (even in
the middle of a UTF-8 character) still reads, line by line, as bytes.

Decoding the file as text failed as a whole on the first broken byte (``UnicodeDecodeError``),
which stopped resume and the GUI's curves. Here each line is decoded on its own; one that is
not valid UTF-8 or JSON is skipped and counted, and the caller says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterator

from .events import Event, from_json


@dataclass
class LogLines:
    lines: list[tuple[str, Event]] = field(default_factory=list)  # each whole, readable line and its event
    damaged: int = 0  # whole lines that are not UTF-8 or not JSON: skipped
    unfinished: bool = False  # the last line has no newline: still being written, or cut by a crash


def _decode(raw: bytes) -> tuple[str | None, Event | None]:
    """(text, event); text None for a damaged line, event None for a kind this version does not know."""
    try:
        text = raw.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None, None
    return text, from_json(text)


def iter_events(path: str | os.PathLike) -> Iterator[Event]:
    """Every event of the whole lines; damaged lines and an unfinished last line are skipped."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        for raw in handle:
            if raw.endswith(b"\n"):
                _, event = _decode(raw)
                if event is not None:
                    yield event


class EventScan:
    """``iter_events`` that also counts what it skipped, for a reader that must say so (the GUI's
    curves of a recorded run): ``for event in scan: ...`` then ``scan.damaged``."""

    def __init__(self, path: str | os.PathLike):
        self.path = path
        self.damaged = 0  # whole lines that are not UTF-8 or not JSON

    def __iter__(self) -> Iterator[Event]:
        self.damaged = 0
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            for raw in handle:
                if not raw.endswith(b"\n") or not raw.strip():
                    continue
                text, event = _decode(raw)
                if text is None:
                    self.damaged += 1
                elif event is not None:
                    yield event


def read_log(path: str | os.PathLike) -> LogLines:
    """The whole log, for a reader that rewrites it (resume's trim) and must say what it skipped."""
    out = LogLines()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return out
    raws = data.split(b"\n")
    tail = raws.pop()  # b"" when the file ends with a newline
    out.unfinished = bool(tail.strip())
    for raw in raws:
        if not raw.strip():
            continue
        text, event = _decode(raw)
        if text is None:
            out.damaged += 1
        elif event is not None:
            out.lines.append((text + "\n", event))
    return out
