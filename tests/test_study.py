"""``sskt compare``: every method x seed on the same split, tables with mean ± std, skipped
methods with their reason, study.json for the GUI, and the statistics themselves."""

from __future__ import annotations

import csv
import io
import math
import threading
from pathlib import Path

import pytest

from sskt_engine.cli import main
from sskt_engine.config import loads_preset, save_preset
from sskt_engine.errors import UserInputError
from sskt_engine.events import EpochEnd
from sskt_engine.runs import RunFolder
from sskt_engine.study import (StudyRunEnded, StudySpec, latex_table, load_study, mean_std, method_curves,
                               run_study, split_fingerprint, split_overrides, summarize)
from sskt_engine.trainer import Trainer

METHODS = ["supervised", "sskt", "kd", "dml", "maxl"]

TINY = """\
name: study-test
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4, val_split: 0.1}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, lr: 0.05, schedule: constant, seed: 5, log_every: 1, device: cpu}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A source on another task (demo-shapes, 12 classes) and a teacher on the target's classes."""
    root = tmp_path_factory.mktemp("models")
    teacher = Trainer(loads_preset(TINY, overrides=["name=teacher"]), root).run()
    shapes = Trainer(loads_preset(TINY, overrides=["name=shapes", "data.dataset=demo-shapes"]), root).run()
    return {"teacher": teacher.path, "shapes": shapes.path, "root": root}


def _preset(path: Path, *overrides: str) -> Path:
    save_preset(loads_preset(TINY, overrides=list(overrides)), path)
    return path


def _stdout_study(capsys) -> Path:
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("study: ")
    return Path(lines[-1][len("study: "):])


def _csv_rows(study: Path) -> dict[str, dict[str, str]]:
    return {row["method"]: row for row in csv.DictReader(io.StringIO((study / "table.csv").read_text()))}


@pytest.fixture(scope="module")
def full_study(models, tmp_path_factory):
    """All five methods, one seed, one epoch: SSKT learns from the shapes source, KD from the teacher."""
    tmp = tmp_path_factory.mktemp("study")
    preset = _preset(tmp / "preset.yaml", f"sources=[{{kind: run, path: '{models['shapes']}', name: shapes}}]")
    code = main(["compare", str(preset), "--methods", ",".join(METHODS), "--seeds", "1", "--runs-dir",
                 str(tmp / "runs"), "--teacher", str(models["teacher"]), "--set", "kd:method.distill_weight=0.5"])
    return code, tmp, models


def test_full_study_writes_every_table_with_every_method(full_study, capsys):
    code, tmp, _ = full_study
    assert code == 0
    studies = list((tmp / "runs" / "studies").iterdir())
    assert len(studies) == 1
    study = studies[0]
    markdown = (study / "table.md").read_text()
    tex = (study / "table.tex").read_text()
    rows = _csv_rows(study)
    assert list(rows) == METHODS
    for method in METHODS:
        assert f"| {method} | 1 |" in markdown
        assert f"\n{method} & 1 & $" in tex
        assert rows[method]["status"] == "ok" and rows[method]["runs"] == "1"
        assert 0.0 <= float(rows[method]["best_val_acc_mean_pct"]) <= 100.0
        assert rows[method]["best_val_acc_std_pct"] == ""  # one run has no standard deviation
        assert float(rows[method]["wall_time_mean_s"]) > 0
    assert "\\begin{tabular}" in tex and "\\bottomrule" in tex
    state = load_study(study)
    assert state["status"] == "finished" and len(state["runs"]) == 5
    assert all(Path(r["run_path"]).is_dir() and r["status"] == "finished" for r in state["runs"])


def test_every_method_of_a_seed_trains_on_the_same_split(full_study):
    _, tmp, models = full_study
    study = next((tmp / "runs" / "studies").iterdir())
    state = load_study(study)
    prints = set()
    for result in state["runs"]:
        cfg = RunFolder(result["run_path"]).config()
        assert cfg.train.seed == 5 and cfg.method.name == result["method"]
        prints.add(split_fingerprint(cfg, cfg.train.seed)["fingerprint"])
    assert prints == {state["splits"]["5"]["fingerprint"]}
    by_method = {r["method"]: RunFolder(r["run_path"]).config() for r in state["runs"]}
    assert by_method["kd"].method.distill_weight == 0.5 and not hasattr(by_method["dml"].method, "distill_weight")
    assert [s.path for s in by_method["kd"].sources] == [str(models["teacher"])]
    assert by_method["supervised"].sources == () and by_method["sskt"].sources[0].name == "shapes"


