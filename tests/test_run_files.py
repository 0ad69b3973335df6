"""The typed run files (summary.json, eval/*.json): today's layout round-trips, files written
before the layout had a schema_version still load, and damaged files never raise."""

from __future__ import annotations

import json
import math

import pytest

from sskt_engine.eval_report import EvalReport
from sskt_engine.metric_info import ACCURACY, TOP5, MetricInfo
from sskt_engine.run_summary import RunSummary
from sskt_engine.runs import INTERRUPTED, RunFolder

# summary.json exactly as the trainer wrote it before schema 2 (a finished 6-epoch SSKT run,
# key for key, in its order; NaN as json.dumps writes it with allow_nan).
SUMMARY_V1 = """{
  "status": "finished",
  "name": "demo",
  "method": "sskt",
  "target": "resnet20",
  "dataset": "demo",
  "epochs": 6,
  "epochs_completed": 6,
  "best_val_acc": 0.9416666666666667,
  "best_epoch": 5,
  "final_val_acc": 0.9383333333333334,
  "device": "cpu",
  "wall_time_s": 41.27,
  "started": "2026-11-25T10:15:00",
  "finished": "2026-11-25T10:15:42",
  "message": "",
  "pid": null,
  "host": "workstation",
  "seed": 0,
  "num_classes": 6,
  "train_size": 600,
  "val_size": 600,
  "data_resident": true,
  "sources": [{"name": "shapes-cnn", "kind": "checkpoint", "num_classes": 12, "input_size": 32}],
  "skipped_steps": 0,
  "versions": {"sskt_studio": "0.1.0", "torch": "2.14.1", "torchvision": "0.29.1", "numpy": "2.4.6",
               "python": "3.11.9"},
  "processes": 1,
  "final_val": {"loss": 0.21, "acc": 0.9383333333333334, "top5": 1.0}
}"""

# eval/best.json as the trainer wrote it before schema 2: one line, epoch already 1-based.
EVAL_V1 = ('{"epoch": 5, "acc": 0.9416666666666667, "top5": 1.0, "loss": 0.2, '
           '"per_class_acc": [1.0, 0.9, 0.95, 0.9, 0.95, 0.95], '
           '"confusion": [[100, 0, 0, 0, 0, 0], [0, 90, 10, 0, 0, 0], [0, 5, 95, 0, 0, 0], '
           '[0, 0, 0, 90, 10, 0], [0, 0, 0, 5, 95, 0], [0, 0, 0, 0, 5, 95]], '
           '"class_names": ["stop", "go", "left", "right", "up", "down"], "network": "target"}')


def test_a_summary_in_the_schema_1_format_loads_with_every_value(tmp_path):
    (tmp_path / "summary.json").write_text(SUMMARY_V1)
    summary = RunSummary.read(tmp_path / "summary.json")
    assert summary.schema_version == 2  # what it is now, in memory
    assert (summary.status, summary.name, summary.method, summary.target) == ("finished", "demo", "sskt", "resnet20")
    assert summary.metric == ACCURACY  # schema 1 was always accuracy
    assert summary.best_score == pytest.approx(0.9416666666666667) and summary.best_epoch == 5
    assert summary.final_score == pytest.approx(0.9383333333333334) and summary.final_val["top5"] == 1.0
    assert summary.epochs == summary.epochs_completed == 6 and summary.wall_time_s == 41.27
    assert summary.pid is None and summary.host == "workstation" and summary.data_resident is True
    assert summary.sources[0]["name"] == "shapes-cnn" and summary.versions["torch"] == "2.14.1"
    assert summary.processes == 1 and summary.skipped_steps == 0 and summary.task == "single_label"


def test_a_schema_1_eval_report_loads_and_keeps_its_1_based_epoch(tmp_path):
    (tmp_path / "best.json").write_text(EVAL_V1)
    report = EvalReport.read(tmp_path / "best.json")
    assert report.epoch == 5  # the trainer wrote epoch + 1; nothing is added on reading
    assert report.metrics == (ACCURACY, TOP5) and report.headline_value == pytest.approx(0.9416666666666667)
    assert report.values["top5"] == 1.0 and report.loss == 0.2 and report.network == "target"
    assert report.per_class == (1.0, 0.9, 0.95, 0.9, 0.95, 0.95) and report.class_names[0] == "stop"
    assert report.confusion[1] == (0, 90, 10, 0, 0, 0)


