"""Frozen entry point of the bundle's ``sskt-studio`` program (PyInstaller runs this as ``__main__``)."""

import multiprocessing
import sys


def entry() -> int:
    # A frozen program has no separate python to start worker processes with (torch
    # DataLoader workers under "spawn", torchrun and its ranks): it acts as one when asked.
    multiprocessing.freeze_support()
    from sskt_engine.child_process import run_dispatched

    code = run_dispatched(sys.argv[1:])  # `<program> --sskt-run-module MODULE ...`: python -m MODULE ...
    if code is not None:
        return code
    from app.main import main

    return main()


if __name__ == "__main__":
    sys.exit(entry())
