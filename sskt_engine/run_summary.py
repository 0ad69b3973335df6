"""``summary.json``: the state of a run in one small file, written by the trainer, read by
everyone (runs list, Results tab, studies, CLI, benchmarks). This module owns its layout.

The trainer rewrites it (atomically) when a run starts, after every epoch and when the run
ends. Schema 2 names the headline metric (``metric``: its key, label and format, from the
run's task) and holds its best and final values as ``best_score`` and ``final_score``.
Files written before (no ``schema_version``: schema 1) said ``best_val_acc`` and
``final_val_acc`` for the same numbers, always accuracy; they are read as such.

Reading never raises: a missing or damaged file is the default summary (status
``running``, nothing known), and a value of the wrong type is that field's default.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import json_fields as jf
from .atomic import atomic_write_text
from .metric_info import ACCURACY, MetricInfo

SCHEMA_VERSION = 2
RUNNING = "running"  # the status of a run that has not said otherwise (runs.RUNNING is the same word)
# Why a run without a held-out validation split has no best epoch (tables and the CLI say it).
NO_SELECTION_REASON = ("no held-out validation split (data.val_split 0): the validation numbers are the test "
                       "split's, and choosing the best epoch on them would flatter every method, so the final "
                       "epoch is reported")

# schema 1 key -> schema 2 field
_RENAMED_IN_2 = {"best_val_acc": "best_score", "final_val_acc": "final_score"}


@dataclass(frozen=True)
class RunSummary:
    schema_version: int = SCHEMA_VERSION
    status: str = RUNNING  # running / finished / stopped / failed (runs.py's names)
    name: str = ""
    method: str = ""
    target: str = ""  # the target architecture
    dataset: str = ""
    task: str = "single_label"  # the kind of labels (sskt_engine.tasks)
    metric: MetricInfo = ACCURACY  # the headline metric: what best_score and final_score measure
    epochs: int = 0  # epochs the preset asks for
    epochs_completed: int = 0
    best_score: float | None = None  # headline metric on the validation split at the best epoch
    best_epoch: int | None = None  # 1-based number of that epoch
    # How the best epoch was chosen: "validation" (on a split held out of train), "none" (no held-out
    # split: best_score/best_epoch stay empty, best_score_absent says why), "" (written before this field).
    selection: str = ""
    best_score_absent: str = ""
    best_test_score: float | None = None  # headline metric on the test split at the best epoch ("validation")
    final_test_score: float | None = None  # ... and at the last epoch
    final_score: float | None = None  # headline metric at the last completed epoch
    final_val: dict[str, float] = field(default_factory=dict)  # every validation number of that epoch
    device: str = ""
    wall_time_s: float | None = None  # training time, summed over resumed attempts
    started: str = ""  # ISO time of the first attempt
    finished: str | None = None
    message: str = ""  # why the run failed, in one sentence
    pid: int | None = None  # the training process while running; None once it ended
    host: str = ""
    seed: int | None = None
    num_classes: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    data_resident: bool | None = None  # the data was held on the training device
    sources: tuple[dict[str, Any], ...] = ()  # each source's own description
    skipped_steps: int = 0  # batches skipped for a non-finite loss (train.nan_policy: skip)
    versions: dict[str, str] = field(default_factory=dict)  # of the libraries that trained
    processes: int = 1  # data-parallel processes

    def updated(self, **changes: Any) -> "RunSummary":
        return dataclasses.replace(self, **changes)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        body["metric"] = self.metric.to_json()
        body["sources"] = [dict(s) for s in self.sources]
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSummary":
        """Any schema's keys; unknown keys are ignored, missing or mistyped ones take the default."""
        data = dict(data)
        version = jf.integer(data.get("schema_version"), 1) or 1
        if version < 2:
            for old, new in _RENAMED_IN_2.items():
                if old in data and new not in data:
                    data[new] = data.pop(old)
            best = jf.number(data.get("best_score"))
            if best is not None and best < 0:  # accuracy is never negative: a "no best yet" marker
                data["best_score"] = None
        d = cls()
        return cls(
            status=jf.text(data.get("status"), d.status),
            name=jf.text(data.get("name")),
            method=jf.text(data.get("method")),
            target=jf.text(data.get("target")),
            dataset=jf.text(data.get("dataset")),
            task=jf.text(data.get("task"), d.task),
            metric=MetricInfo.from_json(data.get("metric")),
            epochs=jf.integer(data.get("epochs"), 0) or 0,
            epochs_completed=jf.integer(data.get("epochs_completed"), 0) or 0,
            best_score=jf.number(data.get("best_score")),
            best_epoch=jf.integer(data.get("best_epoch")),
            selection=jf.text(data.get("selection")),
            best_score_absent=jf.text(data.get("best_score_absent")),
            best_test_score=jf.number(data.get("best_test_score")),
            final_test_score=jf.number(data.get("final_test_score")),
            final_score=jf.number(data.get("final_score")),
            final_val=jf.number_dict(data.get("final_val")),
            device=jf.text(data.get("device")),
            wall_time_s=jf.number(data.get("wall_time_s")),
            started=jf.text(data.get("started")),
            finished=jf.optional_text(data.get("finished")),
            message=jf.text(data.get("message")),
            pid=jf.integer(data.get("pid")),
            host=jf.text(data.get("host")),
            seed=jf.integer(data.get("seed")),
            num_classes=jf.integer(data.get("num_classes")),
            train_size=jf.integer(data.get("train_size")),
            val_size=jf.integer(data.get("val_size")),
            data_resident=jf.flag(data.get("data_resident")),
            sources=jf.dict_list(data.get("sources")),
            skipped_steps=jf.integer(data.get("skipped_steps"), 0) or 0,
            versions=jf.text_dict(data.get("versions")),
            processes=jf.integer(data.get("processes"), 1) or 1,
        )

    @classmethod
    def from_json(cls, text: str) -> "RunSummary":
        data = jf.parse_json_object(text)
        return cls.from_dict(data) if data is not None else cls()

    # -- files ---------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike) -> "RunSummary":
        """The summary in ``path``; the default summary if it is missing or damaged."""
        data = jf.read_json_object(path)
        return cls.from_dict(data) if data is not None else cls()

    def write(self, path: str | os.PathLike) -> None:
        """Atomically: a reader (or a crash) sees the old file or the new one."""
        atomic_write_text(path, self.to_json())

