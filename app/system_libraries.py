"""The Linux system libraries Qt's X11 (xcb) platform plugin needs, checked before Qt loads it.

Without them Qt prints a long plugin message and aborts (exit 134). Where the app can tell that
it will run on X11 and a library is missing, it says so in one sentence, naming the packages to
install, and exits with status 2 instead.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Mapping

# sonames Qt 6's xcb plugin loads, with the Debian/Ubuntu package that ships each
XCB_LIBRARIES = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
)


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will pick its X11 plugin: Linux, and the platform chosen is xcb, or none is
    chosen and the session is X11 (Qt prefers Wayland where a Wayland display is there)."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if chosen:
        return chosen == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_xcb_packages(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
                         loads: Callable[[str], bool] = _loads) -> list[str]:
    """The packages whose libraries Qt's X11 plugin would fail to load here (empty: none, or not X11)."""
    if not uses_xcb(env, platform):
        return []
    return [package for soname, package in XCB_LIBRARIES if not loads(soname)]


def missing_libraries_sentence(packages: list[str]) -> str:
    return (f"SSKT Studio cannot open its window: the X11 libraries Qt needs are missing ({', '.join(packages)}); "
            f"install them, e.g. `sudo apt install {' '.join(packages)}`, and start it again.")
