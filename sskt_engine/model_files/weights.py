"""Files of tensors: ``torch.save`` files (zip, and the pre-1.6 pickle ``.pth.tar``) read with
``torch.load(weights_only=True)``, and safetensors. Neither can run code: the restricted
unpickler refuses every global that is not a tensor builder or plain data, and safetensors
holds nothing but tensors and text."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import SourceError
from .files import check_file, first_line
from .inflation import check_inflation

MAX_CLASSES = 100_000  # no classifier this app trains or reads has more; a file claiming more lies


def read_tensor_file(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a model file into (top-level object as a dict, safetensors metadata).

    ``.safetensors`` files hold only tensors; everything else goes through
    ``torch.load(weights_only=True)``, whose restricted unpickler refuses code."""
    check_file(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    check_inflation(path, path.name)  # torch.load inflates deflated entries to whatever size they declare
    compiled = _compiled_program(path)
    if compiled:  # torch.load would hand a TorchScript archive to torch.jit.load: never let it
        raise SourceError(compiled)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if _is_text(path):  # plain text makes the unpickler fail too: not an unsafe pickle, just not a model
            raise SourceError(f"{path.name} is a text file, not a PyTorch checkpoint") from None
        raise SourceError(
            f"{path.name} was refused: loading it needs unsafe unpickling of Python objects, which could run "
            f"code on this machine ({_unsafe_reason(exc)}); re-save it as a plain state_dict or as safetensors"
        ) from None
    except Exception as exc:  # noqa: BLE001  a damaged file makes torch.load raise almost anything
        # (struct.error, KeyError, IndexError, AssertionError, UnicodeDecodeError, ...)
        other = _other_format(path)
        if other:
            raise SourceError(other) from None
        raise SourceError(f"{path.name} is not a readable PyTorch file; it may be truncated or of another "
                          f"format ({first_line(exc)})") from None
    if isinstance(obj, nn.Module):  # impossible with weights_only, kept for clarity
        raise SourceError(f"{path.name} holds a whole pickled model; save its state_dict instead")
    if not isinstance(obj, dict):
        raise SourceError(f"{path.name} does not hold a state_dict (found {type(obj).__name__})")
    return obj, {}


def _compiled_program(path: Path) -> str:
    """The sentence for a TorchScript or torch.export archive given as a checkpoint; "" otherwise."""
    from .files import EXPORTED_PROGRAM, TORCHSCRIPT, detect_format

    try:
        found = detect_format(path)
    except Exception:  # noqa: BLE001 - not a readable archive: torch.load says what it is
        return ""
    if found == TORCHSCRIPT:
        return f"{path.name} is a TorchScript file, not a checkpoint: use kind: compiled for it"
    if found == EXPORTED_PROGRAM:
        return f"{path.name} is a torch.export program, not a checkpoint: use kind: compiled for it"
    return ""


def _other_format(path: Path) -> str:
    """The sentence for a model file of another kind given where a checkpoint belongs (a
    TorchScript or torch.export program: ``kind: compiled``; ONNX; a text file); "" if unknown."""
    from .files import EXPORTED_PROGRAM, ONNX, TORCHSCRIPT, detect_format

    try:
        found = detect_format(path)
    except Exception:  # noqa: BLE001 - then it is simply not readable
        return ""
    if found == TORCHSCRIPT:
        return f"{path.name} is a TorchScript file, not a checkpoint: use kind: compiled for it"
    if found == EXPORTED_PROGRAM:
        return f"{path.name} is a torch.export program, not a checkpoint: use kind: compiled for it"
    if found == ONNX:
        return f"{path.name} is an ONNX file, which this app cannot use as a source; give the PyTorch checkpoint"
    if _is_text(path):
        return f"{path.name} is a text file, not a PyTorch checkpoint"
    return ""


def _is_text(path: Path) -> bool:
    """UTF-8 text without NUL bytes that is not a (protocol 0, all-ASCII) pickle either."""
    import pickletools

    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
        head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not head or b"\x00" in head:
        return False
    try:
        for _op in pickletools.genops(head):  # reads opcodes only; never builds an object
            pass
    except Exception:  # noqa: BLE001 - not a pickle: text
        return True
    return False


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a safetensors file; the metadata's values decoded from JSON where
    they are JSON (this app stores JSON there, other tools plain text)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise SourceError(f"{path.name} is not a readable safetensors file ({first_line(exc)})") from None
    return tensors, decode_header(header)


def decode_header(header: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in header.items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return decoded


def _unsafe_reason(exc: BaseException) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return f"it refers to {found.group(1)}, which is not a tensor or plain data"
    return "it contains objects other than tensors"


def checked_class_count(value: Any, where: str) -> int | None:
    """A class count read from a file's metadata: None when absent, else a sane integer
    (checked before it sizes a network: 10^9 classes would allocate gigabytes)."""
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        raise SourceError(f"{where}: its metadata gives an impossible class count ({str(value)[:40]})") from None
    if not 1 <= count <= MAX_CLASSES or count != value and not isinstance(value, str):
        raise SourceError(f"{where}: its metadata gives an impossible class count ({str(value)[:40]})")
    return count
