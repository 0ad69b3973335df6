"""Where the shipped resources live: the ``sskt_resources`` package when installed, else ``resources/``."""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6 import QtCore, QtGui


@functools.lru_cache(maxsize=1)
def resources_root() -> Path:
    try:
        from importlib.resources import files

        root = Path(str(files("sskt_resources")))
        if root.is_dir():
            return root
    except (ModuleNotFoundError, TypeError):
        pass
    # Running from a source checkout whose venv does not have the project installed.
    return Path(__file__).resolve().parent.parent / "resources"


def presets_dir() -> Path:
    return resources_root() / "presets"


def builtin_presets() -> list[Path]:
    """Shipped presets, the demo first."""
    folder = presets_dir()
    if not folder.is_dir():
        return []
    found = sorted(folder.glob("*.yaml"))
    found.sort(key=lambda p: (p.stem != "demo", p.stem))
    return found


def demo_preset() -> Path | None:
    path = presets_dir() / "demo.yaml"
    return path if path.is_file() else None


def is_builtin(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        return Path(path).resolve().parent == presets_dir().resolve()
    except OSError:
        return False


def icon_path(name: str) -> Path:
    return resources_root() / "icons" / name


@functools.lru_cache(maxsize=None)
def app_icon() -> QtGui.QIcon:
    icon = QtGui.QIcon()
    folder = resources_root() / "icons"
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = folder / f"sskt-studio-{size}.png"
        if png.is_file():
            icon.addFile(str(png), QtCore.QSize(size, size))
    svg = folder / "sskt-studio.svg"
    if icon.isNull() and svg.is_file():
        icon.addFile(str(svg))
    return icon


def style_sheet() -> str:
    path = resources_root() / "style.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""
