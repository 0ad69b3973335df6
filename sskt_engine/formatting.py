"""How numbers read to a person: durations, percentages, plot values. Plain Python (no torch,
no Qt), so the command line, the study tables and the GUI all print the same text.

    duration(8.4)            '8 s'        under a minute: whole seconds
    duration(268.6)          '4:29'       under 100 minutes: minutes:seconds
    duration(7325)           '2:02:05'    from 100 minutes: hours:minutes:seconds
    duration(None)           '–'          unknown (None, NaN, infinite or negative)
    percent(0.97312)         '97.31%'
    percent(0.97312, 1)      '97.3%'
    mean_std_percent(0.9731, 0.0012)   '97.31% ± 0.12'
    number(0.000123)         '1.230e-04'
"""

from __future__ import annotations

import math
import numbers

MISSING = "–"  # en dash: a value that does not exist (yet)


def _known(value: float | None) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def duration(seconds: float | None, missing: str = MISSING) -> str:
    """A wall time or an ETA, rounded to the second. Minutes keep at most two digits, so a time
    column reads ``62:05`` for an hour, and a long run's ETA ``3:00:00`` rather than ``180:00``."""
    if not _known(seconds) or seconds < 0:
        return missing
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 100:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def seconds(value: float | None, digits: int = 1, missing: str = MISSING) -> str:
    """A short time with a decimal, e.g. an epoch's: ``12.3 s``."""
    return f"{value:.{digits}f} s" if _known(value) else missing


def percent(fraction: float | None, digits: int = 2, *, sign: bool = True, missing: str = MISSING) -> str:
    """A fraction (0.9731) as a percentage (``97.31%``; ``97.31`` without the sign, for a
    column whose header already says %). Anything not a finite number reads as ``missing``."""
    if not _known(fraction):
        return missing
    return f"{100 * fraction:.{digits}f}" + ("%" if sign else "")


def mean_std_percent(mean: float | None, std: float | None, digits: int = 2, *, sign: bool = True,
                     plus_minus: str = " ± ", missing: str = MISSING) -> str:
    """Mean ± standard deviation of fractions, in percentage points: ``97.31% ± 0.12``; the
    deviation is left out when there is none (a single run)."""
    if not _known(mean):
        return missing
    text = percent(mean, digits, sign=sign)
    return text + (f"{plus_minus}{percent(std, digits, sign=False)}" if _known(std) else "")


def number(value: float) -> str:
    """A measured value (a loss, a learning rate) in at most four significant digits; very small
    or very large values in scientific notation."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4g}"


__all__ = ["MISSING", "duration", "seconds", "percent", "mean_std_percent", "number"]
