"""Files shipped with the app (presets, the demo's source model), found through
``importlib.resources`` so an installed wheel works the same as a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_root() -> Path:
    try:
        return Path(str(resources.files("sskt_resources")))
    except ModuleNotFoundError:  # running from a checkout that was never installed
        return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    return resource_root().joinpath(*parts)


def builtin_presets() -> list[Path]:
    return sorted(resource_path("presets").glob("*.yaml"))
