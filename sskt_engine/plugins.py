"""Architectures from outside this project: installed plugin packages and the user models folder.

Two places, both read by ``load_plugins()`` (call it once at start, before presets are read or
architecture lists are shown; later calls return the first call's warnings and load nothing):

1. **Entry points** in the group ``sskt_studio.architectures``. Each entry point names a
   *function* ``register(registry)``; it is called with a registry that behaves like
   ``sskt_engine.models.ARCHITECTURES`` (``add``, ``register`` decorator, ``get``, ``keys``...).
   A package declares it in its ``pyproject.toml``::

       [project.entry-points."sskt_studio.architectures"]
       my_nets = "my_package.sskt:register"

   and registers with ``registry.add("my_net", MyNet, input_size=224, description="...")``, where
   ``MyNet(num_classes)`` returns a network mapping images to logits. ``tests/plugin_example``
   is a complete, documented example.

2. **The user models folder**, ``<user config dir>/models`` (``user_models_dir()``; the config dir
   is appdirs' ``user_config_dir("sskt-studio", "SSKT")``, or ``$SSKT_STUDIO_CONFIG_DIR``): every
   ``*.py`` file directly in it (not in subfolders, not starting with ``_`` or ``.``) is imported,
   and its ``register(registry)`` function, if it has one, is called as for entry points. Files
   that call ``ARCHITECTURES.add`` at import time work too. Only this folder is read: the folder
   is never put on ``sys.path``, a link to a file outside it is skipped, and a folder or file
   that belongs to another user (root excepted) or that other users may write to is skipped.
   The GUI shows ``USER_MODELS_NOTICE`` with it.

Whatever goes wrong in a plugin (it cannot be imported, raises, registers a name that exists,
registers something that is not a builder, takes longer than ``time_limit_s()`` to import or
register) becomes one warning sentence in the list ``load_plugins()`` returns, for the GUI and the
CLI to show; the app starts anyway. A plugin that fails part-way registers nothing: ``register``
writes into a staging registry that is copied into ``ARCHITECTURES`` only when it returned, and
what an import added straight into ``ARCHITECTURES`` is taken out again when the import fails. Every architecture registered here carries an
``origin`` in its metadata ("plugin example (sskt-example-plugin 0.1.0)", "user models folder:
my_net.py") so the GUI can show where it came from.

Both are code running with the user's permissions: installing a plugin package or putting a
file in the folder is the user's decision to trust it; this module only makes sure nothing is
picked up from anywhere else.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import os
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from .catalog import load_builtins
from .registry import ARCHITECTURES, ArchitectureInfo, Registry
from .user_folders import CONFIG_DIR_ENV, user_config_dir, user_models_dir  # noqa: F401  (re-exported)

ENTRY_POINT_GROUP = "sskt_studio.architectures"
TIMEOUT_ENV = "SSKT_STUDIO_PLUGIN_TIMEOUT"
DEFAULT_TIME_LIMIT_S = 20.0  # an import that takes longer is taken for a hang (a cold torch import is ~3 s)
USER_MODELS_NOTICE = (
    "Python files in this folder run as code, with your permissions, every time SSKT Studio starts. "
    "Only put files here that you wrote or trust. Architectures are loaded from this folder only, never "
    "from a preset's, a dataset's or a model file's folder.")

_KEY_RE = re.compile(r"^[A-Za-z0-9_][\w.+-]{0,79}$")
_lock = threading.Lock()
_warnings: list[str] | None = None  # None until load_plugins has run once


def load_plugins() -> list[str]:
    """Register the built-in entries, then load plugin architectures once; return the warnings
    (empty when all went well). Every entry point of the app calls this before reading a preset."""
    global _warnings
    load_builtins()  # first, so a plugin can neither take a built-in name nor miss one it builds on
    with _lock:
        if _warnings is None:
            _warnings = _load_entry_points() + _load_user_models(user_models_dir())
        return list(_warnings)


# ----------------------------------------------------------------------------- staging

class _StagingRegistry(Registry):
    """What a plugin's ``register`` sees: reads fall through to the real registry, writes stay here.
    Plugins add ``ArchitectureInfo`` entries, or use the older ``add(key, builder, **meta)`` form."""

    def __init__(self, target: Registry):
        super().__init__(target.kind, legacy=_staged_info)
        self._target = target

    def add(self, info: Any, value: Any = None, **meta: Any) -> Any:
        key = info if isinstance(info, str) else getattr(info, "name", None)
        if key in self._target:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        return super().add(info, value, **meta)

    def staged(self) -> list:
        return super().entries()

    def get(self, key: str):
        return super().get(key) if Registry.__contains__(self, key) else self._target.get(key)

    def __contains__(self, key: object) -> bool:
        return Registry.__contains__(self, key) or key in self._target

    def keys(self) -> list[str]:
        return self._target.keys() + super().keys()

    def entries(self) -> list:
        return self._target.entries() + super().entries()


def _staged_info(key: Any, build: Any, meta: dict[str, Any]) -> Any:
    """The older ``add(key, builder, **meta)`` call as an entry; checked later by ``_commit``,
    so a wrong name or builder becomes a warning rather than an exception inside the plugin."""
    known = {name: meta[name] for name in ("input_size", "family", "description", "torchvision_name")
             if name in meta}
    return _Staged(name=key, build=build, known=known)


@dataclasses.dataclass(frozen=True)
class _Staged:
    name: Any
    build: Any
    known: dict[str, Any]


def _commit(staging: _StagingRegistry, origin: str, label: str) -> list[str]:
    """Copy a plugin's valid entries into ARCHITECTURES; a warning for each refused one."""
    warnings = []
    for entry in staging.staged():
        if not isinstance(entry.name, str) or not _KEY_RE.match(entry.name):
            warnings.append(f"{label} registered an architecture named {entry.name!r}, which was skipped: names are "
                            f"1 to 80 letters, digits, _ . + -")
        elif entry.name in ARCHITECTURES:
            warnings.append(f"{label} registered architecture {entry.name!r}, which already exists; it was skipped")
        elif not callable(entry.build):
            warnings.append(f"{label} registered architecture {entry.name!r} as a {type(entry.build).__name__}, not "
                            f"a function of the class count; it was skipped")
        elif _wrong_signature(entry.build):
            warnings.append(_signature_warning(label, entry.name, entry.build))
        elif isinstance(entry, ArchitectureInfo):
            ARCHITECTURES.add(dataclasses.replace(entry, origin=origin))
        else:
            ARCHITECTURES.add(ArchitectureInfo(name=entry.name, build=entry.build, origin=origin, **entry.known))
    return warnings


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0].strip()}" if lines else type(exc).__name__
    return text[:300]


