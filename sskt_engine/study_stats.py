"""Small pieces of a study's tables that the study and its variant rows both read: the
statistics over seeds and the study's headline metric. A leaf, so ``study_variants`` need not
import ``study``."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .metric_info import ACCURACY, MetricInfo


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); the std of a single value is None."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def study_metric(state: dict[str, Any]) -> MetricInfo:
    """The headline metric of a study's runs (all share the data, so the task): what its tables
    and curves show. Studies written before runs named it hold accuracy."""
    for result in state.get("runs", []) + state.get("teacher_runs", []):
        if isinstance(result.get("metric"), dict):
            return MetricInfo.from_json(result["metric"])
    return ACCURACY
