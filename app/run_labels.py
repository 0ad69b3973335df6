"""Short names for runs where room is short (plot legends): the name the user gave the run
(``sskt_engine.run_labels``) or the run's own name, never its folder.

Run folders are named ``<YYYYmmdd-HHMMSS>-<name>[-N]`` (``sskt_engine.runs.RunFolder.create``).
A legend needs the name; two runs of the same experiment get their start time, and runs started
in the same second their folder's number, so no two entries read alike.
"""

from __future__ import annotations

import re
from datetime import datetime

_FOLDER = re.compile(r"^(?P<stamp>\d{8}-\d{6})-(?P<name>.+?)(?:-(?P<n>\d+))?$")


def split_folder_name(folder: str) -> tuple[str, datetime | None, int]:
    """('name', start time or None, the folder's collision number, 1 when none)."""
    match = _FOLDER.match(folder)
    if not match:
        return folder, None, 1
    try:
        stamp = datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S")
    except ValueError:
        return folder, None, 1
    return match["name"], stamp, int(match["n"] or 1)


def short_run_labels(folders: list[str], limit: int = 24, display_names: list[str] | None = None) -> list[str]:
    """One distinct short label per run folder name, in order; a run's display name (when the
    user gave one) stands for its name, and still gets a start time when two read alike."""
    parts = [split_folder_name(f) for f in folders]
    if display_names:
        parts = [(shown or name, stamp, n) for (name, stamp, n), shown in zip(parts, display_names)]
    names = [_clip(name, limit) for name, _stamp, _n in parts]
    labels = list(names)
    for index, (name, stamp, number) in enumerate(parts):
        if names.count(names[index]) > 1 and stamp is not None:
            same_day = all(p[1] is None or p[1].date() == stamp.date() for p in parts)
            labels[index] = f"{names[index]} {stamp.strftime('%H:%M:%S' if same_day else '%d %b %H:%M')}"
    for index, label in enumerate(labels):  # still alike (started in the same second): number them
        if labels.count(label) > 1:
            labels[index] = f"{label} #{parts[index][2]}" if parts[index][2] > 1 else f"{label} #1"
    for index, label in enumerate(labels):  # folders that are not run folders, named alike
        if labels.count(label) > 1:
            labels[index] = f"{label} ({index + 1})"
    return labels


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
