"""The zip archive of a compiled model file (TorchScript or ``torch.export``), opened from bytes.

Opened strictly, so that what this app checks is what torch loads: torch's reader takes the
first entry's folder as the archive's and looks names up without regard to case, so an
archive with entries in two folders, or with two names equal but for case, is refused
rather than guessed at.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from typing import Any

from ..errors import SourceError
from .files import EXPORTED_PROGRAM, TORCHSCRIPT
from .inflation import check_inflation

META_FILE = "sskt_meta.json"  # this app's metadata, an extra file inside TorchScript and .pt2 archives

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING"}
_MEMO_OPS = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}


@dataclass
class ModelArchive:
    zip: zipfile.ZipFile
    prefix: str  # the archive's top folder, with its trailing "/", or ""
    names: set[str]  # entry names without the prefix

    def read(self, name: str) -> bytes:
        return self.zip.read(self.prefix + name)


def open_archive(data: bytes, name: str) -> ModelArchive:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise SourceError(f"{name} is not a model file: {_what_else(data)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SourceError(f"{name} is not a readable model file; it may be truncated ({error_summary(exc)})") from None
    check_inflation(data, name)  # before any entry is read, here or by torch
    folded = {n.lower() for n in entries}
    if len(folded) != len(entries):
        raise SourceError(f"{name} is not a readable model file: its archive holds two entries of the same name")
    tops = {n.split("/", 1)[0] for n in entries}
    prefix = tops.pop() + "/" if len(tops) == 1 and all("/" in n for n in entries) else ""
    return ModelArchive(archive, prefix, {n[len(prefix):] for n in entries})


def _what_else(data: bytes) -> str:
    expected = "a compiled source must be a TorchScript file (torch.jit.save) or a torch.export program (.pt2)"
    if data[:1] == b"\x80":
        return f"it is a pickle (an old torch.save file), and {expected}"
    if data[8:10] == b'{"':
        return f"it looks like a safetensors file of weights (use kind checkpoint), and {expected}"
    if not data:
        return f"the file is empty, and {expected}"
    return expected


def compiled_format(archive: ModelArchive, name: str) -> str:
    """TORCHSCRIPT or EXPORTED_PROGRAM, from the entries (never the suffix); anything else is refused."""
    # entries in several folders: recognise the writer by the names inside them, then refuse
    names = archive.names if archive.prefix else {n.split("/", 1)[-1] for n in archive.names}
    if "archive_format" in names or any(n.startswith("models/") and n.endswith(".json") for n in names):
        _one_folder(archive, name)
        return EXPORTED_PROGRAM
    if any(n.rsplit("/", 1)[-1] == "serialized_exported_program.json" for n in names):
        raise SourceError(f"{name} is a torch.export program in the pre-2.8 format, which cannot be loaded "
                          f"safely; save it again with torch.export.save from a current PyTorch")
    if "constants.pkl" in names and "data.pkl" in names and any(n.startswith("code/") for n in names):
        _one_folder(archive, name)
        return TORCHSCRIPT
    if "data.pkl" in names:
        raise SourceError(f"{name} is not a model file but a torch.save file (weights or a pickled model); use "
                          f"kind checkpoint for weights, or save the model with torch.jit.save or torch.export.save")
    raise SourceError(f"{name} is not a model file: it is a zip archive, but neither a TorchScript file "
                      f"(torch.jit.save) nor a torch.export program (.pt2)")


def _one_folder(archive: ModelArchive, name: str) -> None:
    # torch reads only the folder of the first entry; entries beside it would go unchecked by
    # torch's eyes but not by ours, or the reverse. Both savers write one folder.
    if not archive.prefix:
        raise SourceError(f"{name} is not a readable model file: its archive's entries are not in one folder, "
                          f"as torch.jit.save and torch.export.save write them")


def pickle_globals(data: bytes) -> list[tuple[str, str] | None]:
    """Every global a pickle references, in order; None for one that cannot be resolved statically."""
    found: list[tuple[str, str] | None] = []
    recent: list[tuple[str, Any]] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            found.append((module, attr))
        elif op.name == "STACK_GLOBAL":
            if len(recent) >= 2 and recent[-1][0] in _STRING_OPS and recent[-2][0] in _STRING_OPS:
                found.append((str(recent[-2][1]), str(recent[-1][1])))
            else:
                found.append(None)
        elif op.name in ("EXT1", "EXT2", "EXT4"):
            found.append(None)
        if op.name not in _MEMO_OPS:
            recent = (recent + [(op.name, arg)])[-2:]
    return found


def error_summary(exc: BaseException) -> str:
    """One line of an error; TorchScript errors put the real message last, under a traceback."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[-1] if "Traceback of TorchScript" in str(exc) or "TorchScript interpreter" in str(exc) else lines[0]
    return line[:200]
