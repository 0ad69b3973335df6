"""Your own multi-label data as a CSV (real PNG files written by the test): one CSV or a folder
with train.csv + val.csv, classes from classes.txt or the labels used, an image without labels,
and one sentence for a missing file, an unknown label or a malformed row; a run reports mAP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sskt_engine.config import DataConfig, loads_preset
from sskt_engine.data import DATASETS, load_dataset
from sskt_engine.errors import DataError
from sskt_engine.trainer import Trainer


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_csv(folder: Path, name: str, rows: list[tuple[str, str]], header: bool = True) -> Path:
    for i, (path, _) in enumerate(rows):
        if not (folder / path).exists():
            _image(folder / path, i)
    lines = (["path,labels"] if header else []) + [f"{p},{labels}" for p, labels in rows]
    target = folder / name
    target.write_text("\n".join(lines) + "\n")
    return target


ROWS = [("img/a.png", "dog;person"), ("img/b.png", "cat"), ("img/c.png", ""), ("img/d.png", "person ; cat")]


def _load(root: Path, **kw):
    return DATASETS.get("multilabel-csv").load(DataConfig(dataset="multilabel-csv", root=str(root), image_size=8, **kw))


def test_one_csv_with_classes_from_its_labels(tmp_path):
    csv_path = write_csv(tmp_path, "labels.csv", ROWS)
    splits = _load(csv_path)
    assert DATASETS.get("multilabel-csv").task == "multi_label"
    assert splits.multi_label and splits.class_names == ("cat", "dog", "person")  # sorted labels used
    assert splits.train.labels.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 0, 1]]
    assert splits.train.images.shape == (4, 3, 8, 8) and len(splits.val) == 0  # val comes from val_split
    assert any("1 training image(s) have no label" in note for note in splits.notes)


def test_folder_with_train_and_val_csv_and_classes_txt(tmp_path):
    write_csv(tmp_path, "train.csv", ROWS[:2], header=False)
    write_csv(tmp_path, "val.csv", [("img/v.png", "person")])
    (tmp_path / "classes.txt").write_text("person\ndog\ncat\nbird\n")
    splits = _load(tmp_path)
    assert splits.class_names == ("person", "dog", "cat", "bird")  # classes.txt's order
    assert splits.train.labels.tolist() == [[1, 1, 0, 0], [0, 0, 1, 0]]
    assert splits.val.labels.tolist() == [[1, 0, 0, 0]]
    assert any("no positive training image, e.g. bird" in note for note in splits.notes)


@pytest.mark.parametrize("rows, extra, message", [
    ([("img/a.png", "dog"), ("img/gone.png", "cat")], "missing", r"line 3 names image .*gone\.png, which does not exist"),
    ([("img/a.png", "dog;unicorn")], "classes", r"line 2 has label 'unicorn', which is not in classes\.txt"),
    ([("img/a.png", "dog")], "bad-row", r"line 3 is not 'path,labels'"),
])
def test_user_mistakes_are_one_sentence_naming_the_file(tmp_path, rows, extra, message):
    csv_path = write_csv(tmp_path, "labels.csv", rows)
    if extra == "missing":
        (tmp_path / "img" / "gone.png").unlink()
    if extra == "classes":
        (tmp_path / "classes.txt").write_text("dog\ncat\n")
    if extra == "bad-row":
        with csv_path.open("a") as handle:
            handle.write("img/a.png,dog,extra\n")
    with pytest.raises(DataError, match=message) as caught:
        _load(csv_path)
    assert str(csv_path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_csv_and_empty_csv(tmp_path):
    with pytest.raises(DataError, match="holds no train.csv"):
        _load(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        _load(tmp_path / "nothing.csv")
    (tmp_path / "empty.csv").write_text("path,labels\n")
    with pytest.raises(DataError, match="lists no images"):
        _load(tmp_path / "empty.csv")


def test_training_on_a_csv_reports_map_and_holds_out_val(tmp_path):
    rows = [(f"img/{i}.png", ["dog", "cat", "dog;cat"][i % 3]) for i in range(12)]
    csv_path = write_csv(tmp_path / "data", "labels.csv", rows)
    config = loads_preset(f"""
name: csv-tiny
target: {{arch: tiny_cnn}}
data: {{dataset: multilabel-csv, root: {csv_path}, image_size: 8, val_split: 0.25}}
method: {{name: supervised}}
train: {{epochs: 1, batch_size: 4, lr: 0.01, device: cpu, log_every: 1}}
""")
    data = load_dataset(config.data, 0)
    assert len(data.val) >= 2 and len(data.train) + len(data.val) == 12
    folder = Trainer(config, tmp_path / "runs").run()
    summary = folder.summary()
    assert summary.status == "finished", summary.message
    assert summary.metric.key == "map" and 0.0 <= summary.final_score <= 1.0
