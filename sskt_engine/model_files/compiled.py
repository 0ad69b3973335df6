"""Compiled model files (TorchScript, ``torch.export``): read once, checked, then loaded from the
same bytes. ``read_compiled`` does everything that needs no loading; ``load_compiled`` parses
the program and checks its operators before returning it, so nothing of the file runs on any
input before it has passed every check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .archive import META_FILE, ModelArchive, compiled_format, open_archive
from .exported_program import check_exported_archive, load_exported_program
from .files import EXPORTED_PROGRAM, TORCHSCRIPT, read_bytes
from .torchscript import check_torchscript_archive, load_torchscript

FORMAT_NAMES = {TORCHSCRIPT: "TorchScript", EXPORTED_PROGRAM: "torch.export"}


@dataclass(frozen=True)
class CompiledFile:
    """A compiled model file that passed the checks made before loading."""

    path: Path
    format: str  # files.TORCHSCRIPT or files.EXPORTED_PROGRAM
    data: bytes  # the bytes checked; the loader reads these, never the file again
    archive: ModelArchive

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES[self.format]

    def metadata_text(self) -> bytes | None:
        """This app's metadata stored inside the archive (``extra/sskt_meta.json``), if any."""
        entry = "extra/" + META_FILE
        return self.archive.read(entry) if entry in self.archive.names else None


def check_compiled(data: bytes, path: Path, expect: str | None = None) -> CompiledFile:
    """Open, identify and check a compiled file's bytes; ``expect`` refuses the other format."""
    archive = open_archive(data, path.name)
    fmt = compiled_format(archive, path.name)
    if expect is not None and fmt != expect:
        raise SourceError(f"{path.name} is not a {FORMAT_NAMES[expect]} file")
    if fmt == TORCHSCRIPT:
        check_torchscript_archive(archive, path.name)
    else:
        check_exported_archive(archive, path.name)
    return CompiledFile(path, fmt, data, archive)


def read_compiled(path: Path, expect: str | None = None) -> CompiledFile:
    """Read a compiled file once and check it (see ``check_compiled``)."""
    return check_compiled(read_bytes(path), path, expect)


def load_compiled(file: CompiledFile) -> Any:
    """The loaded program: a ``ScriptModule`` or an ``ExportedProgram``, its operators checked.

    Raises ``SourceError`` for a refused operator; any other exception means torch could not
    load the file (the caller words it)."""
    if file.format == TORCHSCRIPT:
        return load_torchscript(file.data, file.name)
    return load_exported_program(file.data, file.name)
