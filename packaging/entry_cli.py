"""Frozen entry point of the bundle's ``sskt`` program (PyInstaller runs this as ``__main__``)."""

import multiprocessing
import sys


def entry() -> int:
    multiprocessing.freeze_support()
    from sskt_engine.child_process import run_dispatched

    code = run_dispatched(sys.argv[1:])  # `sskt train --nproc N` starts torchrun and its ranks this way
    if code is not None:
        return code
    from sskt_engine.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(entry())
