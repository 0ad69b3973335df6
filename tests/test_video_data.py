"""Clip data: temporal sampling, decoding real video files and frame folders, the UCF101 / HMDB51 /
video folder layouts, the clip batch stream and the video demo."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("av")

import sskt_engine.catalog  # noqa: E402,F401  (registers the datasets)
from sskt_engine.config import DataConfig  # noqa: E402
from sskt_engine.data import load_dataset  # noqa: E402
from sskt_engine.data.clip_batches import (ClipBatchStream, average_views, batch_stream,  # noqa: E402
                                           resident_frame_indices, time_positions)
from sskt_engine.data.clips import ClipSet, FileClipSet, clip_frame_indices, view_positions  # noqa: E402
from sskt_engine.data.frame_folders import frame_files  # noqa: E402
from sskt_engine.data.video_decoding import (clip_picker, probe_video, read_frames,  # noqa: E402
                                             read_prediction_clip, readable_clip_set)
from sskt_engine.errors import DataError  # noqa: E402
from video_test_files import (UCF_CLASSES, frame_index, frames_of, make_ucf101, truncate,  # noqa: E402
                              ucf_name, write_audio_only, write_frame_folder, write_video)

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _indices_read(frames: np.ndarray) -> list[int]:
    """Which frame each decoded frame is (from its red channel at the centre)."""
    h, w = frames.shape[1] // 2, frames.shape[2] // 2
    return [frame_index(f[h, w, 0]) for f in frames]


# ----------------------------------------------------------------------------- temporal sampling

def test_clip_frame_indices_by_hand():
    assert clip_frame_indices(10, 4, 1, 0.0) == [0, 1, 2, 3]
    assert clip_frame_indices(10, 4, 1, 0.999) == [6, 7, 8, 9]
    assert clip_frame_indices(10, 4, 1, 0.5) == [3, 4, 5, 6]  # 7 starts fit; the middle one
    assert clip_frame_indices(10, 3, 2, 0.5) == [3, 5, 7]  # span 5, 6 starts
    assert clip_frame_indices(10, 4, 1, 1.0) == [6, 7, 8, 9]  # never past the end
    # a sample shorter than the clip loops, and every clip has clip_len frames
    assert clip_frame_indices(3, 5, 1, 0.5) == [0, 1, 2, 0, 1]
    assert clip_frame_indices(4, 3, 2, 0.2) == [0, 2, 0]
    assert view_positions(1) == [0.5] and view_positions(2) == [0.25, 0.75]


def test_resident_frame_indices_match_the_reference_everywhere():
    for frames, clip_len, stride in [(10, 4, 1), (10, 3, 2), (3, 5, 1), (8, 8, 1), (9, 2, 4)]:
        positions = torch.rand(40, 2, generator=torch.Generator().manual_seed(frames))
        vectorised = resident_frame_indices(positions, frames, clip_len, stride)
        for row in range(40):
            for view in range(2):
                expected = clip_frame_indices(frames, clip_len, stride, float(positions[row, view]))
                assert vectorised[row, view].tolist() == expected


def test_temporal_positions_are_deterministic_by_seed_and_epoch():
    a = time_positions(50, seed=1, epoch=3, random=True)
    assert torch.equal(a, time_positions(50, seed=1, epoch=3, random=True))
    assert not torch.equal(a, time_positions(50, seed=1, epoch=4, random=True))
    assert not torch.equal(a, time_positions(50, seed=2, epoch=3, random=True))
    torch.manual_seed(123)  # global RNG plays no part
    assert torch.equal(a, time_positions(50, seed=1, epoch=3, random=True))
    assert torch.equal(time_positions(5, seed=1, epoch=0, random=False), torch.full((5,), 0.5))


def test_average_views_is_the_log_of_the_mean_probability():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0], [1.0, 3.0]])
    out = average_views(logits, 2)
    expected = torch.stack([torch.softmax(logits[:2], 1).mean(0), torch.softmax(logits[2:], 1).mean(0)]).log()
    assert torch.allclose(out, expected)
    assert average_views(logits, 1) is logits


# ----------------------------------------------------------------------------- decoding

CODECS = [("clip.avi", "mpeg4"), ("clip.mp4", "libx264"), ("clip.mkv", "mpeg4"), ("clip.mp4", "mpeg4")]


@pytest.mark.parametrize("name,codec", CODECS)
def test_video_files_decode_to_the_frames_a_clip_takes(tmp_path, name, codec):
    path = write_video(tmp_path / codec / name, frames_of(13), codec)  # an odd frame count
    assert probe_video(str(path))
    every = read_frames(str(path), lambda n: list(range(n)), 16)
    assert every.shape == (13, 16, 16, 3) and every.dtype == np.uint8
    assert _indices_read(every) == list(range(13))
    centre = read_frames(str(path), clip_picker(4, 2, [0.5]), 16)  # span 7 of 13: start 3
    assert _indices_read(centre) == [3, 5, 7, 9]
    two = read_frames(str(path), clip_picker(3, 1, [0.0, 1.0]), 12)
    assert _indices_read(two) == [0, 1, 2, 10, 11, 12]


def test_frames_are_resized_by_the_shorter_side_and_centre_cropped(tmp_path):
    frames = frames_of(3, height=24, width=48)
    frames[:, :, :12] = 0  # left quarter black: cropped away by a centre crop of a 2:1 frame
    frames[:, :, 36:] = 0
    path = write_video(tmp_path / "wide.avi", frames)
    out = read_frames(str(path), lambda n: [1], 12)
    assert out.shape == (1, 12, 12, 3)
    assert int(out[0, :, 2:-2, 2].min()) > 150  # all of the crop is the coloured middle


def test_a_short_video_is_looped(tmp_path):
    path = write_video(tmp_path / "short.avi", frames_of(3))
    assert _indices_read(read_frames(str(path), clip_picker(5, 1, [0.5]), 8)) == [0, 1, 2, 0, 1]


def test_a_truncated_avi_reads_the_frames_it_still_holds(tmp_path):
    path = write_video(tmp_path / "cut.avi", frames_of(13))
    truncate(path, 0.9)  # AVI keeps its header in front: the first frames are still there
    every = read_frames(str(path), lambda n: list(range(n)), 8)
    assert 1 <= len(every) < 13 and _indices_read(every) == list(range(len(every)))
    # the header still says 13 frames: the clip is picked again among those that decode
    clip = read_frames(str(path), clip_picker(4, 1, [1.0]), 8)
    assert _indices_read(clip) == list(range(len(every) - 4, len(every)))


def test_unreadable_videos_are_found_when_listed_and_left_out(tmp_path):
    good = write_video(tmp_path / "good.avi", frames_of(5))
    cut = truncate(write_video(tmp_path / "cut.mp4", frames_of(9), "libx264"), 0.3)  # index at the end: gone
    audio = write_audio_only(tmp_path / "sound.wav")
    garbage = tmp_path / "noise.avi"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    assert probe_video(str(good))
    for bad in (cut, audio, garbage):
        assert not probe_video(str(bad))
    clip_set, bad = readable_clip_set([str(good), str(cut), str(audio), str(garbage)], [0, 1, 1, 0], 16)
    assert clip_set.paths == (str(good),) and clip_set.labels.tolist() == [0]
    assert sorted(bad) == sorted([str(cut), str(audio), str(garbage)])


def test_frame_folders_read_in_frame_order_like_the_video(tmp_path):
    frames = frames_of(12)
    padded = write_frame_folder(tmp_path / "padded", frames)
    plain = write_frame_folder(tmp_path / "plain", frames, pattern="frame{}.png")  # frame1 ... frame12
    assert [p.rsplit("/", 1)[1] for p in frame_files(str(plain))][:3] == ["frame1.png", "frame2.png", "frame3.png"]
    video = write_video(tmp_path / "same.avi", frames)
    pick = clip_picker(4, 2, [0.5])
    for source in (padded, plain, video):
        assert _indices_read(read_frames(str(source), pick, 16)) == [3, 5, 7, 9]  # 6 starts fit: the 4th


def test_prediction_clip_is_the_centre_clip_channels_first(tmp_path):
    path = write_video(tmp_path / "p.avi", frames_of(11))
    clip = read_prediction_clip(str(path), 5, 16)
    assert clip.shape == (3, 5, 16, 16) and clip.dtype == torch.uint8
    assert [frame_index(v) for v in clip[0, :, 8, 8]] == [3, 4, 5, 6, 7]
    folder = write_frame_folder(tmp_path / "p_frames", frames_of(11))
    from_folder = read_prediction_clip(str(folder), 5, 16)
    assert [frame_index(v) for v in from_folder[0, :, 8, 8]] == [3, 4, 5, 6, 7]
    assert (from_folder.int() - clip.int()).abs().max() <= 8  # the same frames, up to the codecs' losses
    with pytest.raises(DataError, match="does not exist"):
        read_prediction_clip(str(tmp_path / "nothing.avi"), 5, 16)
    with pytest.raises(DataError, match="could not be read"):
        read_prediction_clip(str(write_audio_only(tmp_path / "a.wav")), 5, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no frame images"):
        read_prediction_clip(str(tmp_path / "empty"), 5, 16)


# ----------------------------------------------------------------------------- official layouts

def test_ucf101_official_layout_and_splits(tmp_path):
    root = make_ucf101(tmp_path / "ucf", missing=ucf_name("Basketball", 3, 2))
    write_audio_only(tmp_path / "ucf" / "UCF-101" / "Basketball" / "v_Basketball_g04_c01.avi")  # overwrite: no video
    cfg = DataConfig(dataset="ucf101", root=str(root), image_size=16, clip_len=4)
    splits = load_dataset(cfg, seed=0)
    assert splits.is_video and splits.clip_len == 4 and splits.image_size == 16
    assert splits.class_names == UCF_CLASSES
    assert isinstance(splits.train, FileClipSet)
    assert len(splits.val) == 6 and all("_g01_" in p for p in splits.val.paths)
    assert len(splits.train) == 18 - 2  # one listed video missing, one unreadable
    assert any("not under" in n and "v_Basketball_g03_c02" in n for n in splits.notes)
    assert any("unreadable video" in n and "v_Basketball_g04_c01" in n for n in splits.notes)
    hand = [label for path, label in zip(splits.train.paths, splits.train.labels.tolist()) if "HandStand" in path]
    assert hand and set(hand) == {2}
    split2 = load_dataset(dataclasses.replace(cfg, split=2), seed=0)
    assert all("_g02_" in p for p in split2.val.paths)


def test_ucf101_from_frame_folders_with_split_files_in_root(tmp_path):
    root = make_ucf101(tmp_path / "ucf", frame_folders=True)
    for f in (root / "ucfTrainTestlist").iterdir():
        f.rename(root / f.name)
    splits = load_dataset(DataConfig(dataset="ucf101", root=str(root), image_size=16, clip_len=4), seed=0)
    assert len(splits.train) == 18 and all(not p.endswith(".avi") for p in splits.train.paths)


def test_ucf101_refusals_are_one_sentence(tmp_path):
    with pytest.raises(DataError, match="classInd.txt"):
        load_dataset(DataConfig(dataset="ucf101", root=str(tmp_path)), seed=0)
    root = make_ucf101(tmp_path / "u")
    with pytest.raises(DataError, match="trainlist03"):
        load_dataset(DataConfig(dataset="ucf101", root=str(root), split=3), seed=0)
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 ApplyEyeMakeup\n")
    with pytest.raises(DataError, match="does not list"):
        load_dataset(DataConfig(dataset="ucf101", root=str(root)), seed=0)


def make_hmdb51(root):
    """3 classes, 6 videos each; split 1: videos 0-2 train, 3-4 test, 5 unused; split 2 swaps."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for ci, cls in enumerate(("brush_hair", "cartwheel", "chew")):
        marks = {1: "111220", 2: "222110"}
        for split, mark in marks.items():
            (splits / f"{cls}_test_split{split}.txt").write_text(
                "".join(f"{cls}_video_{v}.avi {m} \n" for v, m in enumerate(mark)))
        for v in range(6):
            write_video(root / "hmdb51_org" / cls / f"{cls}_video_{v}.avi", frames_of(7, green=60 * ci))
    return root


