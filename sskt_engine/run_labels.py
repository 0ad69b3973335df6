"""``labels.json``: a user's own labels for a run (a display name, tags, a note), in the run folder.

They live in a file of their own, not in summary.json and not in the folder's name:

* the trainer rewrites summary.json after every epoch, so a rename written there during a run
  would race it and be lost; nothing the trainer does touches this file;
* other runs (``kind: run`` sources), studies and resumes refer to the folder by its path, so
  renaming the folder would break them.

Both the GUI's runs table and ``sskt label`` write it (atomically); everyone reads it. The file
is a user's to edit, and a run folder may come from someone else: reading never raises and never
trusts it. A file that is too large, not a regular file, not JSON, or holds a value that breaks
the rules below is ignored (the field, or the whole file) and the reason comes back as a warning.
"""

from __future__ import annotations

import json
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write_text
from .errors import UserInputError

LABELS_NAME = "labels.json"
SCHEMA_VERSION = 1
MAX_FILE_BYTES = 64 * 1024  # a note of a few pages fits; a hostile multi-gigabyte file is never read whole
MAX_NAME_CHARS = 120
MAX_TAG_CHARS = 40
MAX_TAGS = 32
MAX_NOTE_CHARS = 8000


@dataclass(frozen=True)
class RunLabels:
    name: str = ""  # shown instead of the run's own name; empty: the run's name
    tags: tuple[str, ...] = ()
    note: str = ""

    def is_empty(self) -> bool:
        return not (self.name or self.tags or self.note)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "name": self.name, "tags": list(self.tags), "note": self.note}


# -- the rules (the same for writing and reading) -------------------------------------------

def _control_chars(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in allowed for c in text)


def clean_name(name: str) -> str:
    """A display name: one line of at most MAX_NAME_CHARS; "" clears it."""
    name = name.strip()
    if _control_chars(name):
        raise UserInputError("a run's name must be one line of plain text (no control characters)")
    if len(name) > MAX_NAME_CHARS:
        raise UserInputError(f"a run's name can have at most {MAX_NAME_CHARS} characters, not {len(name)}")
    return name


def clean_tag(tag: str) -> str:
    """A tag: one word (no spaces or commas, so a filter word and the command line find it whole)."""
    tag = tag.strip()
    if not tag:
        raise UserInputError("a tag cannot be empty")
    if any(c.isspace() or c == "," for c in tag) or _control_chars(tag):
        raise UserInputError(f"a tag is one word without spaces or commas, not {tag!r}")
    if len(tag) > MAX_TAG_CHARS:
        raise UserInputError(f"a tag can have at most {MAX_TAG_CHARS} characters, not {len(tag)}")
    return tag


def clean_tags(tags) -> tuple[str, ...]:
    """Tags in their order, each once (letter case does not make a new tag)."""
    out: list[str] = []
    for tag in tags:
        tag = clean_tag(tag)
        if tag.casefold() not in (t.casefold() for t in out):
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise UserInputError(f"a run can have at most {MAX_TAGS} tags, not {len(out)}")
    return tuple(out)