def time_limit_s() -> float:
    """How long one plugin may take to import or register (``$SSKT_STUDIO_PLUGIN_TIMEOUT``)."""
    try:
        return max(0.1, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIME_LIMIT_S)))
    except ValueError:
        return DEFAULT_TIME_LIMIT_S


class _Overran(Exception):
    pass


def _guarded(fn: Callable[[], Any]) -> Any:
    """Run a plugin's code with a time limit, all or nothing: whatever it registered straight
    into ARCHITECTURES is taken out again when it raises or overruns. Python cannot stop a
    thread, so an overrunning import goes on in a daemon thread, which may not register
    anything any more and does not keep the process from exiting."""
    before = set(ARCHITECTURES.keys())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  SystemExit too: handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="sskt-plugin-loader", daemon=True)
    thread.start()
    thread.join(time_limit_s())
    if thread.is_alive():
        ARCHITECTURES.refuse_thread(thread.ident or 0)
        box["error"] = _Overran()
    if "error" in box:
        for key in set(ARCHITECTURES.keys()) - before:
            ARCHITECTURES.remove(key)
        raise box["error"]
    return box.get("value")


def _failure(label: str, doing: str, exc: BaseException) -> str:
    if isinstance(exc, _Overran):
        return (f"{label} did not finish {doing} within {time_limit_s():g} s and was skipped (set "
                f"{TIMEOUT_ENV} to allow more)")
    return f"{label} failed while {doing} ({_first_line(exc)})"


def _run_register(register: Callable[[Registry], Any], origin: str, label: str,
                  registered_elsewhere: bool = False) -> list[str]:
    staging = _StagingRegistry(ARCHITECTURES)
    try:
        _guarded(lambda: register(staging))
    except (Exception, SystemExit) as exc:  # noqa: BLE001  a plugin's bug must not stop the app
        if isinstance(exc, _Overran):
            return [_failure(label, "registering its architectures", exc) + "; none of them were added"]
        return [f"{label} failed while registering its architectures and none of them were added "
                f"({_first_line(exc)})"]
    warnings = _commit(staging, origin, label)
    if not staging.staged() and not registered_elsewhere:
        warnings.append(f"{label} registered no architecture")
    return warnings


# ----------------------------------------------------------------------------- entry points

def _entry_points() -> list:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_points() -> list[str]:
    try:
        points = _entry_points()
    except Exception as exc:  # noqa: BLE001  broken package metadata somewhere in the environment
        return [f"the installed plugin packages could not be listed ({_first_line(exc)})"]
    warnings: list[str] = []
    for point in points:
        dist = getattr(point, "dist", None)
        package = f"{dist.name} {dist.version}" if dist is not None else point.value.split(":")[0]
        label = f"architecture plugin {point.name!r} ({package})"
        try:
            register = _guarded(point.load)
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            warnings.append(_failure(label, "loading", exc) if isinstance(exc, _Overran)
                            else f"{label} could not be loaded ({_first_line(exc)})")
            continue
        if not callable(register):
            warnings.append(f"{label} names a {type(register).__name__}, not a function register(registry); "
                            f"it was skipped")
            continue
        warnings += _run_register(register, f"plugin {point.name} ({package})", label)
    return warnings


