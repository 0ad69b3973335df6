"""Model files: checking, reading and describing every format this app opens, in one place.

* ``detect_format``: what a file is (pt, safetensors, torchscript, torch.export, onnx), from
  its bytes and zip entries, never its suffix alone.
* Tensor files (``weights``): ``torch.save`` files (zip ``.pt``/``.pth``, the pre-1.6 pickle
  ``.pth.tar``) through ``torch.load(weights_only=True)``, and safetensors. Neither runs code;
  a file that would need unsafe unpickling is refused with the global it names.
* Compiled files (``compiled``): TorchScript and ``torch.export`` programs, read once, checked
  before loading (pickles, ``__setstate__``, the program's JSON) and, once parsed, every node
  of every graph checked against an operator allowlist (``operators``) before the program runs
  on any input. docs/RELIABILITY.md states the threat model.

Every refusal is a ``SourceError`` (a ``UserInputError``) holding one sentence that names the
file; ``detect_format`` says path problems as ``UserInputError``.
"""

from __future__ import annotations

from .archive import META_FILE
from .compiled import CompiledFile, check_compiled, load_compiled, read_compiled
from .files import (EXPORTED_PROGRAM, ONNX, PT, SAFETENSORS, TORCHSCRIPT, check_file, detect_format, first_line,
                    read_bytes)
from .weights import MAX_CLASSES, checked_class_count, decode_header, read_safetensors, read_tensor_file

__all__ = [
    "META_FILE", "CompiledFile", "check_compiled", "load_compiled", "read_compiled",
    "EXPORTED_PROGRAM", "ONNX", "PT", "SAFETENSORS", "TORCHSCRIPT", "check_file", "detect_format", "first_line",
    "read_bytes", "MAX_CLASSES", "checked_class_count", "decode_header", "read_safetensors", "read_tensor_file",
]
