"""Which export formats this installation can write, known without importing torch: ONNX needs
the optional ``onnx`` package. The Export dialog and ``sskt export --help`` show a format that is
not available, with the one command that enables it, before anyone has trained and chosen it."""

from __future__ import annotations

import importlib.util

ONNX_INSTALL = "pip install 'sskt-studio[onnx]'"


def unavailable_formats() -> dict[str, str]:
    """{format: the command that makes it available} for the formats missing a package here."""
    missing = {}
    if importlib.util.find_spec("onnx") is None:
        missing["onnx"] = ONNX_INSTALL
    return missing