def test_method_curves_for_the_gui(full_study):
    _, tmp, _ = full_study
    study = next((tmp / "runs" / "studies").iterdir())
    curves = method_curves(study)
    assert set(curves) == set(METHODS)
    for entry in curves.values():
        assert entry["epochs"] == [1] and len(entry["runs"]) == 1 and entry["std"] == [0.0]
        assert entry["mean"][0] == pytest.approx(entry["runs"][0]["values"][0])


def test_method_curves_cache_reads_each_unchanged_run_once(full_study, monkeypatch):
    _, tmp, _ = full_study
    study = next((tmp / "runs" / "studies").iterdir())
    reads = []
    real_events = RunFolder.events
    monkeypatch.setattr(RunFolder, "events", lambda self: reads.append(self.path) or real_events(self))
    cache: dict = {}
    first = method_curves(study, cache=cache)
    assert len(reads) == len(METHODS)
    assert method_curves(study, cache=cache) == first and len(reads) == len(METHODS)  # nothing read again
    run = Path(load_study(study)["runs"][0]["run_path"])
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write("\n")  # a changed file (a resumed run) is read again
    assert method_curves(study, cache=cache) == first and len(reads) == len(METHODS) + 1
    assert method_curves(study) == first  # without a cache: the same numbers


def test_methods_that_cannot_run_are_rows_marked_skipped_with_the_reason(tmp_path, capsys):
    preset = _preset(tmp_path / "preset.yaml")
    code = main(["compare", str(preset), "--methods", "supervised,sskt,kd", "--seeds", "2", "--runs-dir",
                 str(tmp_path / "runs")])
    assert code == 0
    study = _stdout_study(capsys)
    rows = _csv_rows(study)
    assert rows["supervised"]["runs"] == "2" and rows["supervised"]["best_val_acc_std_pct"] != ""
    assert rows["sskt"]["status"] == "skipped" and rows["kd"]["status"] == "skipped"
    assert rows["sskt"]["note"] == "sskt needs at least 1 source model(s) and the preset has none"
    assert rows["kd"]["note"].startswith("KD needs a teacher trained on the target's classes")
    markdown = (study / "table.md").read_text()
    assert "| kd | 0 | skipped | skipped |" in markdown and "KD needs a teacher" in markdown
    assert "sskt & 0 & skipped" in (study / "table.tex").read_text()
    assert "±" in markdown  # two seeds give a standard deviation
    # curves.csv: per epoch, the mean and sample std of the two supervised runs' validation accuracy
    curves = list(csv.DictReader(io.StringIO((study / "curves.csv").read_text())))
    state = load_study(study)
    per_run = [[e.val["acc"] for e in RunFolder(r["run_path"]).events() if isinstance(e, EpochEnd)]
               for r in state["runs"] if r["method"] == "supervised"]
    assert [row["method"] for row in curves] == ["supervised"] * len(per_run[0])
    for row, a, b in zip(curves, *per_run):
        assert row["runs"] == "2"
        assert float(row["val_acc_mean_pct"]) == pytest.approx(50 * (a + b), abs=1e-3)
        assert float(row["val_acc_std_pct"]) == pytest.approx(100 * abs(a - b) / 2 ** 0.5, abs=1e-3)
    state = load_study(study)
    assert [r["status"] for r in state["runs"] if r["method"] != "supervised"] == ["skipped"] * 4
    assert set(state["skipped"]) == {"sskt", "kd"}


def test_kd_with_a_teacher_of_other_classes_is_skipped_with_the_sentence(models, tmp_path, capsys):
    preset = _preset(tmp_path / "preset.yaml", f"sources=[{{kind: run, path: '{models['shapes']}', name: shapes}}]")
    code = main(["compare", str(preset), "--methods", "kd", "--seeds", "1", "--runs-dir", str(tmp_path / "runs")])
    assert code == 1  # nothing could be compared
    rows = _csv_rows(_stdout_study(capsys))
    assert rows["kd"]["status"] == "skipped"
    assert rows["kd"]["note"] == ("source 'shapes' cannot be the KD teacher: it predicts 12 classes but the target "
                                  "dataset has 6; KD needs a teacher trained on the target's classes")


