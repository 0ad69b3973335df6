"""Study rows that are not plain methods: source ablations and hyper-parameter grids.

``sskt compare PRESET --ablate-sources`` trains SSKT with each source alone, with all but one
(three or more sources), and with all, beside supervised: a row per variant, so each source's
contribution shows with its spread over seeds. ``--grid method.alpha=0.1,0.5,1 --grid
method.temperature=1,2,3`` trains every combination (the paper's own search). Each variant is a
``Variant``: a row label, the method it trains, which of the preset's sources it keeps and the
``key=value`` overrides it adds; ``study.run_study`` trains it like a method.

Choosing a grid's best setting on the numbers that are then reported would flatter it, so a
grid study holds a validation split out of the training images (``data.val_split``, 0.1 unless
the preset sets one) and chooses on it; the test split is scored beside it and never chooses.
``variant_sections`` writes the gains over supervised (paired by seed) and, for a grid, the
choice and the split that made it, as markdown appended to the study's table.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import UserInputError

__all__ = ["Variant", "ablation_variants", "grid_variants", "parse_grid", "variant_sections", "gains_by_row",
           "grid_choice", "variant_summary_line", "GRID_VAL_SPLIT"]

GRID_VAL_SPLIT = 0.1


@dataclass(frozen=True)
class Variant:
    label: str  # the row's name in every table
    method: str
    sources: tuple[int, ...] | None = None  # indices into the preset's sources; None: the method's usual
    overrides: tuple[str, ...] = ()  # key=value applied to this row's runs
    kind: str = ""  # "ablation", "grid" or "" (a plain method)
    settings: dict[str, Any] = field(default_factory=dict)  # a grid row's values, by key

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in ".+-" else "-" for c in self.label).strip("-")

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "method": self.method, "sources": list(self.sources) if self.sources is not None
                else None, "overrides": list(self.overrides), "kind": self.kind, "settings": self.settings}


def ablation_variants(source_names: Sequence[str], method: str = "sskt") -> list[Variant]:
    """supervised; ``method`` with each source alone; with all but one (when that differs from one
    alone, i.e. three or more sources); with all of them."""
    if not source_names:
        raise UserInputError("--ablate-sources needs sources in the preset")
    count = len(source_names)
    out = [Variant("supervised", "supervised", kind="ablation")]
    if count > 1:
        out += [Variant(f"{method}: only {name}", method, (i,), kind="ablation") for i, name in enumerate(source_names)]
    if count > 2:
        out += [Variant(f"{method}: without {name}", method, tuple(j for j in range(count) if j != i), kind="ablation")
                for i, name in enumerate(source_names)]
    out.append(Variant(f"{method}: all {count} sources" if count > 1 else f"{method}: {source_names[0]}", method,
                       tuple(range(count)), kind="ablation"))
    return out


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2,...`` items to (key, values) pairs; a key twice or an empty list is refused."""
    out: list[tuple[str, list[str]]] = []
    for item in items:
        key, equals, values = item.partition("=")
        key = key.strip()
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not equals or not key or not parts:
            raise UserInputError(f"--grid {item}: write KEY=V1,V2,... (e.g. method.alpha=0.1,0.5,1)")
        if key.startswith("data") or key in ("train.seed", "train.seeds") or ":" in key:
            raise UserInputError(f"--grid {item}: a grid may not change {key}: every setting must see the same data")
        if any(k == key for k, _ in out):
            raise UserInputError(f"--grid names {key} twice")
        out.append((key, parts))
    return out


def _short(key: str) -> str:
    return key.split(".")[-1]


def grid_variants(grid: Sequence[tuple[str, list[str]]], methods: Sequence[str]) -> list[Variant]:
    """supervised (when among ``methods``) plus every combination of the grid for each other method."""
    out = [Variant("supervised", "supervised", kind="grid")] if "supervised" in methods else []
    keys = [k for k, _ in grid]
    for method in methods:
        if method == "supervised":
            continue
        for values in itertools.product(*(v for _, v in grid)):
            label = f"{method} " + " ".join(f"{_short(k)}={v}" for k, v in zip(keys, values))
            out.append(Variant(label, method, overrides=tuple(f"{k}={v}" for k, v in zip(keys, values)), kind="grid",
                               settings=dict(zip(keys, values))))
    if not any(v.method != "supervised" for v in out):
        raise UserInputError("--grid needs a method to tune besides supervised (e.g. --methods supervised,sskt)")
    return out


def _reported(result: dict[str, Any]) -> tuple[float | None, str]:
    """The number a run reports: the test split's score at the epoch chosen on validation when the
    run held validation out, else its final validation score (which is then the test split)."""
    if result.get("test_at_best") is not None:
        return result["test_at_best"], "test"
    return result.get("final_val_acc"), "val"


