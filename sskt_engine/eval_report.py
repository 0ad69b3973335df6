"""``eval/best.json`` and ``eval/last.json``: the evaluation of one epoch on the validation split,
in more detail than the epoch's event (per-class numbers, confusion matrix). This module owns
their layout; the task (``sskt_engine.tasks``) fills them, the Results tab shows them.

``epoch`` is the 1-based number of the evaluated epoch, as a person counts: a 6-epoch run's
last report says 6. (Schema 1 files, written without ``schema_version``, already held the
1-based number; the Results tab used to add 1 again.)

Schema 2 describes its numbers: ``metrics`` lists what ``values`` holds, the headline metric
first, and ``per_class_metric`` says what ``per_class`` measures, so a task with other metrics
(mAP, per-class AP, no confusion matrix) needs no change here or in the GUI. Schema 1 held
``acc``, ``top5``, ``per_class_acc`` and ``confusion`` as top-level keys; they are read as such.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import json_fields as jf
from .atomic import atomic_write_text
from .metric_info import ACCURACY, CLASS_ACCURACY, TOP5, MetricInfo

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class EvalReport:
    schema_version: int = SCHEMA_VERSION
    epoch: int = 0  # 1-based number of the evaluated epoch (the first epoch is 1); 0 if unknown
    network: str = ""  # which of the method's networks was evaluated (DML: "peer1")
    metrics: tuple[MetricInfo, ...] = (ACCURACY,)  # what ``values`` holds, headline first, in display order
    values: dict[str, float] = field(default_factory=dict)  # metric key -> value on the validation split
    loss: float | None = None  # the task's loss on the validation split
    class_names: tuple[str, ...] = ()
    per_class_metric: MetricInfo = CLASS_ACCURACY
    per_class: tuple[float, ...] = ()  # one number per class, in class_names' order
    confusion: tuple[tuple[int, ...], ...] | None = None  # [true][predicted] counts; None where it has no meaning

    @property
    def headline(self) -> MetricInfo:
        return self.metrics[0] if self.metrics else ACCURACY

    @property
    def headline_value(self) -> float | None:
        return self.values.get(self.headline.key)

    def updated(self, **changes: Any) -> "EvalReport":
        return dataclasses.replace(self, **changes)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version, "epoch": self.epoch, "network": self.network,
            "metrics": [m.to_json() for m in self.metrics], "values": dict(self.values), "loss": self.loss,
            "class_names": list(self.class_names), "per_class_metric": self.per_class_metric.to_json(),
            "per_class": list(self.per_class),
            "confusion": [list(row) for row in self.confusion] if self.confusion is not None else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalReport":
        """Any schema's keys; unknown keys are ignored, missing or mistyped ones take the default."""
        version = jf.integer(data.get("schema_version"), 1) or 1
        if version < 2:
            return cls._from_schema_1(data)
        metrics = tuple(MetricInfo.from_json(m) for m in data.get("metrics") or () if isinstance(m, Mapping))
        return cls(
            epoch=jf.integer(data.get("epoch"), 0) or 0,
            network=jf.text(data.get("network")),
            metrics=metrics or (ACCURACY,),
            values=jf.number_dict(data.get("values")),
            loss=jf.number(data.get("loss")),
            class_names=jf.text_list(data.get("class_names")),
            per_class_metric=MetricInfo.from_json(data.get("per_class_metric"), CLASS_ACCURACY),
            per_class=jf.number_list(data.get("per_class")),
            confusion=jf.integer_matrix(data.get("confusion")),
        )

    @classmethod
    def _from_schema_1(cls, data: Mapping[str, Any]) -> "EvalReport":
        values = {}
        for key in ("acc", "top5"):
            value = jf.number(data.get(key))
            if value is not None:
                values[key] = value
        return cls(
            epoch=jf.integer(data.get("epoch"), 0) or 0,  # the trainer wrote 1-based numbers already
            network=jf.text(data.get("network")),
            metrics=(ACCURACY, TOP5) if "top5" in values else (ACCURACY,),
            values=values,
            loss=jf.number(data.get("loss")),
            class_names=jf.text_list(data.get("class_names")),
            per_class=jf.number_list(data.get("per_class_acc")),
            confusion=jf.integer_matrix(data.get("confusion")),
        )

    @classmethod
    def from_json(cls, text: str) -> "EvalReport | None":
        data = jf.parse_json_object(text)
        return cls.from_dict(data) if data is not None else None

    # -- files ---------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike) -> "EvalReport | None":
        """The report in ``path``; None if there is none yet or it is damaged."""
        data = jf.read_json_object(path)
        return cls.from_dict(data) if data is not None else None

    def write(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())
