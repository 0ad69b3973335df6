"""Pascal VOC in the VOCdevkit layout: a tiny fake devkit written by the test (real JPEGs and
annotation XML), targets with difficult objects ignored, the standard splits, hostile and broken
XML refused in one sentence naming the file, and a training run that reports mAP."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sskt_engine.config import DataConfig, loads_preset
from sskt_engine.data import DATASETS, load_dataset
from sskt_engine.data.safe_xml import parse_xml_file
from sskt_engine.data.voc import VOC_CLASSES
from sskt_engine.errors import DataError
from sskt_engine.trainer import Trainer

IGNORED = -1.0


def _annotation(objects: list[tuple[str, int]]) -> str:
    body = "".join(f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>"
                   f"<difficult>{difficult}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
                   f"<ymax>9</ymax></bndbox></object>" for name, difficult in objects)
    return f"<annotation><folder>VOC2007</folder><size><width>24</width><height>20</height></size>{body}</annotation>"


IMAGES = {  # id -> objects (class, difficult)
    "000001": [("dog", 0), ("person", 0)],
    "000002": [("cat", 0), ("dog", 1)],  # the dog is difficult only: ignored
    "000003": [("car", 0), ("car", 1)],  # one plain car: present
    "000004": [("person", 0)],
    "000005": [("dog", 0)],
    "000006": [("cat", 1)],  # nothing but a difficult cat
}
SPLITS = {"trainval": ["000001", "000002", "000003", "000004"], "test": ["000005", "000006"],
          "train": ["000001", "000002"], "val": ["000003", "000004"]}


def write_devkit(root: Path, year: str = "2007") -> Path:
    folder = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for image_id, objects in IMAGES.items():
        pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "JPEGImages" / f"{image_id}.jpg", quality=90)
        (folder / "Annotations" / f"{image_id}.xml").write_text(_annotation(objects))
    for split, ids in SPLITS.items():
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return folder


def _cfg(root: Path, dataset: str = "voc2007", **kw) -> DataConfig:
    return DataConfig(dataset=dataset, root=str(root), image_size=16, **kw)


def _row(**values: float) -> list[float]:
    return [values.get(name, 0.0) for name in VOC_CLASSES]


def test_voc2007_trains_on_trainval_and_scores_on_test_with_difficult_ignored(tmp_path):
    write_devkit(tmp_path)
    info = DATASETS.get("voc2007")
    assert info.task == "multi_label" and info.num_classes == 20 and info.needs_root
    splits = info.load(_cfg(tmp_path))
    assert splits.multi_label and splits.class_names == VOC_CLASSES and len(VOC_CLASSES) == 20
    assert splits.train.images.shape == (4, 3, 16, 16) and len(splits.val) == 2
    assert splits.train.labels.tolist() == [_row(dog=1, person=1), _row(cat=1, dog=IGNORED), _row(car=1),
                                            _row(person=1)]
    assert splits.val.labels.tolist() == [_row(dog=1), _row(cat=IGNORED)]
    assert any("objects marked difficult are ignored" in note for note in splits.notes)


def test_voc2012_trains_on_train_and_scores_on_val(tmp_path):
    write_devkit(tmp_path / "devkit", year="2012")
    # data.root may also name VOCdevkit itself
    splits = DATASETS.get("voc2012").load(_cfg(tmp_path / "devkit" / "VOCdevkit", "voc2012"))
    assert len(splits.train) == 2 and splits.val.labels.tolist() == [_row(car=1), _row(person=1)]


def test_missing_devkit_and_missing_files_are_one_sentence(tmp_path):
    with pytest.raises(DataError, match="holds no VOC2007 dataset"):
        DATASETS.get("voc2007").load(_cfg(tmp_path))
    folder = write_devkit(tmp_path)
    (folder / "JPEGImages" / "000004.jpg").unlink()
    with pytest.raises(DataError, match=r"image .*000004\.jpg listed in ImageSets/Main/trainval\.txt is missing"):
        DATASETS.get("voc2007").load(_cfg(tmp_path))
    Image.new("RGB", (24, 20)).save(folder / "JPEGImages" / "000004.jpg")
    (folder / "ImageSets" / "Main" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"test\.txt is missing"):
        DATASETS.get("voc2007").load(_cfg(tmp_path))


def test_an_id_that_leaves_the_dataset_is_refused(tmp_path):
    folder = write_devkit(tmp_path)
    (folder / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n../../../etc/passwd\n")
    with pytest.raises(DataError, match="which is not an image id"):
        DATASETS.get("voc2007").load(_cfg(tmp_path))


def test_unknown_class_names_the_file(tmp_path):
    folder = write_devkit(tmp_path)
    (folder / "Annotations" / "000003.xml").write_text(_annotation([("unicorn", 0)]))
    with pytest.raises(DataError, match=r"000003\.xml has an object of class 'unicorn'"):
        DATASETS.get("voc2007").load(_cfg(tmp_path))


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><object><name>&lol3;</name><difficult>0</difficult></object></annotation>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><object><name>&secret;</name></object></annotation>"""