def gains_by_row(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per row: its reported score and its gain over supervised, each seed paired with supervised's run
    of the same seed (the same labelled subset), mean and sample std over the seeds."""
    from .runs import FINISHED
    from .study_stats import mean_std

    done = [r for r in state.get("runs", []) if r.get("status") == FINISHED]
    baseline = {r["seed"]: _reported(r)[0] for r in done if r["method"] == "supervised"}
    out: dict[str, dict[str, Any]] = {}
    for label in state.get("methods", []):
        own = {r["seed"]: _reported(r) for r in done if r["method"] == label}
        values = [v for v, _ in own.values() if v is not None]
        gains = [v - baseline[s] for s, (v, _) in own.items() if v is not None and baseline.get(s) is not None]
        splits = {split for _, split in own.values()}
        out[label] = {"score": mean_std(values), "gain": mean_std(gains), "runs": len(values), "paired": len(gains),
                      "split": splits.pop() if len(splits) == 1 else "mixed"}
    return out


def grid_choice(state: dict[str, Any]) -> dict[str, Any] | None:
    """The grid row with the highest mean validation score at the chosen epoch (never the test
    split's), or None when no grid row finished."""
    from .runs import FINISHED
    from .study_stats import mean_std

    grid = [v for v in state.get("variants", []) if v.get("kind") == "grid" and v["method"] != "supervised"]
    best = None
    for variant in grid:
        runs = [r for r in state.get("runs", []) if r["method"] == variant["label"] and r.get("status") == FINISHED]
        values = [r["best_val_acc"] for r in runs if r.get("best_val_acc") is not None]
        if not values:
            continue
        mean, std = mean_std(values)
        if best is None or mean > best["val_mean"]:
            best = {"label": variant["label"], "settings": variant["settings"], "val_mean": mean, "val_std": std,
                    "runs": len(values)}
    return best


def _fmt(metric: Any, pair: tuple[float | None, float | None], sign: bool = False) -> str:
    """Mean ± std as the metric shows it (percent points for accuracy); ``sign``: a difference."""
    mean, std = pair
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "–"
    text = f"{metric.scaled(mean):{'+' if sign else ''}.2f}"
    return text + (f" ± {metric.scaled(std):.2f}" if std is not None else "")


def variant_sections(state: dict[str, Any]) -> str:
    """Markdown for table.md: gains over supervised, and a grid's choice with the split that chose."""
    from .study_stats import study_metric

    variants = state.get("variants") or []
    has_supervised = "supervised" in state.get("methods", [])
    if not variants and not has_supervised:
        return ""
    metric = study_metric(state)
    unit = f" ({metric.unit})" if metric.unit else ""
    gains = gains_by_row(state)
    split = next((g["split"] for g in gains.values() if g["runs"]), "val")
    where = ("the test split's score at the epoch chosen on the held-out validation split" if split == "test" else
             "the final validation score (no split was held out: these are test-split numbers, chosen on nothing)")
    out = ["", "## Gains over supervised", "",
           f"- per seed, each row's {metric.label} minus supervised's of the same seed (same labelled subset): "
           f"{where}; mean ± sample std over the seeds", "",
           f"| row | runs | {metric.short}{unit} | gain over supervised{' (points)' if metric.percent else ''} |",
           "|---|---:|---:|---:|"]
    for label in state.get("methods", []):
        g = gains[label]
        gain = "–" if label == "supervised" or not has_supervised else _fmt(metric, g["gain"], sign=True)
        out.append(f"| {label} | {g['runs']} | {_fmt(metric, g['score'])} | {gain} |")
    choice = grid_choice(state)
    if any(v.get("kind") == "grid" for v in variants):
        out += ["", "## Grid choice", ""]
        if choice is None:
            out.append("- no grid setting finished a run; nothing was chosen")
        else:
            fraction = state.get("grid_val_split")
            held = f"data.val_split {fraction:g} of the training images" if fraction else "data.val_split"
            settings = ", ".join(f"{k}={v}" for k, v in choice["settings"].items())
            reported = gains.get(choice["label"], {})
            out.append(f"- best setting: **{settings}** ({choice['label']}), chosen on the **validation split** "
                       f"({held}, held out before the labelled subset was drawn) by mean best-epoch "
                       f"{metric.label} {_fmt(metric, (choice['val_mean'], choice['val_std']))} over "
                       f"{choice['runs']} run(s); the test split never chose anything")
            if reported.get("runs"):
                out.append(f"- its test {metric.label}: {_fmt(metric, reported['score'])}, gain over supervised "
                           f"{_fmt(metric, reported['gain'], sign=True)}")
    return "\n".join(out) + "\n"


def variant_summary_line(state: dict[str, Any]) -> str:
    """One line for the Compare dialog under its table: a grid's choice and the split that made it,
    or each ablation row's gain over supervised; empty for a plain method study."""
    from .study_stats import study_metric

    variants = state.get("variants") or []
    if not variants:
        return ""
    metric = study_metric(state)
    if any(v.get("kind") == "grid" for v in variants):
        choice = grid_choice(state)
        if choice is None:
            return "Grid: no setting finished a run yet."
        settings = ", ".join(f"{k}={v}" for k, v in choice["settings"].items())
        return (f"Best setting {settings}, chosen on the held-out validation split (mean "
                f"{_fmt(metric, (choice['val_mean'], choice['val_std']))}); the test split chose nothing. "
                "Gains over supervised: table.md")
    gains = gains_by_row(state)
    parts = [f"{label}: {_fmt(metric, gains[label]['gain'], sign=True)}" for label in state.get("methods", [])
             if label != "supervised" and gains.get(label, {}).get("paired")]
    return ("Gain over supervised, per seed: " + "; ".join(parts)) if parts else ""
