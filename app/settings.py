"""What the app remembers between launches, in the appdirs user config dir.

A small JSON file with a ``settings_version`` and a migration step per version (the
Orange3 ``migrate_settings`` idea), written atomically so a crash never leaves half a file.
``SSKT_STUDIO_CONFIG_DIR`` points it elsewhere (tests, portable installs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import appdirs

from sskt_engine.atomic import atomic_write_text

SETTINGS_VERSION = 1
MAX_RECENT = 8

# Each entry upgrades a settings dict of version N to version N + 1.
_MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def config_dir() -> Path:
    env = os.environ.get("SSKT_STUDIO_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    return Path(appdirs.user_config_dir("sskt-studio", "SSKT"))


class AppSettings:
    """Geometry, window state, last preset, recent presets and the runs folder."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / "settings.json"
        self._data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"settings_version": SETTINGS_VERSION}
        if not isinstance(data, dict):
            return {"settings_version": SETTINGS_VERSION}
        version = data.get("settings_version", SETTINGS_VERSION)
        if not isinstance(version, int) or version > SETTINGS_VERSION:
            # Written by a newer build: start clean rather than misread it.
            return {"settings_version": SETTINGS_VERSION}
        while version < SETTINGS_VERSION:
            data = _MIGRATIONS[version](data)
            version += 1
        data["settings_version"] = SETTINGS_VERSION
        return data

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self._data, indent=2))
        except OSError:
            pass  # losing the window geometry is not worth an error dialog

    # -- typed accessors ---------------------------------------------------------------
    @property
    def theme(self) -> str:
        """"system" (follow the desktop), "light" or "dark" (Preferences)."""
        value = self._data.get("theme")
        return value if value in ("system", "light", "dark") else "system"

    @theme.setter
    def theme(self, value: str) -> None:
        self._data["theme"] = value if value in ("system", "light", "dark") else "system"

    @property
    def threads(self) -> int:
        """CPU threads for training in the app; 0: PyTorch's own choice (Preferences)."""
        value = self._data.get("threads")
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1024 else 0

    @threads.setter
    def threads(self, value: int) -> None:
        self._data["threads"] = int(value)

    @property
    def default_device(self) -> str:
        """``train.device`` of a new experiment (Preferences); "auto" unless chosen."""
        value = self._data.get("default_device")
        return value if isinstance(value, str) and value.strip() else "auto"

    @default_device.setter
    def default_device(self, value: str) -> None:
        self._data["default_device"] = value.strip() or "auto"

    @property
    def geometry(self) -> str | None:
        return self._data.get("geometry")

    @geometry.setter
    def geometry(self, value: str | None) -> None:
        self._data["geometry"] = value

    @property
    def window_state(self) -> str | None:
        return self._data.get("window_state")

    @window_state.setter
    def window_state(self, value: str | None) -> None:
        self._data["window_state"] = value

    @property
    def last_preset(self) -> Path | None:
        value = self._data.get("last_preset")
        return Path(value) if isinstance(value, str) and value else None

    @last_preset.setter
    def last_preset(self, value: Path | None) -> None:
        self._data["last_preset"] = str(value) if value else None

    @property
    def recent_presets(self) -> list[Path]:
        values = self._data.get("recent_presets") or []
        return [Path(v) for v in values if isinstance(v, str)]

    def add_recent(self, path: Path) -> None:
        path = Path(path).resolve()
        recent = [p for p in self.recent_presets if p != path]
        self._data["recent_presets"] = [str(p) for p in [path, *recent][:MAX_RECENT]]

    def clear_recent(self) -> None:
        self._data["recent_presets"] = []

    @property
    def runs_root(self) -> Path | None:
        value = self._data.get("runs_root")
        return Path(value) if isinstance(value, str) and value else None

    @runs_root.setter
    def runs_root(self, value: Path | None) -> None:
        self._data["runs_root"] = str(value) if value else None