@pytest.mark.parametrize("text, reason", [
    (BILLION_LAUGHS, "declares a DTD or entities"),
    (EXTERNAL, "declares a DTD or entities"),
    ("<annotation><object><name>dog</name></object>", "is not well-formed XML"),
    ("<annotation><name>&undeclared;</name></annotation>", "is not well-formed XML"),
    ("not xml at all", "is not well-formed XML"),
    ("", "is not well-formed XML"),
])
def test_hostile_or_broken_xml_is_one_sentence_naming_the_file(tmp_path, text, reason):
    folder = write_devkit(tmp_path)
    (folder / "Annotations" / "000002.xml").write_text(text)
    with pytest.raises(DataError) as caught:
        DATASETS.get("voc2007").load(_cfg(tmp_path))
    message = str(caught.value)
    assert reason in message and "000002.xml" in message and message.count(". ") == 0 and "\n" not in message


def test_oversized_xml_is_not_read(tmp_path):
    path = tmp_path / "big.xml"
    path.write_text("<a>" + "x" * (2 * 1024 * 1024) + "</a>")
    with pytest.raises(DataError, match="larger than 1024 KiB"):
        parse_xml_file(path)
    small = tmp_path / "small.xml"
    small.write_text("<a><b>1</b></a>")
    assert parse_xml_file(small).findtext("b") == "1"


def test_training_on_a_vocdevkit_reports_map(tmp_path):
    write_devkit(tmp_path / "data")
    config = loads_preset(f"""
name: voc-tiny
target: {{arch: tiny_cnn}}
data: {{dataset: voc2007, root: {tmp_path / 'data'}, image_size: 16, labels_per_class: 1}}
method: {{name: supervised}}
train: {{epochs: 1, batch_size: 2, lr: 0.01, device: cpu, log_every: 1}}
""")
    data = load_dataset(config.data, 0)
    assert any("at least 1 positive images" in note for note in data.notes)
    folder = Trainer(config, tmp_path / "runs").run()
    summary = folder.summary()
    assert summary.status == "finished", summary.message
    assert summary.metric.key == "map" and summary.task == "multi_label"
    # the test split has one scorable positive (a dog; the difficult cat is not scored), so only
    # the dog has an AP and the mean is that AP
    report = folder.eval_report("last")
    defined = [name for name, value in zip(report.class_names, report.per_class) if not math.isnan(value)]
    assert defined == ["dog"] and report.per_class[VOC_CLASSES.index("dog")] in (0.5, 1.0)
    assert summary.final_val["map"] == report.per_class[VOC_CLASSES.index("dog")]


def test_sskt_train_on_a_vocdevkit_from_the_command_line(tmp_path, capsys):
    from sskt_engine.cli import main
    from sskt_engine.runs import RunFolder

    write_devkit(tmp_path / "data")
    preset = tmp_path / "voc.yaml"
    preset.write_text(f"""
name: voc-cli
target: {{arch: tiny_cnn}}
data: {{dataset: voc2007, root: '{tmp_path / 'data'}', image_size: 16}}
method: {{name: supervised}}
train: {{epochs: 1, batch_size: 2, lr: 0.01, device: cpu, log_every: 1}}
""")
    code = main(["train", str(preset), "--runs-dir", str(tmp_path / "runs"), "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "mAP" in captured.err  # the progress lines name the run's metric
    run = Path(captured.out.strip().splitlines()[-1][len("run: "):])
    summary = RunFolder(run).summary()
    assert summary.task == "multi_label" and summary.metric.key == "map"
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    assert run.name in capsys.readouterr().out
