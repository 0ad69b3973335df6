"""The window's icon and style sheet, as Qt objects. Where the shipped files are is the engine's
business (``sskt_engine.resources``); this module only turns them into what Qt wants."""

from __future__ import annotations

import functools

from PySide6 import QtCore, QtGui

from sskt_engine.resources import resource_path


@functools.lru_cache(maxsize=None)
def app_icon() -> QtGui.QIcon:
    icon = QtGui.QIcon()
    folder = resource_path("icons")
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = folder / f"sskt-studio-{size}.png"
        if png.is_file():
            icon.addFile(str(png), QtCore.QSize(size, size))
    svg = folder / "sskt-studio.svg"
    if icon.isNull() and svg.is_file():
        icon.addFile(str(svg))
    return icon


def style_sheet() -> str:
    try:
        return resource_path("style.qss").read_text(encoding="utf-8")
    except OSError:
        return ""
