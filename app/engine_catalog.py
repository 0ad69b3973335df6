"""The engine's registries and optional modules, read defensively for the GUI.

Everything the forms offer comes from here: architectures, methods, datasets, devices
and the field descriptions of the preset dataclasses. A registry that fails to import
(an engine module under construction, a broken plugin) leaves its list empty and a
note for the status bar instead of taking the window down.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, TypeVar

from sskt_engine import config as engine_config
from sskt_engine import registry
from sskt_engine.registry import ArchitectureInfo, DatasetInfo, MethodInfo, Registry, SourceKindInfo

Info = TypeVar("Info")


problems: list[str] = []


def _note(what: str, exc: BaseException) -> None:
    text = f"{what} unavailable: {exc}"
    if text not in problems:
        problems.append(text)


def _load_builtins() -> bool:
    """Import the engine packages that fill the registries; False (and a note) when one fails."""
    try:
        importlib.import_module("sskt_engine.catalog")
        return True
    except Exception as exc:  # noqa: BLE001 - any failure here only hides the lists
        _note("engine registries", exc)
        return False


def _entries(registry: Registry[Info]) -> list[Info]:
    return registry.entries() if _load_builtins() else []


def architectures() -> list[ArchitectureInfo]:
    return _entries(registry.ARCHITECTURES)


def methods() -> list[MethodInfo]:
    return _entries(registry.METHODS)


def datasets() -> list[DatasetInfo]:
    return _entries(registry.DATASETS)


def source_kind(name: str) -> SourceKindInfo | None:
    """How a kind of source is edited (its keys, what its path names); None when unknown."""
    return entry(_entries(registry.SOURCE_KINDS), name)


def entry(entries: list[Info], name: str) -> Info | None:
    return next((e for e in entries if e.name == name), None)


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


def describe_method(name: str) -> list[dict[str, Any]]:
    """The fields of one method's options dataclass (the base fields when it is unknown)."""
    info = entry(methods(), name)
    return describe(info.options if info is not None else engine_config.MethodOptions)


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
        from sskt_engine.validation_preview import validation_predictions

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
