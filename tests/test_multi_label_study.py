"""``sskt compare`` on multi-label data: every table and curve says mAP, never accuracy, and the
figures are the runs' own mAP."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sskt_engine.cli import main
from sskt_engine.resources import resource_path
from sskt_engine.runs import RunFolder
from sskt_engine.study import load_study


def test_compare_on_the_multi_label_demo_tabulates_map(tmp_path, capsys):
    preset = resource_path("presets", "demo-multilabel.yaml")
    code = main(["compare", str(preset), "--methods", "supervised,sskt", "--seeds", "1", "--runs-dir",
                 str(tmp_path / "runs"), "--threads", "1",
                 "--set", "target.arch=tiny_cnn", "--set", "data.labels_per_class=8", "--set", "train.epochs=1",
                 "--set", "train.warmup_epochs=0", "--set", "train.batch_size=16", "--set", "train.device=cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    study = Path(out.strip().splitlines()[-1][len("study: "):])
    markdown = (study / "table.md").read_text()
    assert "mAP" in markdown and "accuracy" not in markdown.lower()
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO((study / "table.csv").read_text()))}
    assert set(rows) == {"supervised", "sskt"}
    for run in load_study(study)["runs"]:
        summary = RunFolder(run["run_path"]).summary()
        assert summary.metric.key == "map"
        row = rows[run["method"]]
        final = [value for key, value in row.items() if key.startswith("final") and key.endswith("mean_pct")]
        assert final and abs(float(final[0]) - 100 * summary.final_score) < 0.01
    curves = (study / "curves.csv").read_text().splitlines()[0]
    assert "map" in curves.lower()
