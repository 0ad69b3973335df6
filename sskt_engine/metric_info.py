"""What a metric is called and how it is shown: plain data, no torch, no Qt.

A task (``sskt_engine.tasks``) names its metrics with these; the run's files and events carry
them (``summary.json``, ``eval/*.json``, ``RunStarted``), so the CLI, the study tables and the
GUI label and format a number the way its task says without importing the task itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from . import formatting


@dataclass(frozen=True)
class MetricInfo:
    key: str  # the key of its value in the validation dict of EpochEnd and summary.json's final_val
    label: str  # for a person: axis titles, table headers ("accuracy", "top-5 accuracy", "mAP")
    short: str  # for narrow places: progress lines, legends, columns ("acc", "top-5", "mAP")
    higher_is_better: bool = True
    percent: bool = True  # the value is a fraction in [0, 1], shown as a percentage

    def format(self, value: Any, digits: int = 2, *, sign: bool = True, missing: str = formatting.MISSING) -> str:
        """``97.38%`` (``97.38`` without the sign, for a column whose header says %), or the
        plain number for a metric that is not a fraction; ``missing`` for no number."""
        if self.percent:
            return formatting.percent(value, digits, sign=sign, missing=missing)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return missing
        return formatting.number(value)

    def format_mean_std(self, mean: float | None, std: float | None, digits: int = 2, *, sign: bool = True,
                        plus_minus: str = " ± ") -> str:
        """Mean ± sample std over runs (``97.31 ± 0.12`` in percentage points for fractions)."""
        if self.percent:
            return formatting.mean_std_percent(mean, std, digits, sign=sign, plus_minus=plus_minus)
        text = self.format(mean, digits)
        return text + (f"{plus_minus}{self.format(std, digits)}" if std is not None and mean is not None else "")

    def scaled(self, value: float) -> float:
        """The number as shown on an axis or in a table: percent points for fractions."""
        return 100.0 * value if self.percent else value

    @property
    def unit(self) -> str:
        return "%" if self.percent else ""

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` beats ``than`` (``None``: nothing yet, so any number does)."""
        if than is None:
            return not (isinstance(value, float) and math.isnan(value))
        return value > than if self.higher_is_better else value < than

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, default: "MetricInfo | None" = None) -> "MetricInfo":
        """Tolerant: a missing or damaged description gives ``default`` (accuracy)."""
        fallback = default or ACCURACY
        if not isinstance(data, Mapping) or not isinstance(data.get("key"), str):
            return fallback
        label = data.get("label") if isinstance(data.get("label"), str) else data["key"]
        short = data.get("short") if isinstance(data.get("short"), str) else label
        return cls(key=data["key"], label=label, short=short,
                   higher_is_better=bool(data.get("higher_is_better", True)), percent=bool(data.get("percent", True)))


# The single-label task's metrics; files written before metrics were described (schema 1)
# hold these, so readers fall back to them.
ACCURACY = MetricInfo("acc", "accuracy", "acc")
TOP5 = MetricInfo("top5", "top-5 accuracy", "top-5")
CLASS_ACCURACY = MetricInfo("acc", "accuracy per class", "acc")  # recall of each class

# The multi-label task's metrics (``sskt_engine.average_precision`` defines each AP).
MEAN_AP = MetricInfo("map", "mAP (area under the PR curve, class mean)", "mAP")
MEAN_AP_VOC07 = MetricInfo("map_voc07", "mAP (VOC07 11-point, class mean)", "mAP-11pt")
MEAN_AP_SAMPLES = MetricInfo("map_samples", "mAP (sample mean, as the SSKT authors' code)", "mAP-samples")
F1_AT_HALF = MetricInfo("f1", "F1 at 0.5 (micro)", "F1")
SAMPLE_F1 = MetricInfo("f1", "F1 at 0.5 (per image)", "F1")  # the training-window score
CLASS_AP = MetricInfo("ap", "average precision per class", "AP")
