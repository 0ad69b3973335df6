"""Tolerant readers of values from a run's JSON files: a missing value or one of the wrong type
gives the default, never an exception, so a file damaged by hand or written by another
version still loads (``run_summary``, ``eval_report``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: JSONDecodeError, UnicodeDecodeError
        return None
    return data if isinstance(data, dict) else None


def parse_json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def number(value: Any, default: float | None = None) -> float | None:
    """A float (NaN and infinities kept: JSON written with allow_nan); bools are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def integer(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return default


def text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def flag(value: Any, default: bool | None = None) -> bool | None:
    return value if isinstance(value, bool) else default


def number_dict(value: Any) -> dict[str, float]:
    """``{name: number}``; entries that are not numbers are dropped."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): float(v) for k, v in value.items() if not isinstance(v, bool) and isinstance(v, (int, float))}


def text_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, (str, int, float))}


def number_list(value: Any) -> tuple[float, ...]:
    """A list of numbers; anything that is not one becomes NaN, so positions (classes) keep their place."""
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(float(v) if not isinstance(v, bool) and isinstance(v, (int, float)) else float("nan")
                 for v in value)


def text_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(str(v) for v in value)


def integer_matrix(value: Any) -> tuple[tuple[int, ...], ...] | None:
    """A square-or-not matrix of counts; None unless every row is a list of integers."""
    if not isinstance(value, (list, tuple)):
        return None
    rows = []
    for row in value:
        if not isinstance(row, (list, tuple)):
            return None
        cells = [integer(v) for v in row]
        if any(c is None for c in cells):
            return None
        rows.append(tuple(int(c) for c in cells))  # type: ignore[arg-type]
    return tuple(rows)


def dict_list(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(dict(v) for v in value if isinstance(v, Mapping))