def clean_note(note: str) -> str:
    note = note.strip()
    if _control_chars(note, allowed="\n\t"):
        raise UserInputError("a note must be plain text (no control characters other than line breaks and tabs)")
    if len(note) > MAX_NOTE_CHARS:
        raise UserInputError(f"a note can have at most {MAX_NOTE_CHARS} characters, not {len(note)}")
    return note


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed in one box: separated by commas or spaces."""
    return clean_tags(t for t in text.replace(",", " ").split() if t)


# -- reading --------------------------------------------------------------------------------

def labels_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / LABELS_NAME


def _read_small_regular_file(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why not. Opened without blocking and checked to be a regular
    file before reading: a FIFO or device planted under this name must not hang or flood a reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"{path} cannot be read ({exc.strerror or exc})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{path} is not a regular file"
        if info.st_size > MAX_FILE_BYTES:
            return None, f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB"
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"{path} cannot be read ({exc.strerror or exc})"
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_FILE_BYTES:  # it grew while being read
        return None, f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB"
    return data, ""


def load_labels(run_dir: str | os.PathLike) -> tuple[RunLabels, str]:
    """The run's labels and a warning ("" when none): no file is no labels; a damaged or hostile
    file, or one field of it, is ignored and the warning says what and why."""
    path = labels_path(run_dir)
    data, problem = _read_small_regular_file(path)
    if data is None:
        return RunLabels(), (f"labels ignored: {problem}" if problem else "")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return RunLabels(), f"labels ignored: {path} is not a JSON file"
    if not isinstance(body, dict):
        return RunLabels(), f"labels ignored: {path} does not hold a JSON object"
    problems: list[str] = []

    def field(key: str, clean, default):
        value = body.get(key, default)
        try:
            if key == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise UserInputError("tags must be a list of words")
                return clean(value)
            if not isinstance(value, str):
                raise UserInputError(f"{key} must be text")
            return clean(value)
        except UserInputError as exc:
            problems.append(f"{key} ({exc})")
            return default if key != "tags" else ()

    labels = RunLabels(name=field("name", clean_name, ""), tags=field("tags", clean_tags, []),
                       note=field("note", clean_note, ""))
    warning = f"labels of {Path(run_dir).name}: ignored {'; '.join(problems)}" if problems else ""
    return labels, warning


def read_labels(run_dir: str | os.PathLike) -> RunLabels:
    """The run's labels; nothing (no warning) for a missing or damaged file."""
    return load_labels(run_dir)[0]


# -- writing --------------------------------------------------------------------------------

def write_labels(run_dir: str | os.PathLike, labels: RunLabels) -> None:
    """Replace the run's labels (atomically: a reader sees the old labels or the new ones).
    An empty set of labels removes the file."""
    run_dir = Path(run_dir)
    labels = RunLabels(clean_name(labels.name), clean_tags(labels.tags), clean_note(labels.note))
    if not run_dir.is_dir():
        raise UserInputError(f"run folder {run_dir} does not exist")
    path = labels_path(run_dir)
    try:
        if labels.is_empty():
            path.unlink(missing_ok=True)
            return
        text = json.dumps(labels.to_dict(), indent=2, ensure_ascii=False) + "\n"
        for attempt in range(2):
            try:
                atomic_write_text(path, text)
                break
            except FileNotFoundError:
                # A resume taking the run's lock removes stale temporaries (``stale_files``) and may
                # have taken ours between its write and its rename: write it once more.
                if attempt:
                    raise
    except PermissionError:
        raise UserInputError(f"the labels of {run_dir.name} cannot be saved (permission denied)") from None
    except OSError as exc:
        raise UserInputError(f"the labels of {run_dir.name} cannot be saved ({exc.strerror or exc})") from None


def update_labels(run_dir: str | os.PathLike, *, name: str | None = None, add_tags=(), remove_tags=(),
                  note: str | None = None, tags: tuple[str, ...] | None = None) -> RunLabels:
    """Change some labels and keep the others; returns the labels written. ``tags`` replaces
    every tag; ``add_tags`` and ``remove_tags`` change them (letter case ignored when removing).
    Only people write this file (the GUI and ``sskt label``), so a read-modify-write is enough."""
    current = read_labels(run_dir)
    new_tags = list(current.tags if tags is None else clean_tags(tags))
    removing = {clean_tag(t).casefold() for t in remove_tags}
    new_tags = [t for t in new_tags if t.casefold() not in removing]
    new_tags += list(clean_tags(add_tags))
    labels = RunLabels(name=clean_name(name) if name is not None else current.name,
                       tags=clean_tags(new_tags), note=clean_note(note) if note is not None else current.note)
    write_labels(run_dir, labels)
    return labels


__all__ = ["LABELS_NAME", "RunLabels", "clean_name", "clean_note", "clean_tag", "clean_tags", "labels_path",
           "load_labels", "parse_tags", "read_labels", "update_labels", "write_labels"]
