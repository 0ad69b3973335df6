"""The Results tab on a run of the real Trainer: it names the epoch each evaluation belongs to.

The trainer writes 1-based epoch numbers into eval/*.json; the view used to add 1 again (a
6-epoch run said "evaluated at epoch 7"), which the fake trainer's 0-based reports hid."""

from __future__ import annotations

import re

from app.widgets.results_view import ResultsView
from app.worker import wait_for_all
from sskt_engine.trainer import Trainer
from test_trainer import tiny_config  # the same tiny real run the trainer tests use


def _epoch_named(view: ResultsView) -> int:
    found = re.findall(r"evaluated at epoch (\d+)", view.metrics.text())
    assert len(found) == 1, view.metrics.text()
    return int(found[0])


def test_results_name_the_epoch_of_the_real_trainer_s_reports(qtbot, tmp_path):
    # a held-out validation split: only then does a run choose (and the view show) a best epoch
    folder = Trainer(tiny_config("data.val_split=0.2"), tmp_path).run()
    summary = folder.summary()
    assert summary.status == "finished" and summary.epochs_completed == 3
    view = ResultsView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=20000):
        view.show_run(folder.path)
    view.which.setCurrentIndex(view.which.findData("last"))
    assert _epoch_named(view) == 3  # the last of 3 epochs, not "epoch 4"
    view.which.setCurrentIndex(view.which.findData("best"))
    assert _epoch_named(view) == summary.best_epoch == folder.eval_report("best").epoch
    assert 1 <= summary.best_epoch <= 3
    report = folder.eval_report("best")
    assert f"acc <b>{100 * report.values['acc']:.2f}%</b>" in view.metrics.text()
    assert f"best val acc <b>{100 * summary.best_score:.2f}%</b>" in view.metrics.text()
    assert wait_for_all(30000)  # the predictions worker, before the view goes


def test_results_show_the_users_name_for_a_run_and_no_best_when_none_was_chosen(qtbot, tmp_path):
    from sskt_engine.run_labels import update_labels

    folder = Trainer(tiny_config(), tmp_path).run()  # no held-out split: no best epoch is chosen
    assert folder.summary().selection == "none"
    update_labels(folder.path, name="baseline <lr 0.05>")
    view = ResultsView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=20000):
        view.show_run(folder.path)
    assert "<b>baseline &lt;lr 0.05&gt;</b>" in view.title.text() and folder.path.name in view.title.text()
    assert "best val" not in view.metrics.text() and "final val acc <b>" in view.metrics.text()
    assert "best epoch" not in [view.which.itemText(i) for i in range(view.which.count())]
    assert wait_for_all(30000)
