"""Image files with multi-label targets into an image set: what the VOC and CSV readers share.

Decoding is the image folder's (``image_folder.load_rgb``: RGB, EXIF orientation, shorter side
resized, centre crop); a file that does not decode is dropped and named in the run's notes, as
for image folders. Targets stay float [N, C] (1 present / 0 absent / -1 ignored).
"""

from __future__ import annotations

import numpy as np
import torch

from .image_folder import IN_MEMORY_LIMIT_BYTES, _header_ok, _parallel_map, load_rgb
from .sets import FileImageSet, ImageSet


def fits_in_memory(count: int, size: int) -> bool:
    """Whether ``count`` decoded images of side ``size`` stay under the image folders' 2 GiB limit."""
    return count * 3 * size * size < IN_MEMORY_LIMIT_BYTES


def labelled_image_set(paths: list[str], targets: torch.Tensor, size: int,
                       in_memory: bool) -> tuple[ImageSet | FileImageSet, list[str]]:
    """The files as one set (decoded now when ``in_memory``, else headers checked and left on
    disk) and the files that could not be read, which are left out."""
    if not in_memory:
        ok = _parallel_map(_header_ok, paths)
        keep = [i for i, good in enumerate(ok) if good]
        return (FileImageSet(tuple(paths[i] for i in keep), targets[keep], size),
                [p for p, good in zip(paths, ok) if not good])
    images = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def decode_into(row: int) -> bool:
        try:
            images[row] = np.asarray(load_rgb(paths[row], size), dtype=np.uint8).transpose(2, 0, 1)
            return True
        except Exception:  # noqa: BLE001 - any decoder failure on a user's file means "unreadable"
            return False

    ok = _parallel_map(decode_into, range(len(paths)))
    keep = [i for i, good in enumerate(ok) if good]
    bad = [p for p, good in zip(paths, ok) if not good]
    return ImageSet(torch.from_numpy(images[keep] if bad else images), targets[keep]), bad


def skipped_note(bad: list[str]) -> tuple[str, ...]:
    return (f"skipped {len(bad)} unreadable image(s), e.g. {bad[0]}",) if bad else ()
