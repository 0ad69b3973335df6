"""A small registry: named entries with metadata the GUI and CLI can list.

Modelled on timm's model registry: registering twice is a bug, so it raises;
looking up an unknown key suggests the closest names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import UserInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    key: str
    value: T
    meta: dict[str, Any] = field(default_factory=dict)


class UnknownEntry(UserInputError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, key: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@ARCHITECTURES.register("resnet20", input_size=32)``."""

        def add(value: T) -> T:
            self.add(key, value, **meta)
            return value

        return add

    def add(self, key: str, value: T, **meta: Any) -> None:
        if key in self._entries:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[key] = Entry(key, value, dict(meta))

    def get(self, key: str) -> T:
        return self.entry(key).value

    def entry(self, key: str) -> Entry[T]:
        try:
            return self._entries[key]
        except KeyError:
            close = difflib.get_close_matches(key, list(self._entries), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(self.keys())}"
            raise UnknownEntry(f"unknown {self.kind} {key!r}{hint}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
