from __future__ import annotations

import numpy as np

from sskt_engine.config import loads_preset
from sskt_engine.validation_preview import validation_predictions
from sskt_engine.trainer import Trainer


def test_validation_predictions_match_the_runs_accuracy_scale(tmp_path):
    cfg = loads_preset("name: t\ntarget: {arch: tiny_cnn}\ndata: {dataset: demo, labels_per_class: 8}\n"
                       "method: {name: supervised}\ntrain: {epochs: 1, batch_size: 16, device: cpu}\n")
    folder = Trainer(cfg, tmp_path).run()
    images, truth, predicted = validation_predictions(folder.path, count=12)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert len(truth) == len(predicted) == 12
    names = set(folder.eval_report("best").class_names)
    assert all(len(labels) == 1 for labels in truth + predicted)  # single-label: one name each
    assert {t[0] for t in truth} <= names and {p[0] for p in predicted} <= names
    again = validation_predictions(folder.path, count=12)
    assert again[1] == truth and again[2] == predicted  # same images for the same seed
