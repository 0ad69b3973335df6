"""``sskt label RUN``: name, tag and annotate a run (``run_labels``), the same labels the GUI's
runs table shows and edits. Without options it prints the run's labels.

    sskt label 20261130-101500-demo --name "baseline, lr 0.1" --tag baseline --tag lr0.1
    sskt label 20261130-101500-demo --untag lr0.1 --note "diverged after epoch 12"
    sskt label 20261130-101500-demo --name "" --note ""        # back to the run's own name, no note
"""

from __future__ import annotations

import argparse
import sys

from .cli import EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    from .run_labels import load_labels, update_labels
    from .runs import find_run

    folder = find_run(args.run_dir, args.runs_dir)
    changing = args.name is not None or args.note is not None or args.tag or args.untag
    if changing:
        labels = update_labels(folder.path, name=args.name, note=args.note, add_tags=args.tag or (),
                               remove_tags=args.untag or ())
    else:
        labels, warning = load_labels(folder.path)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    print(f"run:  {folder.path}")
    own = folder.summary().name or folder.path.name
    print(f"name: {labels.name}" if labels.name else f"name: {own} (the run's own; none given)")
    print(f"tags: {' '.join(labels.tags) if labels.tags else '-'}")
    if labels.note:
        print("note: " + labels.note.replace("\n", "\n      "))
    return EXIT_OK


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "label", help="rename, tag or annotate a run (without options: show its labels)",
        description="Give a run a display name, tags and a note. They are kept in the run folder's labels.json "
                    "(the folder keeps its name, so resumes, studies and 'kind: run' sources still find it) and "
                    "can be changed while the run trains. The GUI's runs table shows and edits the same labels.")
    p.add_argument("run_dir", help="run folder, or its name inside the runs folder")
    p.add_argument("--runs-dir", help="runs folder (default: $SSKT_RUNS_DIR or the user data folder)")
    p.add_argument("--name", metavar="NAME", help="display name ('' gives the run back its own name)")
    p.add_argument("--tag", action="append", metavar="TAG", help="add a tag (one word; repeat for several)")
    p.add_argument("--untag", action="append", metavar="TAG", help="remove a tag (repeat for several)")
    p.add_argument("--note", metavar="TEXT", help="a free-text note ('' removes it)")
    p.set_defaults(func=cmd_label)


__all__ = ["register_commands", "cmd_label"]