def test_a_run_folder_of_today_reads_through_run_folder(tmp_path):
    folder = tmp_path / "20261125-101500-demo"
    (folder / "eval").mkdir(parents=True)
    (folder / "preset.yaml").write_text("name: demo\n")
    (folder / "summary.json").write_text(SUMMARY_V1)
    (folder / "eval" / "best.json").write_text(EVAL_V1)
    run = RunFolder(folder)
    info = run.info()
    assert info.status == "finished" and info.best_score == pytest.approx(0.9416666666666667)
    assert info.metric.short == "acc" and info.epochs_completed == 6
    assert run.eval_report("best").epoch == 5 and run.eval_report("last") is None


def test_schema_1_marked_no_best_yet_with_minus_one(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "stopped", "best_val_acc": -1.0}))
    assert RunSummary.read(tmp_path / "summary.json").best_score is None


def test_summary_and_report_round_trip_with_another_task_s_metric(tmp_path):
    m_ap = MetricInfo("map", "mean average precision", "mAP")
    summary = RunSummary(status="finished", name="voc", method="sskt", task="multi_label", metric=m_ap,
                         epochs=3, epochs_completed=3, best_score=0.71, best_epoch=2, final_score=0.7,
                         final_val={"loss": 0.1, "map": 0.7}, wall_time_s=1.5, sources=({"name": "a"},),
                         versions={"torch": "x"}, pid=None)
    summary.write(tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text())["schema_version"] == 2
    assert RunSummary.read(tmp_path / "summary.json") == summary
    ap = MetricInfo("ap", "average precision per class", "AP")
    report = EvalReport(epoch=3, network="target", metrics=(m_ap,), values={"map": 0.7}, loss=0.1,
                        class_names=("cat", "dog"), per_class_metric=ap, per_class=(0.6, 0.8), confusion=None)
    report.write(tmp_path / "last.json")
    again = EvalReport.read(tmp_path / "last.json")
    assert again == report and again.headline == m_ap
    assert again.headline_value == 0.7 and again.confusion is None


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", "\x00\xff garbage", '{"status": 5, "epochs": "six"}'])
def test_damaged_files_never_raise(tmp_path, text):
    path = tmp_path / "file.json"
    path.write_bytes(text.encode("latin-1"))
    summary = RunSummary.read(path)
    assert summary.status == "running" and summary.epochs == 0 and summary.best_score is None
    report = EvalReport.read(path)
    assert report is None or (report.epoch == 0 and report.values == {})


def test_missing_files_give_the_default_summary_and_no_report(tmp_path):
    assert RunSummary.read(tmp_path / "absent.json") == RunSummary()
    assert EvalReport.read(tmp_path / "absent.json") is None


def test_wrong_types_and_unknown_keys_fall_back_per_field(tmp_path):
    data = {"schema_version": 2, "status": "finished", "epochs": 4.0, "epochs_completed": True, "best_score": "x",
            "final_score": float("nan"), "pid": 12.5, "sources": [{"name": "a"}, "junk"], "versions": [1],
            "metric": {"label": "no key"}, "from_the_future": {"a": 1}}
    (tmp_path / "summary.json").write_text(json.dumps(data))
    summary = RunSummary.read(tmp_path / "summary.json")
    assert summary.status == "finished" and summary.epochs == 4 and summary.epochs_completed == 0
    assert summary.best_score is None and math.isnan(summary.final_score) and summary.pid is None
    assert summary.sources == ({"name": "a"},) and summary.versions == {} and summary.metric == ACCURACY
    report = EvalReport.from_dict({"schema_version": 2, "epoch": 2, "per_class": [0.5, "x"],
                                   "confusion": [[1, "a"]], "metrics": ["bad", {"key": "acc"}]})
    assert report.epoch == 2 and report.per_class[0] == 0.5 and math.isnan(report.per_class[1])
    assert report.confusion is None and report.metrics[0].key == "acc"


def test_a_running_summary_of_a_dead_process_here_reads_as_interrupted(tmp_path):
    import socket

    (tmp_path / "preset.yaml").write_text("name: x\n")
    RunSummary(status="running", host=socket.gethostname(), pid=2 ** 22 + 12345).write(tmp_path / "summary.json")
    assert RunFolder(tmp_path).status() == INTERRUPTED
