"""What the seed benchmarks (demo_transfer, demo_multilabel_transfer, demo_video_transfer,
source_view_demo) print alike: mean ± sample std over seeds, and a run's best score, which a run
without a held-out split does not have (its best epoch would be chosen on the test split)."""

from __future__ import annotations

import math
import statistics


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def best_or_nan(summary) -> float:
    """The run's best score, NaN when it chose no best epoch."""
    return summary.best_score if summary.best_score is not None else math.nan


def percent(value: float) -> str:
    """A fraction as a percentage with two decimals, '-' for NaN."""
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


def best_cell(fractions: list[float]) -> str:
    """Mean ± std of the runs' best scores in percent, or why there are none."""
    known = [100 * v for v in fractions if not math.isnan(v)]
    return "{:.2f} ± {:.2f}".format(*mean_std(known)) if known else "- (no held-out split)"
