"""Training methods. Each turns a batch into named losses and owns its optimizer steps,
so methods with several networks (DML) or a meta step (MAXL) need no trainer changes.

Each module declares its options (a ``MethodOptions`` subclass: the keys it reads under
``method:``) and registers a ``MethodInfo`` in ``sskt_engine.registry.METHODS``.
"""

from __future__ import annotations

from ..registry import METHODS, MethodInfo

from . import supervised, sskt, kd, dml, maxl, fitnets  # noqa: E402,F401  (they register themselves)

__all__ = ["METHODS", "MethodInfo"]