# ----------------------------------------------------------------------------- user models folder

def _untrusted(path: Path) -> str:
    """Why a file or folder of the user models folder may not run, or "" when it may: it must
    belong to this user (or root) and be writable by nobody else, or someone else could put
    code in it that runs with this user's permissions."""
    if os.name != "posix":
        return ""
    info = path.stat()
    if info.st_uid not in (os.getuid(), 0):
        return "belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "can be changed by other users"
    return ""


def _module_name(file: Path) -> str:
    return "sskt_user_models_" + re.sub(r"\W", "_", file.stem)


def _load_user_models(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    why = _untrusted(folder)
    if why:
        return [f"the user models folder {folder} {why}, so none of its files were loaded; it must be yours and "
                f"writable by you only (chown, chmod go-w)"]
    warnings: list[str] = []
    root = folder.resolve()
    for file in sorted(folder.glob("*.py")):
        if file.name.startswith(("_", ".")):
            continue
        label = f"{file.name} in the user models folder"
        if file.resolve().parent != root:
            warnings.append(f"{label} is a link to a file outside the folder; it was skipped")
            continue
        why = _untrusted(file.resolve())
        if why:
            warnings.append(f"{label} {why}; it was skipped (it must be yours and writable by you only)")
            continue
        warnings += _import_user_file(file, label)
    return warnings


def _import_user_file(file: Path, label: str) -> list[str]:
    name = _module_name(file)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        return [f"{label} cannot be imported"]
    module = importlib.util.module_from_spec(spec)
    before = set(ARCHITECTURES.keys())
    sys.modules[name] = module  # dataclasses and pickling inside the file look their module up here
    try:
        _guarded(lambda: spec.loader.exec_module(module))
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        sys.modules.pop(name, None)
        if isinstance(exc, _Overran):
            return [_failure(label, "importing", exc)]
        return [f"{label} could not be imported ({_first_line(exc)})"]
    origin = f"user models folder: {file.name}"
    direct, warnings = _check_direct([key for key in ARCHITECTURES.keys() if key not in before], label)
    for key in direct:  # registered at import time, straight into ARCHITECTURES
        info = ARCHITECTURES.get(key)
        if info.origin == "built-in":
            ARCHITECTURES.replace(dataclasses.replace(info, origin=origin))
    register = getattr(module, "register", None)
    if callable(register):
        return warnings + _run_register(register, origin, label, registered_elsewhere=bool(direct))
    if not direct and not warnings:
        return [f"{label} registered no architecture (define register(registry) in it)"]
    return warnings


def _wrong_signature(build: Callable[..., Any]) -> bool:
    """Whether ``build(num_classes)`` cannot be called as the app calls it (found now, as one
    warning naming the file, rather than as a traceback when a run builds the network)."""
    import inspect

    try:
        inspect.signature(build).bind(10)
    except TypeError:
        return True
    except ValueError:  # no signature to read (a builtin): it gets the benefit of the doubt
        return False
    return False


def _signature_warning(label: str, name: str, build: Callable[..., Any]) -> str:
    import inspect

    try:
        shown = f"{getattr(build, '__name__', 'builder')}{inspect.signature(build)}"
    except (TypeError, ValueError):
        shown = repr(build)
    return (f"{label} registered architecture {name!r} with builder {shown}, which cannot be called with the class "
            f"count alone (the app calls build(num_classes)); it was skipped")


def _check_direct(keys: list[str], label: str) -> tuple[list[str], list[str]]:
    """Entries a file added straight into ARCHITECTURES at import get the checks ``_commit``
    gives staged ones; a refused one is taken out again."""
    kept, warnings = [], []
    for key in keys:
        info = ARCHITECTURES.get(key)
        if not _KEY_RE.match(key):
            warnings.append(f"{label} registered an architecture named {key!r}, which was skipped: names are 1 to "
                            f"80 letters, digits, _ . + -")
        elif not callable(info.build):
            warnings.append(f"{label} registered architecture {key!r} as a {type(info.build).__name__}, not a "
                            f"function of the class count; it was skipped")
        elif _wrong_signature(info.build):
            warnings.append(_signature_warning(label, key, info.build))
        else:
            kept.append(key)
            continue
        ARCHITECTURES.remove(key)
    return kept, warnings
