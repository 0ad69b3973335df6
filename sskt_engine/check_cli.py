"""``sskt check PRESET``: validate a preset and everything it points at, without training.

Prints the resolved experiment and what a run would cost (``preset_check``), then either
``ok`` (exit 0) or one line per problem (exit 2). A preset that cannot even be parsed is one
sentence through ``cli.main`` (exit 2) like every other command.
"""

from __future__ import annotations

import argparse
import sys

from .cli import EXIT_BAD_INPUT, EXIT_OK, add_threads_argument
from .config import load_preset


def cmd_check(args: argparse.Namespace) -> int:
    from .preset_check import check_experiment

    config = load_preset(args.preset, args.set or [])
    report = check_experiment(config)
    for line in report.lines:
        print(line)
    if report.ok:
        print("ok: the preset and every file it names can be used")
        return EXIT_OK
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check", help="check a preset and the files it names without training",
        description="Read the dataset's files, load every source, resolve the device and build the networks as a "
                    "run would, then stop: prints the resolved experiment and its cost (images per epoch, "
                    "parameters, source input sizes). Exit 0 when it can run, 2 with one line per problem.")
    p.add_argument("preset", help="preset file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset key (as for train)")
    add_threads_argument(p)
    p.set_defaults(func=cmd_check)


__all__ = ["register_commands", "cmd_check"]
