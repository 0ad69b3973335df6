"""The preset being edited: a plain nested dict plus its file, dirty state and validity.

The forms write single values into ``raw``; after each change the document is rebuilt
into an ``ExperimentConfig`` with the engine's own ``from_dict``, so the GUI accepts
exactly what ``sskt train`` accepts. ``from_dict`` stops at the first bad key, so the
document removes that key (its default then applies) and validates again, collecting
every problem at once to mark each field where it is.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6 import QtCore

import sskt_engine.catalog  # noqa: F401  (the schema reads the registries: fill them with the built-ins)
from sskt_engine.config import ExperimentConfig, from_dict, load_preset, method_options, save_preset, to_dict
from sskt_engine.errors import PresetError
from sskt_engine.key_paths import KeyPath, parse_key_path

MAX_ERRORS = 25


def _remove(raw: Any, path: KeyPath) -> bool:
    """Delete the key at ``path`` so its default applies; False when there is nothing to remove."""
    node = raw
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1] if path else None
    if isinstance(node, dict) and isinstance(last, str) and last in node:
        del node[last]
        return True
    return False


def collect_errors(raw: dict) -> tuple[ExperimentConfig | None, list[PresetError]]:
    """The config when ``raw`` is valid, else every problem found (first one first)."""
    try:
        return from_dict(raw), []
    except PresetError as exc:
        first = exc
    errors = [first]
    work = copy.deepcopy(raw)
    seen = {first.path}
    if not _remove(work, parse_key_path(first.path)):
        return None, errors
    for _ in range(MAX_ERRORS):
        try:
            from_dict(work)
            break
        except PresetError as exc:
            if exc.path in seen:
                break
            seen.add(exc.path)
            errors.append(exc)
            if not _remove(work, parse_key_path(exc.path)):
                break
        except Exception:  # noqa: BLE001 - a broken registry must not break validation
            break
    return None, errors


class PresetDocument(QtCore.QObject):
    """Emits ``changed`` after every edit, ``replaced`` when a whole preset is loaded."""

    changed = QtCore.Signal()
    replaced = QtCore.Signal()
    state_changed = QtCore.Signal()  # dirty flag, path or validity changed

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.path: Path | None = None
        self.title: str = "Untitled"
        self.read_only = False  # built-in presets: Save becomes Save As
        self.raw: dict = to_dict(ExperimentConfig())
        self._saved: dict = copy.deepcopy(self.raw)
        self._method_sections: dict[str, dict] = {}  # the sections of methods chosen before
        self.config: ExperimentConfig | None = None
        self.errors: list[PresetError] = []
        self.validate()

    # -- whole documents -------------------------------------------------------------
    def new(self) -> None:
        self._replace(to_dict(ExperimentConfig()), path=None, title="Untitled", read_only=False, dirty=False)

    def open(self, path: Path, *, read_only: bool = False) -> None:
        """Raises PresetError with the engine's message when the file is not a valid preset."""
        cfg = load_preset(path)
        self._replace(to_dict(cfg), path=None if read_only else Path(path), title=Path(path).name,
                      read_only=read_only, dirty=False)

    def adopt(self, cfg: ExperimentConfig, title: str) -> None:
        """Take a config that has no file of its own yet (a run's preset): unsaved."""
        self._replace(to_dict(cfg), path=None, title=title, read_only=False, dirty=True)

    def _replace(self, raw: dict, *, path: Path | None, title: str, read_only: bool, dirty: bool) -> None:
        self.raw = raw
        self._method_sections = {}
        self.path = path
        self.title = title
        self.read_only = read_only
        self._saved = {} if dirty else copy.deepcopy(raw)
        self.validate()
        self.replaced.emit()
        self.changed.emit()
        self.state_changed.emit()

    def save(self, path: Path | None = None) -> Path:
        """Write through the engine's preset module. Raises PresetError while a value is invalid."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file name")
        if self.config is None:
            raise self.errors[0]
        save_preset(self.config, target)
        self.path = target
        self.title = target.name
        self.read_only = False
        # What was written is the normalised config; keep the form in step with the file.
        self.raw = to_dict(self.config)
        self._saved = copy.deepcopy(self.raw)
        self.state_changed.emit()
        return target

    # -- single values ---------------------------------------------------------------
    def get(self, path: KeyPath, default: Any = None) -> Any:
        node: Any = self.raw
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def set(self, path: KeyPath, value: Any) -> None:
        if tuple(path) == ("method", "name"):
            self._switch_method(value)
            return
        node: Any = self.raw
        for part, nxt in zip(path[:-1], path[1:]):
            if isinstance(node, dict):
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
            else:
                node = node[part]
        last = path[-1]
        if _has(node, last) and type(node[last]) is type(value) and node[last] == value:
            return
        node[last] = value
        self._after_edit()

    def _switch_method(self, name: Any) -> None:
        """Each method reads its own keys: choosing another one swaps the whole ``method:``
        section, and choosing the first again brings back the values it had."""
        section = self.raw.get("method") if isinstance(self.raw.get("method"), dict) else {}
        old = section.get("name")
        if old == name:
            return
        if isinstance(old, str):
            self._method_sections[old] = copy.deepcopy(section)
        if name in self._method_sections:
            self.raw["method"] = self._method_sections[name]
        else:
            try:
                self.raw["method"] = to_dict(method_options(name))
            except Exception:  # noqa: BLE001 - an unknown name: validation says so at the name
                self.raw["method"] = {"name": name}
        self._after_edit()

    def set_sources(self, sources: list[dict]) -> None:
        self.raw["sources"] = sources
        self._after_edit()

    def _after_edit(self) -> None:
        was_dirty, was_valid = self.is_dirty(), self.config is not None
        self.validate()
        self.changed.emit()
        if was_dirty != self.is_dirty() or was_valid != (self.config is not None):
            self.state_changed.emit()

    # -- state -----------------------------------------------------------------------
    def validate(self) -> None:
        self.config, self.errors = collect_errors(self.raw)

    def error_map(self) -> dict[str, str]:
        return {e.path: e.reason for e in self.errors}

    def is_dirty(self) -> bool:
        return self.raw != self._saved

    def is_valid(self) -> bool:
        return self.config is not None


def _has(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    if isinstance(node, list):
        return isinstance(key, int) and 0 <= key < len(node)
    return False