def test_teacher_trained_per_seed_on_the_same_subset(tmp_path, capsys):
    preset = _preset(tmp_path / "preset.yaml")
    code = main(["compare", str(preset), "--methods", "kd", "--seeds", "1", "--runs-dir", str(tmp_path / "runs"),
                 "--teacher-arch", "tiny_cnn"])
    assert code == 0
    study = _stdout_study(capsys)
    rows = _csv_rows(study)
    assert list(rows) == ["kd teacher", "kd"] and rows["kd"]["runs"] == "1" and rows["kd teacher"]["runs"] == "1"
    state = load_study(study)
    teacher = state["teacher_runs"][0]
    kd_cfg = RunFolder(state["runs"][0]["run_path"]).config()
    assert kd_cfg.sources[0].kind == "run" and Path(kd_cfg.sources[0].path) == Path(teacher["run_path"])
    teacher_cfg = RunFolder(teacher["run_path"]).config()
    assert split_fingerprint(teacher_cfg, 5) == split_fingerprint(kd_cfg, 5)


def test_a_stopped_study_keeps_what_ran_and_says_so(tmp_path):
    stop = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        if isinstance(event, StudyRunEnded):
            stop.set()

    spec = StudySpec(config=loads_preset(TINY), methods=("supervised", "dml"), seeds=(5,))
    study = run_study(spec, tmp_path, on_event, stop)
    state = load_study(study)
    assert state["status"] == "stopped"
    assert [r["status"] for r in state["runs"]] == ["finished", "not run"]
    assert (study / "table.md").is_file() and "seed 5 not run" in (study / "table.md").read_text()


def test_bad_input_is_refused_before_any_study_folder(tmp_path, capsys):
    preset = _preset(tmp_path / "preset.yaml")
    for argv, message in (
        (["--methods", "supervised,kdd"], "unknown method 'kdd'"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--set", "kd:data.labels_per_class=8", "--methods", "kd"], "same data split"),
        (["--set", "train.lr=-1"], "train.lr"),
    ):
        assert main(["compare", str(preset), "--runs-dir", str(tmp_path / "runs"), *argv]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- statistics and formats

def test_mean_and_sample_std():
    assert mean_std([]) == (None, None)
    assert mean_std([0.5]) == (0.5, None)
    mean, std = mean_std([0.2, 0.4, 0.9])
    assert mean == pytest.approx(0.5)
    assert std == pytest.approx(math.sqrt(((0.3) ** 2 + (0.1) ** 2 + (0.4) ** 2) / 2))


def test_failed_runs_are_noted_not_averaged():
    def run(seed, status, best, message=""):
        return {"method": "dml", "seed": seed, "status": status, "best_val_acc": best, "final_val_acc": best,
                "wall_time_s": 2.0, "message": message}

    state = {"methods": ["dml"], "runs": [run(0, "finished", 0.5), run(1, "failed", 0.9, "the loss became NaN"),
                                          run(2, "finished", 0.7)]}
    row = summarize(state)[0]
    assert row["runs"] == 2 and row["best_mean"] == pytest.approx(0.6) and row["status"] == "incomplete"
    assert row["note"] == "seed 1 failed: the loss became NaN"


def test_latex_escapes_reasons():
    state = {"name": "a_b", "preset_text": "", "seeds": [0], "splits": {"0": {"fingerprint": "x"}}, "methods": []}
    rows = [{"method": "kd", "status": "skipped", "note": "100% of a_b & {c}", "runs": 0}]
    tex = latex_table(state, rows)
    assert "100\\% of a\\_b \\& \\{c\\}" in tex and "Study a\\_b" in tex


def test_per_method_overrides_are_split_from_shared_ones():
    shared, per = split_overrides(["train.epochs=2", "kd:method.distill_weight=0.5", "dml:method.peers=3"],
                                  ["kd", "dml"])
    assert shared == ["train.epochs=2"] and per == {"kd": ("method.distill_weight=0.5",), "dml": ("method.peers=3",)}
    with pytest.raises(UserInputError, match="not one of the compared methods"):
        split_overrides(["maxl:method.psi=3"], ["kd"])
    with pytest.raises(UserInputError, match="same data split"):
        split_overrides(["kd:train.seed=3"], ["kd"])
