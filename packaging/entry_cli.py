"""Frozen entry point of the bundle's ``sskt`` program (PyInstaller runs this as ``__main__``)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from sskt_engine.cli import main

    sys.exit(main())