def test_hmdb51_official_layout_and_splits(tmp_path):
    root = make_hmdb51(tmp_path / "hmdb")
    cfg = DataConfig(dataset="hmdb51", root=str(root), image_size=16)
    splits = load_dataset(cfg, seed=0)
    assert splits.class_names == ("brush_hair", "cartwheel", "chew") and splits.clip_len == 16
    assert len(splits.train) == 9 and len(splits.val) == 6
    assert sorted(splits.val.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert all(p.endswith(("_3.avi", "_4.avi")) for p in splits.val.paths)
    split2 = load_dataset(dataclasses.replace(cfg, split=2), seed=0)
    assert len(split2.train) == 6 and all(p.endswith(("_3.avi", "_4.avi")) for p in split2.train.paths)
    with pytest.raises(DataError, match="_test_split3"):
        load_dataset(dataclasses.replace(cfg, split=3), seed=0)


def test_video_folder_mixes_videos_and_frame_folders(tmp_path):
    root = tmp_path / "mine"
    write_video(root / "train" / "jump" / "a.mp4", frames_of(6), "libx264")
    write_frame_folder(root / "train" / "jump" / "b", frames_of(6))
    write_video(root / "train" / "run" / "nested" / "c.avi", frames_of(6))
    write_audio_only(root / "train" / "run" / "d.avi")
    write_video(root / "val" / "run" / "e.avi", frames_of(6))
    splits = load_dataset(DataConfig(dataset="videofolder", root=str(root), image_size=16, clip_len=4), seed=0)
    assert splits.class_names == ("jump", "run") and splits.clip_len == 4
    assert [p.rsplit("/", 1)[1] for p in splits.train.paths] == ["a.mp4", "b", "c.avi"]
    assert splits.train.labels.tolist() == [0, 0, 1] and len(splits.val) == 1
    assert any("unreadable video" in n for n in splits.notes)
    (root / "train" / "empty").mkdir()
    with pytest.raises(DataError, match="no videos"):
        load_dataset(DataConfig(dataset="videofolder", root=str(root)), seed=0)


# ----------------------------------------------------------------------------- the clip stream

def _demo_subset(per_class: int = 3):
    return load_dataset(DataConfig(dataset="demo-video", labels_per_class=per_class), seed=0)


def _stream(dataset, **kw) -> ClipBatchStream:
    args = dict(clip_len=6, frame_stride=1, batch_size=8, shuffle=True, augment=True, mean=MEAN, std=STD,
                device="cpu", seed=5)
    args.update(kw)
    return ClipBatchStream(dataset, **args)


def test_resident_and_loader_paths_give_the_same_batches():
    train = _demo_subset().train
    for kw in (dict(), dict(augment=False, frame_stride=2), dict(shuffle=False, augment=False, views=3)):
        resident = list(_stream(train, resident="on", **kw).epoch(2))
        loaded = list(_stream(train, resident="off", **kw).epoch(2))
        assert len(resident) == len(loaded) == 5
        for a, b in zip(resident, loaded):
            assert torch.equal(a.pixels, b.pixels) and torch.equal(a.indices, b.indices)
            assert torch.equal(a.labels, b.labels) and a.views == b.views


def test_batches_have_the_video_layout_and_are_normalized():
    data = _demo_subset()
    batch = next(iter(_stream(data.train, views=1).epoch(0)))
    assert batch.pixels.shape == (8, 3, 6, 32, 32) and batch.images.shape == (8, 3, 6, 32, 32)
    assert batch.labels.dtype == torch.int64 and batch.indices.dtype == torch.int64
    assert torch.equal(batch.labels, data.train.labels[batch.indices])
    assert torch.allclose(batch.images, (batch.pixels - 0.5) / 0.25)
    plain = next(iter(_stream(data.train, augment=False, shuffle=False, random_clips=False).epoch(0)))
    # the centre clip of 6 of the 10 stored frames starts at frame 2
    assert torch.equal((plain.pixels[0] * 255).round().to(torch.uint8).permute(1, 0, 2, 3),
                       data.train.clips[plain.indices[0], 2:8])


def test_training_clips_change_with_the_epoch_and_repeat_with_the_seed():
    train = _demo_subset().train
    first = next(iter(_stream(train).epoch(0))).pixels
    assert torch.equal(first, next(iter(_stream(train).epoch(0))).pixels)
    assert not torch.equal(first, next(iter(_stream(train).epoch(1))).pixels)
    assert not torch.equal(first, next(iter(_stream(train, seed=6).epoch(0))).pixels)


def test_spatial_augmentation_is_the_same_for_every_frame_of_a_clip():
    # clips whose frames are all the same picture stay constant in time after crop and flip
    picture = torch.randint(0, 256, (12, 1, 3, 16, 16), dtype=torch.uint8)
    still = ClipSet(picture.expand(12, 7, 3, 16, 16).contiguous(), torch.arange(12) % 3)
    for resident in ("on", "off"):
        changed = 0
        for batch in _stream(still, clip_len=5, resident=resident).epoch(0):
            assert torch.equal(batch.pixels, batch.pixels[:, :, :1].expand_as(batch.pixels))
            plain = picture[batch.indices, 0].float() / 255
            changed += sum(not torch.equal(a, b) for a, b in zip(batch.pixels[:, :, 0], plain))
        assert changed >= 6  # and the clips were augmented: crops and flips moved most of them


def test_validation_views_are_evenly_spaced_clips():
    frames = torch.arange(12, dtype=torch.uint8).mul(20)[None, :, None, None, None].expand(2, 12, 3, 4, 4)
    clip_set = ClipSet(frames.contiguous(), torch.tensor([0, 1]))
    batch = next(iter(_stream(clip_set, clip_len=4, views=3, shuffle=False, augment=False).epoch(0)))
    assert batch.views == 3 and batch.pixels.shape == (6, 3, 4, 4, 4) and batch.labels.tolist() == [0, 1]
    starts = (batch.pixels[:3, 0, 0, 0, 0] * 255 / 20).round().long().tolist()
    assert starts == [1, 4, 7]  # 9 starts fit; positions 1/6, 1/2, 5/6
    with pytest.raises(ValueError, match="validation"):
        _stream(clip_set, clip_len=4, views=3, shuffle=True)


def _file_set(tmp_path) -> FileClipSet:
    paths = [str(write_video(tmp_path / f"v{i}.avi", frames_of(9 + i, green=30 * i))) for i in range(5)]
    paths.append(str(write_frame_folder(tmp_path / "f5", frames_of(8))))
    return FileClipSet(tuple(paths), torch.tensor([0, 1, 0, 1, 0, 1]), 16)


def test_file_clips_are_the_same_with_worker_processes(tmp_path):
    files = _file_set(tmp_path)
    inline = list(_stream(files, clip_len=4, batch_size=4).epoch(1))
    workers = list(_stream(files, clip_len=4, batch_size=4, num_workers=2).epoch(1))
    assert [len(b) for b in inline] == [4, 2]
    for a, b in zip(inline, workers):
        assert torch.equal(a.pixels, b.pixels) and torch.equal(a.indices, b.indices)


def test_a_file_that_stops_decoding_is_skipped_and_counted(tmp_path):
    files = _file_set(tmp_path)
    stream = _stream(files, clip_len=4, batch_size=6)
    (tmp_path / "v2.avi").write_bytes(b"not a video any more")
    batches = list(stream.epoch(0))
    assert sum(len(b) for b in batches) == 5 and stream.unreadable == {str(tmp_path / "v2.avi")}
    (tmp_path / "v3.avi").unlink()
    with pytest.raises(DataError, match="v3.avi"):
        list(_stream(files, clip_len=4, batch_size=6).epoch(0))


def test_batch_stream_picks_the_stream_by_the_data():
    data = _demo_subset()
    cfg = DataConfig(dataset="demo-video", clip_len=5, frame_stride=2)
    splits = dataclasses.replace(data, clip_len=5)
    stream = batch_stream(splits, splits.val, cfg, views=2, batch_size=4, shuffle=False, augment=False, mean=MEAN,
                          std=STD, device="cpu", seed=0)
    assert isinstance(stream, ClipBatchStream) and stream.clip_len == 5 and stream.frame_stride == 2
    assert next(iter(stream.epoch(0))).pixels.shape == (8, 3, 5, 32, 32)
    with pytest.raises(DataError, match="read from files"):
        _stream(_file_set_stub(), resident="on")


def _file_set_stub() -> FileClipSet:
    return FileClipSet(("x.avi",), torch.tensor([0]), 16)


# ----------------------------------------------------------------------------- the video demo

def test_demo_video_clips_are_balanced_deterministic_and_few_per_class():
    from sskt_engine.data import demo_clips

    full = demo_clips.clip_splits()
    assert isinstance(full.train, ClipSet) and full.train.clips.shape == (1200, 10, 3, 32, 32)
    assert full.val.clips.shape == (720, 10, 3, 32, 32) and full.clip_len == 8
    assert full.class_names == demo_clips.CLASSES and len(full.class_names) == 12
    assert torch.bincount(full.train.labels).tolist() == [100] * 12
    clips, labels = demo_clips._generate("test")
    assert torch.equal(clips, full.val.clips) and torch.equal(labels, full.val.labels)
    few = load_dataset(DataConfig(dataset="demo-video", labels_per_class=20, clip_len=6), seed=0)
    assert len(few.train) == 240 and few.clip_len == 6 and few.is_video


def test_demo_video_motions_differ_as_described():
    """Slides move the glyph; turns and appears keep it in place; appears fades in."""
    from sskt_engine.data import demo_clips

    full = demo_clips.clip_splits()
    clips, labels = full.val.clips.float(), full.val.labels
    motion = labels % len(demo_clips.MOTIONS)
    change = (clips[:, 1:] - clips[:, :-1]).abs().mean(dim=(1, 2, 3, 4))  # frame-to-frame change, noise included
    fade = (clips[:, -1] - clips[:, 0]).abs().mean(dim=(1, 2, 3))
    slides, turns, appears = (motion == 0), (motion == 1), (motion == 2)
    assert change[slides].mean() > change[turns].mean()
    assert fade[appears].mean() > fade[turns].mean()


def test_preview_of_clip_data_is_a_strip_of_frames_per_sample(tmp_path):
    from sskt_engine.data.clip_preview import join_frames, strip_positions
    from sskt_engine.data.preview import preview_samples

    strips, names = preview_samples(DataConfig(dataset="demo-video"), count=16, seed=0)
    assert strips.shape == (8, 32, 4 * 32 + 3 * 2, 3) and len(names) == 8
    assert len(set(names)) == 8 and all(" " in n for n in names)  # spread over the (sign, motion) classes
    assert strip_positions(8) == [0, 2, 5, 7] and strip_positions(1) == [0]
    root = make_ucf101(tmp_path / "ucf")
    strips, names = preview_samples(DataConfig(dataset="ucf101", root=str(root), image_size=16, clip_len=8), count=6)
    assert strips.shape == (3, 16, 4 * 16 + 3, 3) and set(names) == set(UCF_CLASSES)
    frames = np.stack([np.full((4, 4, 3), 10 * i, np.uint8) for i in range(3)])
    assert join_frames(frames)[0, :, 0].tolist() == [0] * 4 + [24] + [10] * 4 + [24] + [20] * 4
