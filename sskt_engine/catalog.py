"""Fill the leaf registries (``sskt_engine.registry``) with everything built in.

Importing a package that implements methods, datasets, architectures or source kinds
registers its entries; this module is the one place that imports them all, so a process
that reads presets (the CLI, the GUI, the trainer, a test) calls ``load_builtins()`` once
at start and the preset schema, which reads only the registries, sees every name. Plugins
come on top (``sskt_engine.plugins.load_plugins``).
"""

from __future__ import annotations


def load_builtins() -> None:
    """Register the built-in entries (idempotent: Python imports each module once)."""
    # the order is the order the GUI lists them in: torchvision sources before compiled files
    from . import models, data, methods, sources, places365, compiled_sources  # noqa: F401  (they register themselves)


load_builtins()
