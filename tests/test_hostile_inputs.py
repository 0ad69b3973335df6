"""Issue 14 (round two), the data and preset items: files made by someone else, or by a
careless disk, are read right or refused with one sentence, never hang and never count twice."""

from __future__ import annotations

import os
import threading
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from sskt_engine.config import DataConfig, load_preset, loads_preset
from sskt_engine.data.image_decoding import UnsupportedImage, open_rgb
from sskt_engine.data.image_folder import load_image_folder, load_rgb
from sskt_engine.errors import DataError, PresetError


def _png(path: Path, value: int = 100, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)
    return path


def _cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(dataset="imagefolder", root=str(root), image_size=8, **kw)


def _within(seconds: float, fn):
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it blocks."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


# ----------------------------------------------------------------------------- item 9: pixel modes

def test_16_bit_greyscale_png_keeps_its_grey_levels(tmp_path):
    grey = np.full((8, 8), 32768, dtype=np.uint16)  # half of full scale
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    with Image.open(path) as img:
        assert img.mode.startswith("I")  # PIL reads it as 16/32-bit integers
    pixels = np.asarray(load_rgb(str(path), 8))
    assert pixels.shape == (8, 8, 3) and abs(int(pixels.mean()) - 128) <= 1  # a plain convert("RGB") gives 255


def test_float_tiff_in_0_1_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((8, 8), 0.25, dtype=np.float32)).save(path)
    with Image.open(path) as img:
        assert img.mode == "F"
    pixels = np.asarray(load_rgb(str(path), 8))
    assert abs(int(pixels.mean()) - 64) <= 1  # a plain convert("RGB") gives 0


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    image = Image.fromarray(np.zeros((4, 8, 3), dtype=np.uint8))  # 8 wide, 4 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(path, exif=exif.tobytes())
    assert open_rgb(str(path)).size == (4, 8)  # shown 4 wide, 8 high


def test_a_mode_that_cannot_be_mapped_is_refused_with_the_file_name(monkeypatch):
    from sskt_engine.data import image_decoding

    odd = Image.new("I;16", (2, 2))
    monkeypatch.setattr(image_decoding, "_SIXTEEN_BIT_MODES", set())  # as if I;16 were a mode we do not know
    with pytest.raises(UnsupportedImage, match="odd.png has pixel mode I;16, which this app cannot turn into RGB"):
        image_decoding.to_rgb(odd, "odd.png")


def test_an_image_folder_of_16_bit_pngs_trains_on_real_grey_levels(tmp_path):
    for cls, level in (("dark", 10000), ("light", 50000)):
        for i in range(3):
            path = tmp_path / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), level, dtype=np.uint16)).save(path)
    splits = load_image_folder(_cfg(tmp_path))
    means = [float(splits.train.images[splits.train.labels == c].float().mean()) for c in (0, 1)]
    assert means[0] == pytest.approx(10000 / 257, abs=1) and means[1] == pytest.approx(50000 / 257, abs=1)


# ----------------------------------------------------------------------------- items 10, 11: links and special files

def test_a_symlink_loop_in_a_class_folder_lists_each_file_once(tmp_path):
    for cls in ("a", "b"):
        for i in range(18):
            _png(tmp_path / cls / f"{i}.png")
    os.symlink(".", tmp_path / "a" / "again")  # a loop: a/again/again/... is a again
    splits = _within(60, lambda: load_image_folder(_cfg(tmp_path)))
    assert len(splits.train) == 36  # before the fix: 516
    assert any("reached a second time through links" in note for note in splits.notes)


