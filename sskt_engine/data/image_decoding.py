"""Decode one image file into 8-bit RGB pixels, whatever mode PIL opens it in.

A plain ``Image.convert("RGB")`` clips 16-bit greyscale (values up to 65535) and 32-bit
float data (values in [0, 1]) to near-white or black, so a folder of such images trains
at chance without a word. Here every mode PIL can open is mapped to 0-255 by what its
numbers mean, EXIF orientation is applied (a photo trains as it is shown), and a mode
that cannot be mapped is refused with one sentence naming the file.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Modes whose numbers are already 0-255 per channel (or a palette / bit of them): PIL's own
# conversion is right for these.
_EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class UnsupportedImage(ValueError):
    """A file PIL opens but whose pixels cannot be turned into RGB faithfully."""


def open_rgb(path: str, draft_size: int | None = None) -> Image.Image:
    """The image at ``path`` as an 8-bit RGB ``Image``, upright. ``draft_size`` lets JPEG decode
    at a reduced scale that is still at least that side. Raises what PIL raises on a file it
    cannot read, and ``UnsupportedImage`` for a mode it reads but we cannot map."""
    with Image.open(path) as img:
        if draft_size:
            img.draft("RGB", (draft_size, draft_size))
        upright = ImageOps.exif_transpose(img)  # applies and drops the EXIF orientation tag
        return to_rgb(upright, path)


def to_rgb(img: Image.Image, where: str) -> Image.Image:
    mode = img.mode
    if mode in _EIGHT_BIT_MODES:
        return img.convert("RGB")
    if mode in _SIXTEEN_BIT_MODES:
        return _grey(np.asarray(img, dtype=np.float64) / 65535.0)
    if mode == "I":  # 32-bit integers: 16-bit PNGs open so on older Pillow; else scale by the range used
        values = np.asarray(img, dtype=np.float64)
        top = values.max(initial=0.0)
        scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
        return _grey(np.clip(values, 0.0, None) / scale)
    if mode == "F":  # 32-bit floats: [0, 1] by convention; [0, 255] also seen; else the file's own range
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = values.min(initial=0.0), values.max(initial=0.0)
        if low >= 0.0 and high <= 1.0:
            return _grey(values)
        if low >= 0.0 and high <= 255.0:
            return _grey(values / 255.0)
        return _grey((values - low) / (high - low) if high > low else np.zeros_like(values))
    raise UnsupportedImage(f"image {where} has pixel mode {mode}, which this app cannot turn into RGB "
                           "colours faithfully; convert it to 8-bit RGB or greyscale")


def _grey(unit: np.ndarray) -> Image.Image:
    """Values in [0, 1] as an RGB image of equal channels."""
    eight = np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(eight).convert("RGB")
