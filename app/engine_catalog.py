"""The engine's registries and optional modules, read defensively for the GUI.

Everything the forms offer comes from here: architectures, methods, datasets, devices
and the field descriptions of the preset dataclasses. A registry that fails to import
(an engine module under construction, a broken plugin) leaves its list empty and a
note for the status bar instead of taking the window down.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from sskt_engine import config as engine_config


@dataclass(frozen=True)
class CatalogEntry:
    key: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))


problems: list[str] = []


def _note(what: str, exc: BaseException) -> None:
    text = f"{what} unavailable: {exc}"
    if text not in problems:
        problems.append(text)


def _registry(module: str, name: str) -> list[CatalogEntry]:
    try:
        registry = getattr(importlib.import_module(module), name)
        return [CatalogEntry(e.key, dict(e.meta)) for e in registry.entries()]
    except Exception as exc:  # noqa: BLE001 - any failure here only hides a list
        _note(name.lower(), exc)
        return []


def architectures() -> list[CatalogEntry]:
    return _registry("sskt_engine.models", "ARCHITECTURES")


def methods() -> list[CatalogEntry]:
    return _registry("sskt_engine.methods", "METHODS")


def datasets() -> list[CatalogEntry]:
    return _registry("sskt_engine.data", "DATASETS")


def entry(entries: list[CatalogEntry], key: str) -> CatalogEntry | None:
    return next((e for e in entries if e.key == key), None)


@functools.lru_cache(maxsize=1)
def devices() -> tuple[str, ...]:
    try:
        from sskt_engine.device import available_devices

        return tuple(available_devices())
    except Exception as exc:  # noqa: BLE001
        _note("device list", exc)
        return ("auto", "cpu")


def describe(cls: type) -> list[dict[str, Any]]:
    """``describe_fields`` with choices that could not be listed left open (None)."""
    return engine_config.describe_fields(cls, on_error=_note)


def trainer_class() -> Any | None:
    try:
        from sskt_engine.trainer import Trainer

        return Trainer
    except Exception as exc:  # noqa: BLE001
        _note("trainer", exc)
        return None


def torchvision_catalog() -> list[dict[str, Any]]:
    from sskt_engine.sources import torchvision_catalog as catalog

    return list(catalog())


def preview_function() -> Callable | None:
    try:
        from sskt_engine.data.preview import preview_samples

        return preview_samples
    except Exception as exc:  # noqa: BLE001
        _note("dataset preview", exc)
        return None


def predictions_function() -> Callable | None:
    try:
        from sskt_engine.inspect import validation_predictions

        return validation_predictions
    except Exception:  # noqa: BLE001 - optional; the results view simply omits the grid
        return None


@functools.lru_cache(maxsize=64)
def parameter_count(arch: str, num_classes: int) -> int:
    """Builds the network once on the CPU through the engine and counts its parameters."""
    from sskt_engine.models import build_architecture, parameter_count as count

    return int(count(build_architecture(arch, num_classes)))


def format_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)
