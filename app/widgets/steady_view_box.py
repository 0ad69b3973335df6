"""A pyqtgraph ViewBox whose automatic y range moves in steps instead of with every point.

pyqtgraph's auto-range fits the data exactly, so each new extreme of a growing curve changes
the y range, and each change re-renders the y axis (its tick labels and the grid it draws):
most of a repaint, and it happens in the GUI thread while training competes for the CPU.
Here an automatic y range is kept while it still holds the data and is not much looser than
an exact fit. When it must change, the new one leaves room for what comes: data near zero
(losses, accuracies, learning rates: nearly every curve here) get a range from zero to the
next round number above them (1, 1.5, 2, 3, 5, 7.5, 10 times a power of ten), so a curve that
climbs from 1 % to 100 % moves it about six times instead of at nearly every point; other
data get a margin on the side that grew. Ranges set by hand (zoom, pan, setYRange) are not
touched.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg

ROUND_STEPS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0)  # the data fill at least 2/3 of a range from zero
EDGE = 0.03  # room past a round bound, so the zero line and a curve at the top stay off the frame
NEAR_ZERO = 0.8  # data whose smallest value is at most this share of their largest are drawn from zero
MIN_SPAN = 0.2  # the least span reckoned with, as a share of the data's size
GROW_MARGIN = 0.25  # data away from zero: a new range reaches this share of their span past a side that grew
LOOSEST = 2.5  # a kept range may be this many times the data's span before it is refit


def round_up(value: float) -> float:
    """The smallest number of ROUND_STEPS times a power of ten that is >= ``value`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    for step in ROUND_STEPS:
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10 * power


def steady_range(current: tuple[float, float], wanted: tuple[float, float]) -> tuple[float, float]:
    """The y range to show: ``current`` while it holds ``wanted`` (the data's bounds) and is not
    too loose; otherwise a new range with room to grow (see the module's docstring)."""
    lo, hi = float(min(wanted)), float(max(wanted))
    cur_lo, cur_hi = float(min(current)), float(max(current))
    # A span of at least a fifth of the data's size: the first few points of a curve barely
    # differ, and a range fitted to them would move with each of the next.
    span = max(hi - lo, MIN_SPAN * max(abs(lo), abs(hi)))
    if span <= 0:
        return lo, hi  # all zero: pyqtgraph keeps the scale it has
    if cur_lo <= lo and hi <= cur_hi and cur_hi - cur_lo <= LOOSEST * span:
        return cur_lo, cur_hi
    if lo >= 0 and lo <= NEAR_ZERO * hi:  # at or above zero, and not bunched far from it
        top = round_up(hi)
        return -EDGE * top, (1 + EDGE) * top
    if hi <= 0 and -hi <= -NEAR_ZERO * lo:  # the same below zero
        bottom = round_up(-lo)
        return -(1 + EDGE) * bottom, EDGE * bottom
    margin = GROW_MARGIN * span
    # a side that still holds the data, not too far off, stays where it is
    new_lo = cur_lo if 0 <= lo - cur_lo <= span else lo - margin
    new_hi = cur_hi if 0 <= cur_hi - hi <= span else hi + margin
    return new_lo, new_hi


class SteadyViewBox(pg.ViewBox):
    def suggestPadding(self, axis: int) -> float:  # noqa: N802 (pyqtgraph API)
        # y: steady_range leaves its own room; pyqtgraph's padding would move with every point
        return 0.0 if axis == 1 else super().suggestPadding(axis)

    def setRange(self, rect: Any = None, xRange: Any = None, yRange: Any = None,  # noqa: N802,N803 (pyqtgraph API)
                 padding: float | None = None, update: bool = True, disableAutoRange: bool = True) -> None:
        # Only pyqtgraph's own auto-range calls this with disableAutoRange=False.
        if not disableAutoRange and yRange is not None and rect is None:
            current = self.viewRange()[1]
            steady = steady_range((current[0], current[1]), (yRange[0], yRange[1]))
            if steady == (min(current), max(current)):
                if xRange is None:
                    return  # nothing changes: the axis keeps its rendering
                yRange = None
            else:
                yRange = steady
        super().setRange(rect=rect, xRange=xRange, yRange=yRange, padding=padding, update=update,
                         disableAutoRange=disableAutoRange)
