"""``sskt frames SRC DEST``: extract the frames of every video under SRC once, into frame folders
under DEST. A frame folder is read without a video decoder, only the frames a clip takes (a video is
decoded up to the clip's last frame), which pays off for long videos; ``--size`` also shrinks what
is read per frame. ``benchmarks/video_decode.py`` compares both on a machine.

The tree is mirrored: ``SRC/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi`` becomes the folder
``DEST/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01/`` of ``image_00001.jpg``, ... Text files (the UCF101
and HMDB51 split files) are copied along, so DEST can be ``data.root`` in place of SRC. Videos whose
frame folder is already there are skipped, so an interrupted extraction resumes; unreadable videos
are counted and named, and do not stop the others.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .errors import UserInputError

COPIED_EXTENSIONS = (".txt", ".csv")


def _jobs(src: Path, dest: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(video, frame folder) pairs and (text file, copy) pairs for everything under ``src``."""
    from .data.video_decoding import VIDEO_EXTENSIONS

    if src.is_file():
        return [(str(src), str(dest / src.stem))], []
    videos, texts = [], []
    for folder, subfolders, files in os.walk(src):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        here = Path(folder).relative_to(src)
        for name in sorted(files):
            lower = name.lower()
            if lower.endswith(VIDEO_EXTENSIONS):
                videos.append((os.path.join(folder, name), str(dest / here / Path(name).stem)))
            elif lower.endswith(COPIED_EXTENSIONS):
                texts.append((os.path.join(folder, name), str(dest / here / name)))
    return videos, texts


def _extract(job: tuple[str, str, int | None, int]) -> tuple[str, int, str]:
    """Run in a worker process: (video, frames written, error or '')."""
    from .data.video_decoding import UnreadableVideo, extract_frames

    video, folder, size, quality = job
    try:
        return video, extract_frames(video, folder, size, quality), ""
    except UnreadableVideo as exc:
        return video, 0, str(exc)


def cmd_frames(args: argparse.Namespace) -> int:
    from .data.frame_folders import frame_files
    from .data.video_decoding import require_av

    src, dest = Path(args.src).expanduser(), Path(args.dest).expanduser()
    if not src.exists():
        raise UserInputError(f"{src} does not exist.")
    if args.size is not None and args.size < 8:
        raise UserInputError(f"--size must be at least 8 pixels, not {args.size}.")
    if not 1 <= args.quality <= 100:
        raise UserInputError(f"--quality must be 1 to 100, not {args.quality}.")
    if src.is_dir() and dest.resolve().is_relative_to(src.resolve()):
        raise UserInputError(f"DEST {dest} is inside SRC {src}; choose a folder outside it.")
    require_av()
    videos, texts = _jobs(src, dest)
    if not videos:
        raise UserInputError(f"no video files ({', '.join(('.avi', '.mp4', '.mkv'))}, ...) under {src}.")
    for text, copy in texts:
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        shutil.copyfile(text, copy)
    todo = [(v, f, args.size, args.quality) for v, f in videos if not frame_files(f)]
    done_before = len(videos) - len(todo)
    workers = max(1, args.workers or 1)
    frames = extracted = 0
    bad: list[tuple[str, str]] = []
    out = sys.stderr
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Inline() as pool:
        for i, (video, count, error) in enumerate(pool.map(_extract, todo, chunksize=4), start=1):
            if error:
                bad.append((video, error))
            else:
                frames += count
                extracted += 1
            if i % 100 == 0 or i == len(todo):
                out.write(f"frames: {i}/{len(todo)} videos\n")
                out.flush()
    for video, error in bad[:5]:
        out.write(f"warning: skipped {error}\n")
    print(f"frames: {extracted} video(s) extracted ({frames} frames), {done_before} already there, "
          f"{len(bad)} unreadable, {len(texts)} text file(s) copied, into {dest}")
    return 0


class _Inline:
    """``map`` in this process (``--workers 1``), with the executor's context-manager shape."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc) -> None:
        return None

    @staticmethod
    def map(fn, items, chunksize: int = 1):
        return map(fn, items)


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "frames", help="extract the frames of every video under SRC into frame folders under DEST (once)",
        description="Decode every video file under SRC and write its frames as JPEG files into a frame folder of "
                    "the same name under DEST (SRC/a/v.avi -> DEST/a/v/image_00001.jpg), copying the split files "
                    "along, so DEST can replace SRC as data.root. Already extracted videos are skipped.")
    p.add_argument("src", help="a video file, or a folder of videos (e.g. the UCF101 or HMDB51 root)")
    p.add_argument("dest", help="the folder the frame folders are written to")
    p.add_argument("--size", type=int, help="resize frames so the shorter side has this many pixels (default: as "
                                            "stored; training reads them at data.image_size anyway)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (default 90)")
    p.add_argument("--workers", type=int, default=1, help="processes decoding in parallel (default 1)")
    p.set_defaults(func=cmd_frames)


__all__ = ["register_commands", "cmd_frames"]
