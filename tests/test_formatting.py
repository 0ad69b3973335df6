"""The shared small helpers: how numbers read (``formatting``) and key paths (``key_paths``),
used alike by the command line, the study tables and the GUI."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from sskt_engine.formatting import duration, mean_std_percent, number, percent, seconds
from sskt_engine.key_paths import format_key_path, parse_key_path


@pytest.mark.parametrize("value, text", [
    (None, "–"), (math.nan, "–"), (math.inf, "–"), (-1.0, "–"),
    (0, "0 s"), (8.4, "8 s"), (59.4, "59 s"), (59.6, "1:00"), (86.7, "1:27"), (3725, "62:05"),
    (5999, "99:59"), (6000, "1:40:00"), (36_000, "10:00:00"),
])
def test_durations_read_as_seconds_minutes_or_hours(value, text):
    assert duration(value) == text


def test_duration_of_nothing_can_read_otherwise():
    assert duration(None, missing="") == ""


@pytest.mark.parametrize("call, text", [
    (lambda: percent(0.97312), "97.31%"),
    (lambda: percent(0.97312, 1), "97.3%"),
    (lambda: percent(1.0, 0), "100%"),
    (lambda: percent(0.5, sign=False), "50.00"),
    (lambda: percent(np.float32(0.25)), "25.00%"),
    (lambda: percent(None), "–"),
    (lambda: percent(math.nan, missing=""), ""),
    (lambda: percent(True), "–"),  # a flag is not a fraction
    (lambda: mean_std_percent(0.9731, 0.0012), "97.31% ± 0.12"),
    (lambda: mean_std_percent(0.9731, None), "97.31%"),
    (lambda: mean_std_percent(None, 0.1), "–"),
    (lambda: mean_std_percent(0.9731, 0.0012, sign=False, plus_minus=" \\pm "), "97.31 \\pm 0.12"),
    (lambda: seconds(12.34), "12.3 s"),
    (lambda: number(0.000123), "1.230e-04"),
    (lambda: number(2.5), "2.5"),
    (lambda: number(123456.0), "1.235e+05"),
    (lambda: number(0.0), "0"),
    (lambda: number(float("nan")), "nan"),
])
def test_percentages_and_numbers(call, text):
    assert call() == text


@pytest.mark.parametrize("text, path", [
    ("train.lr", ("train", "lr")),
    ("sources[0].path", ("sources", 0, "path")),
    ("sources[12]", ("sources", 12)),
    ("method.peers", ("method", "peers")),
])
def test_key_paths_round_trip(text, path):
    assert parse_key_path(text) == path
    assert format_key_path(path) == text


def test_key_paths_keep_unusual_keys_apart():
    assert parse_key_path("data.x²") == ("data", "x²")  # "²".isdigit() is True, but it is no index
    assert parse_key_path(" train..lr ") == ("train", "lr")
    assert format_key_path(("data", "")) == "data.''"  # an empty key stays visible in a message


def test_the_engine_writes_the_key_paths_the_gui_reads():
    from sskt_engine.config import parse_overrides
    from sskt_engine.errors import PresetError

    assert parse_overrides(["sources[1].arch=resnet18"]) == [(("sources", 1, "arch"), "resnet18")]
    with pytest.raises(PresetError) as refused:
        parse_overrides(["sources[1].arch=[unclosed"])
    assert refused.value.path == "sources[1].arch"  # the GUI finds the field with parse_key_path
    assert parse_key_path(refused.value.path) == ("sources", 1, "arch")


def test_the_small_helpers_import_neither_torch_nor_qt():
    code = ("import sys, sskt_engine.formatting, sskt_engine.key_paths, sskt_engine.child_process, "
            "sskt_engine.resources\n"
            "print(sorted(m for m in ('torch', 'PySide6', 'numpy', 'yaml') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
