"""Key paths into a preset: ``train.lr`` is ``("train", "lr")``, ``sources[0].path`` is
``("sources", 0, "path")``. Error messages name keys this way, ``--set`` overrides are written
this way, and the GUI finds the field an error belongs to by the same text. Imports nothing."""

from __future__ import annotations

import re
from typing import Union

KeyPath = tuple[Union[str, int], ...]


def parse_key_path(text: str) -> KeyPath:
    """``sources[0].arch`` -> ``("sources", 0, "arch")``; empty pieces are skipped."""
    parts: list[str | int] = []
    for piece in re.split(r"\.|\[|\]", text.strip()):
        if piece == "":
            continue
        # isdigit() alone accepts "²" and other digits int() refuses
        parts.append(int(piece) if piece.isascii() and piece.isdigit() else piece)
    return tuple(parts)


def format_key_path(path: tuple) -> str:
    """``("sources", 0, "arch")`` -> ``sources[0].arch``; an empty or blank key shows quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            out += ("." if out else "") + (text if text.strip() else repr(text))
    return out


__all__ = ["KeyPath", "parse_key_path", "format_key_path"]
