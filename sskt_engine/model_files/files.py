"""What a model file is, before anything loads it: path checks and the format read from its bytes."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import SourceError, UserInputError

# The formats this app reads. "pt" is anything torch.save wrote (zip or the pre-1.6 pickle).
PT, SAFETENSORS, TORCHSCRIPT, EXPORTED_PROGRAM, ONNX = "pt", "safetensors", "torchscript", "torch.export", "onnx"


def check_file(path: Path) -> None:
    """Refuse a path that is not a readable file, with one sentence naming it."""
    if not path.exists():
        raise SourceError(f"model file {path} does not exist")
    if path.is_dir():
        raise SourceError(f"{path} is a folder, not a model file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"model file {path} cannot be read (permission denied)")


def read_bytes(path: Path) -> bytes:
    """The whole file, read once: checks and loaders then use the same bytes, so the file cannot
    change between being checked and being loaded."""
    check_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"model file {path} cannot be read ({exc.strerror})") from None


def first_line(exc: BaseException) -> str:
    """The first line of an error, for a sentence (loaders raise multi-line messages)."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def detect_format(path: str | os.PathLike) -> str | None:
    """pt, safetensors, torchscript, torch.export or onnx, from the file's first bytes and its zip
    entries (the suffix only for ONNX, whose protobuf has no magic number); None for anything else.

    Path problems are ``UserInputError`` sentences: this is where a command that takes any model
    file (export verification, ``sskt predict``) first touches it."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"model file {path} does not exist")
    if path.is_dir():
        raise UserInputError(f"{path} is a folder, not a model file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise UserInputError(f"model file {path} cannot be read ({exc.strerror or exc})") from None
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, UnicodeDecodeError, NotImplementedError, ValueError):
            raise UserInputError(f"{path.name} is a damaged or truncated archive, not a readable model file") from None
        return zip_format(names)
    if len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < path.stat().st_size:
        return SAFETENSORS
    if head[:1] == b"\x80":  # torch.save's pre-1.6 (non-zip) pickle format
        return PT
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # ModelProto starts with ir_version (field 1)
        return ONNX
    return None


def zip_format(names: list[str]) -> str:
    """Which writer made a zip archive, from its entry names: TorchScript (code and constants),
    a torch.export program (its models/ folder or archive_format), else torch.save."""
    inner = {name.split("/", 1)[1] if "/" in name else name for name in names}
    if "archive_format" in inner or any(n.startswith("models/") and n.endswith(".json") for n in inner):
        return EXPORTED_PROGRAM
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        return TORCHSCRIPT
    return PT
