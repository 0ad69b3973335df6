"""A bottom axis that reads as a clock when the live curves' x axis is wall time: ticks on clock
steps (30 s, 5 min, 1 h, ...) labelled 'm:ss' or 'h:mm:ss' (``app.x_axis``), so a run of hours is
not read in thousands of seconds. Over epochs or steps it is pyqtgraph's own axis."""

from __future__ import annotations

import pyqtgraph as pg

from app.x_axis import clock_label, clock_tick_steps

LABEL_PX = 70  # room for one 'h:mm:ss' tick label and the gap to the next


class ClockAxis(pg.AxisItem):
    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._clock = False

    def set_clock(self, clock: bool) -> None:
        if clock != self._clock:
            self._clock = clock
            self.picture = None  # pyqtgraph's cached drawing of the ticks
            self.update()

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802 (pyqtgraph's name)
        if not self._clock:
            return super().tickSpacing(minVal, maxVal, size)
        major, minor = clock_tick_steps(maxVal - minVal, int(size // LABEL_PX))
        return [(major, 0.0), (minor, 0.0)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        if not self._clock:
            return super().tickStrings(values, scale, spacing)
        return [clock_label(value * scale) for value in values]
