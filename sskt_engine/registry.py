"""The engine's registries: a leaf module that imports nothing of the engine but its errors.

Modelled on timm's ``_registry.py``: the modules that implement methods, datasets,
architectures and source kinds import this leaf and register typed entries into it; the
preset schema (``config.py``) and the GUI read it, never the packages that register. So
the schema imports without torch, and nothing here can take part in an import cycle.

Who fills the registries: importing ``sskt_engine.catalog`` (``load_builtins()``) imports
every package that registers the built-in entries; plugins add architectures afterwards
(``sskt_engine.plugins``). Registering a name twice is a bug, so it raises; looking up an
unknown name suggests the closest ones.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from .errors import UserInputError

T = TypeVar("T")


# ----------------------------------------------------------------------------- typed entries

@dataclass(frozen=True)
class ArchitectureInfo:
    """A target or source architecture. ``build(num_classes)`` returns a fresh, randomly
    initialised ``nn.Module`` mapping images (or clips, for a video network) to logits."""

    name: str
    build: Callable[[int], Any]
    input_size: int = 224  # the side the network was designed for
    family: str = ""
    description: str = ""
    torchvision_name: str = ""  # for torchvision models: the name torchvision knows
    origin: str = "built-in"  # where a plugin's entry came from, for the GUI
    # 0: an image network ([B, 3, H, W]); otherwise a video network taking clips [B, 3, T, H, W],
    # and the clip length it was designed for (any T works; this one is its default).
    clip_len: int = 0


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset. ``load(data_config)`` returns its full train split and its own test/val split
    (``sskt_engine.data.DatasetSplits``); subsets and val_split are applied by the engine."""

    name: str
    load: Callable[[Any], Any]
    description: str = ""
    needs_root: bool = True  # reads files from data.root
    # data.root may also name one file, of this file-dialog filter (e.g. "CSV files (*.csv)");
    # empty: root is always a folder
    root_file_filter: str = ""
    image_size: int | None = None  # None: set by data.image_size or the files
    num_classes: int | None = None  # None: found in the files
    task: str = "single_label"  # the kind of labels; see sskt_engine.tasks
    video: bool = False  # samples are clips: the data keys clip_len, frame_stride, val_clips (and split) apply


@dataclass(frozen=True)
class MethodInfo:
    """A training method. ``build(method_context)`` returns the method object; ``options`` is
    the frozen dataclass of the keys it reads under ``method:`` in a preset (its ``name`` field
    holds the method's name)."""

    name: str
    build: Callable[[Any], Any]
    options: type
    description: str = ""
    min_sources: int = 0  # sources the method cannot run without
    uses_sources: bool = False  # reads the sources at all (KD reads one as its teacher)


@dataclass(frozen=True)
class SourceKindInfo:
    """Where a source model comes from. ``build(source_config)`` returns the loaded source
    network (``sources.build_source`` freezes it and moves it to the device); ``required`` maps
    each ``SourceConfig`` key this kind cannot do without to the sentence said when it is empty.

    The rest tells the GUI how to edit one without knowing the kind: ``keys`` are the
    ``SourceConfig`` keys a person sets for it (empty: all), ``path_is`` what its ``path`` names ("file",
    "folder" or "" for none) and ``file_filter`` the file dialog's filter for it."""

    name: str
    build: Callable[[Any], Any]
    description: str = ""
    required: Mapping[str, str] = field(default_factory=dict)
    title: str = ""  # what a person calls it, e.g. "checkpoint file"
    keys: tuple[str, ...] = ()
    path_is: str = ""
    file_filter: str = ""


# ----------------------------------------------------------------------------- the registry type

class UnknownEntry(UserInputError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Entries of one typed info class, keyed by their ``name``.

    ``legacy(key, value, meta)`` turns the older ``add(key, builder, **meta)`` call into an
    entry, so architecture plugins written against that form keep working."""

    def __init__(self, kind: str, legacy: Callable[[str, Any, dict[str, Any]], T] | None = None):
        self.kind = kind
        self._legacy = legacy
        self._entries: dict[str, T] = {}
        self._refused_threads: set[int] = set()

    def add(self, info: T | str, value: Any = None, **meta: Any) -> T:
        if isinstance(info, str):
            if self._legacy is None:
                raise TypeError(f"{self.kind} entries are registered as info objects, not (key, value) pairs")
            info = self._legacy(info, value, meta)
        key = info.name  # type: ignore[attr-defined]
        if threading.get_ident() in self._refused_threads:
            raise RuntimeError(f"{self.kind} {key!r} came from a plugin that was given up on; it was not registered")
        if key in self._entries:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[key] = info
        return info

    def register(self, key: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator form of the legacy call: ``@ARCHITECTURES.register("my_net", input_size=32)``."""

        def add(value: Any) -> Any:
            self.add(key, value, **meta)
            return value

        return add

    def get(self, key: str) -> T:
        try:
            return self._entries[key]
        except KeyError:
            close = difflib.get_close_matches(str(key), list(self._entries), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(self.keys())}"
            raise UnknownEntry(f"unknown {self.kind} {key!r}{hint}") from None

    def remove(self, key: str) -> None:
        """Take an entry out again: what a plugin registered before it failed."""
        self._entries.pop(key, None)

    def refuse_thread(self, ident: int) -> None:
        """Refuse every later ``add`` from thread ``ident``: a plugin import that overran its
        time limit goes on in the background, and must not register anything after the fact."""
        self._refused_threads.add(ident)

    def replace(self, info: T) -> None:
        """Swap an entry for a changed copy (a plugin's origin filled in after the fact)."""
        key = info.name  # type: ignore[attr-defined]
        if key not in self._entries:
            raise KeyError(key)
        self._entries[key] = info

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[T]:
        return list(self._entries.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _legacy_architecture(key: str, build: Any, meta: dict[str, Any]) -> ArchitectureInfo:
    known = {name: meta[name] for name in ("input_size", "family", "description", "torchvision_name", "origin",
                                           "clip_len")
             if name in meta}
    return ArchitectureInfo(name=key, build=build, **known)


ARCHITECTURES: Registry[ArchitectureInfo] = Registry("architecture", legacy=_legacy_architecture)
DATASETS: Registry[DatasetInfo] = Registry("dataset")
METHODS: Registry[MethodInfo] = Registry("method")
SOURCE_KINDS: Registry[SourceKindInfo] = Registry("source kind")