def test_a_file_linked_from_val_into_train_is_not_in_both_splits(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            for i in range(3):
                _png(tmp_path / split / cls / f"{split}{i}.png", value=10 * i)
    os.symlink(tmp_path / "train" / "a" / "train0.png", tmp_path / "val" / "a" / "leak.png")
    splits = load_image_folder(_cfg(tmp_path))
    assert len(splits.train) == 6 and len(splits.val) == 6  # the leaked file is not validated on
    assert any("image file(s) reached a second time" in note and "leak.png" in note for note in splits.notes)


def test_a_fifo_named_like_an_image_is_skipped_without_blocking(tmp_path):
    for cls in ("a", "b"):
        for i in range(2):
            _png(tmp_path / cls / f"{i}.png")
    os.mkfifo(tmp_path / "a" / "pipe.png")
    splits = _within(30, lambda: load_image_folder(_cfg(tmp_path)))
    assert len(splits.train) == 4
    assert any("not regular files" in note and "pipe.png" in note for note in splits.notes)


# ----------------------------------------------------------------------------- item 12: one class, two spellings

def test_class_folders_in_nfc_and_nfd_are_one_class(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    for split, name in (("train", nfc), ("val", nfd)):
        for cls in (name, "tea"):
            for i in range(2):
                _png(tmp_path / split / cls / f"{i}.png")
    splits = load_image_folder(_cfg(tmp_path))
    assert len(splits.class_names) == 2 and len(splits.val) == 4  # the NFD folder's images are validated


def test_two_folders_of_one_class_name_in_two_spellings_are_refused(tmp_path):
    for name in (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")):
        _png(tmp_path / name / "0.png")
    with pytest.raises(DataError, match="differ only in how their letters are encoded"):
        load_image_folder(_cfg(tmp_path))


# ----------------------------------------------------------------------------- item 3: preset size and kind

def test_a_huge_preset_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    path = tmp_path / "huge.yaml"
    path.write_text("train:\n  milestones:\n" + "".join(f"  - {i}\n" for i in range(2_000_000)))
    def never(*args, **kwargs):
        raise AssertionError("the YAML parser was called")

    monkeypatch.setattr(yaml, "safe_load", never)  # before the fix: parsed for 72 s and 2 GB, then refused
    monkeypatch.setattr(yaml, "compose", never)
    with pytest.raises(PresetError, match="presets are small text files"):
        load_preset(path)
    with pytest.raises(PresetError, match="presets are small text files"):
        loads_preset(path.read_text())


@pytest.mark.parametrize("make", ["dev_zero", "fifo"])
def test_a_preset_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, make):
    if make == "dev_zero":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "preset.yaml"
        os.mkfifo(path)
    with pytest.raises(PresetError, match="is not a regular file"):
        _within(30, lambda: load_preset(path))


# ----------------------------------------------------------------------------- item 12: a stop before the first epoch

def test_a_stop_during_setup_stops_before_training_and_makes_no_folder(tmp_path):
    import threading

    from sskt_engine.errors import StoppedBeforeStart
    from sskt_engine.trainer import Trainer
    from test_trainer import tiny_config

    stop = threading.Event()
    stop.set()  # Ctrl+C arrived while the dataset was loading
    with pytest.raises(StoppedBeforeStart, match="stopped while loading the dataset, before the first epoch: no "
                                                 "epoch completed and no run folder was made"):
        Trainer(tiny_config(), tmp_path / "runs", stop_event=stop).run()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_stop_while_a_big_image_folder_decodes_ends_the_decoding_within_a_few_files(tmp_path, monkeypatch):
    import threading
    import time

    import numpy as np
    from PIL import Image

    from sskt_engine.config import loads_preset
    from sskt_engine.data import image_folder
    from sskt_engine.errors import StoppedBeforeStart
    from sskt_engine.trainer import Trainer

    total = 0
    for split in ("train", "val"):
        for name in ("a", "b"):
            folder = tmp_path / "images" / split / name
            folder.mkdir(parents=True)
            for i in range(100):
                Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(folder / f"{i}.png")
                total += 1
    stop = threading.Event()
    decoded = []
    real = image_folder.load_rgb

    def decode_and_press_ctrl_c_after_20(path, size):
        decoded.append(path)
        if len(decoded) == 20:
            stop.set()
        if stop.is_set():
            time.sleep(0.02)  # a big photo each: the threads cannot race through the rest meanwhile
        return real(path, size)

    monkeypatch.setattr(image_folder, "load_rgb", decode_and_press_ctrl_c_after_20)
    config = loads_preset(f"name: big\ntarget: {{arch: tiny_cnn}}\ndata: {{dataset: imagefolder, root: '{tmp_path / 'images'}'}}\n"
                          "method: {name: supervised}\ntrain: {epochs: 1, device: cpu}\n")
    with pytest.raises(StoppedBeforeStart, match="loading the dataset"):
        Trainer(config, tmp_path / "runs", stop_event=stop).run()
    # seen within STOP_CHECK_EVERY results; the files not started are cancelled
    assert 20 <= len(decoded) < total // 2


def test_the_cli_says_no_epoch_completed_never_a_negative_or_nan_score(capsys):
    from sskt_engine import events as ev
    from sskt_engine.cli import EXIT_FAILED, TerminalProgress, _run_trainer
    from sskt_engine.errors import StoppedBeforeStart

    class StoppedEarly:
        def run(self):
            raise StoppedBeforeStart("loading the dataset")

    assert _run_trainer(lambda stop, progress: StoppedEarly()) == EXIT_FAILED
    assert "no epoch completed and no run folder was made" in capsys.readouterr().err
    progress = TerminalProgress()
    progress(ev.RunFinished(status="stopped", epochs_completed=0, best_val_acc=-1.0, final_val_acc=float("nan"),
                            wall_time_s=3.0, run_dir="x", time=0.0))
    out = capsys.readouterr().err  # progress goes to stderr; stdout keeps the run folder line
    assert "no epoch completed" in out and "-100" not in out and "nan" not in out.lower()
