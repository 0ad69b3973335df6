"""The published figure beside the measured one, for a study of a preset with a ``paper:`` section.

A paper preset (``resources/presets/paper/``) records the figure its row and method published.
After ``sskt compare`` (a study), the measured mean ± sample std over the finished runs of that
method is set beside it with the difference, in percentage points and in standard deviations:
the published std when the paper gives one, else the measured one (undefined for a single run).
The measured number is the test split's: the final epoch's when the preset has no held-out
validation split (the paper presets' setting), else the score at the epoch chosen on it.
"""

from __future__ import annotations

import math
from typing import Any

from .config import ExperimentConfig
from .errors import UserInputError
from .metric_info import MetricInfo


def _config(state: dict[str, Any]) -> ExperimentConfig | None:
    from .config import loads_preset

    try:
        return loads_preset(state.get("preset_text", ""))
    except UserInputError:
        return None


def _headline_key(state: dict[str, Any]) -> str:
    """The key of the study's headline metric (as ``study.study_metric``, which imports this module)."""
    for run in state.get("runs", []):
        if isinstance(run.get("metric"), dict):
            return MetricInfo.from_json(run["metric"]).key
    return "acc"


def _measured(run: dict[str, Any], key: str, headline: str) -> float | None:
    if run.get("selection") == "validation":  # the val numbers are a held-out split's: report the test score
        return run.get("test_at_best") if key == headline else None
    value = (run.get("final_val") or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def paper_comparison(state: dict[str, Any]) -> dict[str, Any] | None:
    """The comparison of a study's preset figure with its runs, or None when the preset has none."""
    cfg = _config(state)
    if cfg is None or cfg.paper.mean is None:
        return None
    method = cfg.method.name
    headline = _headline_key(state)
    key = cfg.paper.metric or headline
    values = [v for v in (_measured(r, key, headline) for r in state.get("runs", [])
                          if r.get("method") == method and r.get("status") == "finished") if v is not None]
    percent = [100.0 * v for v in values]  # figures are published in percent
    mean = sum(percent) / len(percent) if percent else None
    std = (math.sqrt(sum((v - mean) ** 2 for v in percent) / (len(percent) - 1)) if len(percent) >= 2 else None)
    difference = mean - cfg.paper.mean if mean is not None else None
    scale = cfg.paper.std or std
    return {"method": method, "metric": key, "row": cfg.paper.row, "paper_mean": cfg.paper.mean,
            "paper_std": cfg.paper.std, "runs": len(percent), "measured_mean": mean, "measured_std": std,
            "difference": difference, "std_used": "published" if cfg.paper.std else "measured",
            "difference_in_std": difference / scale if difference is not None and scale else None,
            "note": cfg.paper.note}


def paper_lines(state: dict[str, Any]) -> list[str]:
    """Markdown lines for table.md (empty when the preset records no published figure)."""
    c = paper_comparison(state)
    if c is None:
        return []

    def pm(mean: float | None, std: float | None) -> str:
        if mean is None:
            return "–"
        return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")

    in_std = f"{c['difference_in_std']:+.1f} ({c['std_used']} std)" if c["difference_in_std"] is not None else "–"
    difference = f"{c['difference']:+.2f}" if c["difference"] is not None else "–"
    lines = ["", "## Paper vs measured", "", f"- {c['row']}; {c['metric']} in percent on the test split "
             f"(measured: mean ± sample std over {c['runs']} finished run(s))"]
    if c["note"]:
        lines.append(f"- note: {c['note']}")
    lines += ["", "| method | paper | measured | difference | in std |", "|---|---:|---:|---:|---:|",
              f"| {c['method']} | {pm(c['paper_mean'], c['paper_std'])} | {pm(c['measured_mean'], c['measured_std'])} "
              f"| {difference} | {in_std} |"]
    return lines
