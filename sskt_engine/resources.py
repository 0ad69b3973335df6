"""Files shipped with the app (presets, the demo's source model, icons, the style sheet), found
through ``importlib.resources`` so an installed wheel and the frozen bundle work the same as a
checkout. The one place that knows where they are; the GUI's icons and style come from here too."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path


@functools.lru_cache(maxsize=1)
def resource_root() -> Path:
    """The ``sskt_resources`` package when installed, else the checkout's ``resources/``."""
    try:
        root = Path(str(resources.files("sskt_resources")))
        if root.is_dir():
            return root
    except (ModuleNotFoundError, TypeError):
        pass
    # Running from a source checkout whose venv does not have the project installed.
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    return resource_root().joinpath(*parts)


def presets_dir() -> Path:
    return resource_path("presets")


def builtin_presets() -> list[Path]:
    """Shipped presets, the demo first."""
    folder = presets_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.yaml"), key=lambda p: (p.stem != "demo", p.stem))


def paper_presets() -> list[Path]:
    """The presets that replicate the paper's table rows (``presets/paper/``), by name."""
    folder = presets_dir() / "paper"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def demo_preset() -> Path | None:
    path = presets_dir() / "demo.yaml"
    return path if path.is_file() else None


def is_builtin(path: str | Path | None) -> bool:
    """Whether ``path`` is one of the shipped presets (the GUI opens those read-only)."""
    if path is None:
        return False
    try:
        parent = Path(path).resolve().parent
        return parent in (presets_dir().resolve(), (presets_dir() / "paper").resolve())
    except OSError:
        return False


__all__ = ["resource_root", "resource_path", "presets_dir", "builtin_presets", "paper_presets", "demo_preset",
           "is_builtin"]
