"""Captions for validation images: what the network predicted against the true labels.

One rule for single- and multi-label runs, on label sets (never on joined text, where
"cat" would look like part of "cat, dog"): all right is green, partly right orange
(multi-label: some labels found, some missed or extra), wrong red. Under a wrong
multi-label prediction: "−name" for each label missed, "+name" for each one extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

RIGHT, PARTLY, WRONG = "#2e7d32", "#ef6c00", "#c62828"
NONE = "(none)"


@dataclass(frozen=True)
class Caption:
    text: str
    color: str
    tooltip: str


def _names(labels: Sequence[str]) -> str:
    return ", ".join(labels) or NONE


def prediction_caption(true: Sequence[str], predicted: Sequence[str]) -> Caption:
    truth, guess = set(true), set(predicted)
    tip = f"predicted {_names(predicted)}, true {_names(true)}"
    if truth == guess:
        return Caption(_names(predicted), RIGHT, tip)
    if len(truth) <= 1 and len(guess) <= 1:  # single-label: the one predicted, the true one under it
        return Caption(f"{_names(predicted)}\n({_names(true)})", WRONG, tip)
    missed = [name for name in true if name not in guess]
    extra = [name for name in predicted if name not in truth]
    # under a small tile: "−dog +tree" (missed, extra); the tooltip says it in words
    short = " ".join([*(f"\u2212{name}" for name in missed), *(f"+{name}" for name in extra)])
    words = "; ".join(part for part in (f"missed {', '.join(missed)}" if missed else "",
                                        f"extra {', '.join(extra)}" if extra else "") if part)
    color = PARTLY if truth & guess else WRONG
    return Caption(f"{_names(predicted)}\n{short}", color, f"{tip}; {words}")
