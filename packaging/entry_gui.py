"""Frozen entry point of the bundle's ``sskt-studio`` program (PyInstaller runs this as ``__main__``)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # A frozen program has no separate python to start worker processes with (torch
    # DataLoader workers under "spawn", torchrun children): let it act as one when asked.
    multiprocessing.freeze_support()
    from app.main import main

    sys.exit(main())
