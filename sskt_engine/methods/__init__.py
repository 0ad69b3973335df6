"""Training methods. Each turns a batch into named losses and owns its optimizer steps,
so methods with several networks (DML) or a meta step (MAXL) need no trainer changes."""

from __future__ import annotations

from ..registry import Registry

# Values are TrainingMethod subclasses; metadata: description, min_sources, networks.
METHODS: Registry[type] = Registry("method")

from . import supervised, sskt, kd, dml, maxl  # noqa: E402,F401  (they register themselves)
