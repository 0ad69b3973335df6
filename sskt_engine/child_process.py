"""How this program starts another process of itself.

From a Python install, a child is ``python -m MODULE ARGS``. In the frozen (PyInstaller) bundle
``sys.executable`` is the app's own program and there is no Python to give ``-m`` to, so a child
is that program with a dispatch argument, which the bundle's entry scripts recognise before
anything else (``run_dispatched``) and answer by running the module's main function in-process::

    child_command("sskt_engine.cli", ["train", "p.yaml"])
        python -m sskt_engine.cli train p.yaml
        <bundle>/sskt-studio --sskt-run-module sskt_engine.cli train p.yaml            (frozen)

    child_command("sskt_engine.cli", ["train", "p.yaml"], nproc=2)     # torchrun, 2 processes
        python -m torch.distributed.run --standalone --nproc_per_node=2 -m sskt_engine.cli train p.yaml
        <bundle>/sskt-studio --sskt-run-module torch.distributed.run --standalone --nproc_per_node=2
            --no-python <bundle>/sskt-studio --sskt-run-module sskt_engine.cli train p.yaml   (frozen)

Only the modules in ``CHILD_MODULES`` can be dispatched to: a frozen program holds only the
modules its build collected. Imports nothing of the engine, nor Qt or torch: the GUI's entry
script asks here first, and ``cli`` builds its torchrun command here.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Sequence

DISPATCH_ARG = "--sskt-run-module"
TORCHRUN = "torch.distributed.run"
ENGINE_CLI = "sskt_engine.cli"


def is_frozen() -> bool:
    """Whether this is the PyInstaller bundle (``sys.executable`` is the app, not a Python)."""
    return bool(getattr(sys, "frozen", False))


def child_command(module: str, args: Sequence[str] = (), *, nproc: int = 1,
                  executable: str | None = None) -> list[str]:
    """The command line that runs ``module`` (one of ``CHILD_MODULES``) with ``args`` in a new
    process; with ``nproc`` > 1, ``nproc`` copies of it under torchrun on this machine.
    ``executable``: another Python (or bundle program) than this one."""
    program = executable or sys.executable
    frozen = is_frozen()

    def run(name: str, rest: Sequence[str]) -> list[str]:
        return [program, DISPATCH_ARG, name, *rest] if frozen else [program, "-m", name, *rest]

    if nproc <= 1:
        return run(module, args)
    launcher = ["--standalone", f"--nproc_per_node={nproc}"]
    # torchrun starts each worker as `python -u -m MODULE ...`; a bundle has no python, so
    # torchrun is told to start the program itself (--no-python) with the dispatch argument.
    worker = ["--no-python", program, DISPATCH_ARG, module, *args] if frozen else ["-m", module, *args]
    return run(TORCHRUN, [*launcher, *worker])


# Modules a child may run. Each has ``main(argv: list[str])``, as ``python -m`` runs it; the bundle's
# spec lists them among its hidden imports, since they are imported by name here.
CHILD_MODULES: tuple[str, ...] = (ENGINE_CLI, TORCHRUN)


def run_dispatched(argv: Sequence[str]) -> int | None:
    """For the bundle's entry scripts, given ``sys.argv[1:]``: when it starts with the dispatch
    argument, run the named module as ``python -m`` would and return its exit code; ``None``
    when it does not (the program then does what it is for)."""
    if not argv or argv[0] != DISPATCH_ARG:
        return None
    if len(argv) < 2 or argv[1] not in CHILD_MODULES:
        named = argv[1] if len(argv) > 1 else "nothing"
        print(f"error: {DISPATCH_ARG} runs one of {', '.join(CHILD_MODULES)}, not {named}", file=sys.stderr)
        return 2
    module, rest = argv[1], list(argv[2:])
    sys.argv = [module, *rest]  # what the module's own argument parsing and messages see under -m
    try:
        code = importlib.import_module(module).main(rest)
    except Exception:  # noqa: BLE001 - as `python -m` does: the traceback on stderr, exit status 1
        traceback.print_exc()  # torchrun raises ChildFailedError when a worker failed
        return 1
    return code if isinstance(code, int) else 0  # torchrun's main returns None


__all__ = ["DISPATCH_ARG", "CHILD_MODULES", "child_command", "run_dispatched", "is_frozen"]
