"""A stop asked for during a long setup phase (decoding a big image folder) ends that phase now,
not after it.

The trainer checks its stop event between setup phases; a phase of many small steps (one image
decoded after another) checks in between them through this context. A loop calls
``raise_if_stopped()`` now and then; the trainer wraps the phase in ``stop_checks(...)``. Outside
such a block (the GUI's dataset preview, a test) the call costs a context-variable read.

A context variable rather than an argument, so the dataset loaders' signatures (and plugins'
loaders) need not carry a stop event they would only pass on.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

from .errors import StoppedBeforeStart

_check: contextvars.ContextVar[tuple[Callable[[], bool], str] | None] = contextvars.ContextVar(
    "sskt_stop_check", default=None)


@contextlib.contextmanager
def stop_checks(is_stopped: Callable[[], bool], phase: str) -> Iterator[None]:
    """Within the block, ``raise_if_stopped()`` raises ``StoppedBeforeStart(phase)`` once
    ``is_stopped()`` is true."""
    token = _check.set((is_stopped, phase))
    try:
        yield
    finally:
        _check.reset(token)


def raise_if_stopped() -> None:
    check = _check.get()
    if check is not None and check[0]():
        raise StoppedBeforeStart(check[1])
