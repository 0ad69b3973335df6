"""How far a model file's zip archive may inflate, checked from its directory before any loader
reads an entry.

``torch.save``, ``torch.jit.save`` and ``torch.export.save`` store entries uncompressed, but
their readers inflate deflated entries too, allocating the size the archive declares: a
262 KB ``.pt`` whose one tensor entry was deflated from 256 MB of zeros was loaded into
256 MB without a question (a thousand times that is a few hundred MB on disk). An entry may
grow at most ``MAX_RATIO`` times (real weights compress by less than 2), and all entries
together at most ``MAX_RATIO`` times the file, plus ``SLACK_BYTES`` for small entries.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from ..errors import SourceError

MAX_RATIO = 16
SLACK_BYTES = 1 << 20  # tiny entries (a version string, a small pickle) may compress well


def check_inflation(source: bytes | str | os.PathLike, name: str) -> None:
    """Refuse, with one sentence naming ``name``, an archive that would inflate past the bound.
    Anything that is not a readable zip passes: its own reader says what is wrong with it."""
    try:
        if isinstance(source, (bytes, bytearray)):
            size = len(source)
            archive = zipfile.ZipFile(io.BytesIO(source))
        else:
            size = Path(source).stat().st_size
            archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return
    with archive:
        infos = archive.infolist()
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > info.compress_size * MAX_RATIO + SLACK_BYTES:
            raise SourceError(
                f"{name} was refused: its archive entry {info.filename[:80]!r} would inflate from "
                f"{info.compress_size:,} to {info.file_size:,} bytes, more than model files ever are "
                f"(at most {MAX_RATIO}x); it may be a zip bomb")
    if total > size * MAX_RATIO + SLACK_BYTES:
        raise SourceError(f"{name} was refused: its archive would inflate from {size:,} to {total:,} bytes, more "
                          f"than model files ever are (at most {MAX_RATIO}x); it may be a zip bomb")
