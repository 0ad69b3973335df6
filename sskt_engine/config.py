"""Experiment presets: frozen dataclasses, YAML in and out, strict validation.

Every key is declared once, with its default, range and help text, as a
dataclass field; validation, the CLI's ``--set``, the GUI's forms and tooltips
all read the same declaration. YAML is only ever read with ``yaml.safe_load``
(and ``yaml.compose`` for line numbers, which builds no Python objects).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from .atomic import atomic_write_text
from .errors import PresetError
from .key_paths import format_key_path, parse_key_path
from .registry import ARCHITECTURES, DATASETS, METHODS, SOURCE_KINDS

# 2: each method reads its own keys under ``method:`` (MethodOptions subclasses); KD's and
#    MAXL's keys lost their prefixes (see _MIGRATE_1_TO_2).
SCHEMA_VERSION = 2


def option(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    label: str | None = None,
    advanced: bool = False,
) -> Any:
    """Declare a preset key. ``above`` is an exclusive lower bound. ``advanced``: a key most people
    leave at its default (how a source's pixels are prepared); forms fold it away until it is set."""
    meta = {"help": help, "min": min, "max": max, "above": above, "choices": choices, "label": label,
            "advanced": advanced}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=meta)


def _registered(registry: Any) -> list[str]:
    """A registry's names; empty means the caller never loaded the built-ins, which would make
    every name look wrong: say so instead."""
    if not registry:
        raise RuntimeError(f"no {registry.kind} is registered: import sskt_engine.catalog (which registers the "
                           "built-in ones) before reading presets")
    return registry.keys()


def _architecture_names() -> list[str]:
    return _registered(ARCHITECTURES)


def _dataset_names() -> list[str]:
    return _registered(DATASETS)


def _method_names() -> list[str]:
    return _registered(METHODS)


def _source_kinds() -> list[str]:
    return _registered(SOURCE_KINDS)


@dataclass(frozen=True)
class TargetConfig:
    arch: str = option("resnet20", "Architecture of the network being trained.", choices=_architecture_names)
    # Where the target's weights start (sskt_engine/target_init.py): "supervised" from pretrained
    # weights is the fine-tuning baseline.
    init: str = option("scratch", "Where the target's weights start: random (scratch), torchvision's pretrained "
                       "weights for the architecture, a weights file, or the trained network of an earlier run. "
                       "A classifier of another class count starts fresh.",
                       choices=lambda: ("scratch", "torchvision", "checkpoint", "run"))
    weights: str = option("", "init torchvision: the weights enum name, e.g. IMAGENET1K_V1 (empty: DEFAULT); read "
                          "from the torch hub cache, never downloaded.")
    path: str = option("", "init checkpoint: the weights file; init run: the run folder.")
    checkpoint: str = option("best", "init run: which checkpoint of the run.", choices=lambda: ("best", "last"))
    frozen_stages: int = option(0, "Freeze the stem and the first N stages of the pretrained target (weights and "
                                "BatchNorm statistics fixed); 0: train everything.", min=0, max=8)
    # A pretrained target must see its inputs as it was trained: a frozen stem with fixed
    # BatchNorm statistics fed inputs 60x smaller than it learned on computes garbage.
    mean: typing.Optional[tuple[float, float, float]] = option(
        None, "Per-channel mean the target's inputs are normalised with (pixels in 0-1), instead of the dataset's "
        "own; with target.std. For pretrained weights trained another way, e.g. the 3D-ResNets-PyTorch Kinetics "
        "files (0-255 pixels minus the ActivityNet mean, not divided): mean [0.4501, 0.4225, 0.3901], std "
        "[0.003922, 0.003922, 0.003922].", advanced=True)
    std: typing.Optional[tuple[float, float, float]] = option(
        None, "Per-channel std of the target's input normalisation (pixels in 0-1); with target.mean.",
        advanced=True)


@dataclass(frozen=True)
class SourceConfig:
    kind: str = option("torchvision", "Where the pretrained source comes from: torchvision weights, "
                       "a checkpoint file, an earlier run of this app, or a compiled model file (TorchScript "
                       "or torch.export .pt2, no architecture needed).", choices=_source_kinds)
    arch: str = option("", "Architecture of the source network (torchvision model name, or a registered "
                       "architecture for a checkpoint file). Not needed for runs.")
    weights: str = option("", "torchvision weights enum name, e.g. IMAGENET1K_V2 or DEFAULT.")
    path: str = option("", "Checkpoint file, compiled model file or run folder. 'builtin:NAME' names a file "
                       "shipped with the app.")
    num_classes: typing.Optional[int] = option(None, "Class count of a checkpoint's classifier (for a compiled "
                                               "file: checked against its output).", min=1)
    input_size: typing.Optional[int] = option(None, "Side in pixels the source sees; images are resized "
                                              "(bilinear) to it. Default: the source's own.", min=8, max=1024,
                                              advanced=True)
    mean: typing.Optional[tuple[float, float, float]] = option(None, "Per-channel mean the source was trained with.",
                                                                  advanced=True)
    std: typing.Optional[tuple[float, float, float]] = option(None, "Per-channel std the source was trained with.",
                                                                 advanced=True)
    pixel_scale: typing.Optional[float] = option(
        None, "Normalization on 0-255 pixels instead of mean/std: the source sees (pixel - pixel_offset) / "
        "pixel_scale, e.g. 128 with offset 127.", above=0.0, max=1e6, advanced=True)
    pixel_offset: typing.Optional[float] = option(
        None, "Subtracted from 0-255 pixels before dividing by pixel_scale (default 0).", min=-1e6, max=1e6,
        advanced=True)
    class_names_file: str = option("", "Text file naming the source's classes, one per line (compiled files; "
                                   "optional).", advanced=True)
    checkpoint: str = option("best", "Which checkpoint of a run to use.", choices=lambda: ("best", "last"))
    name: str = option("", "A label for plots and tables; default: derived from the source.")
    clip_frames: int = option(1, "Video data, image sources: frames of each clip the source sees; 1: the centre "
                              "frame (as the SSKT authors), k: k evenly spaced frames, their soft labels averaged. "
                              "Video sources see the whole clip.", min=1, max=64,
                              advanced=True)

    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "torchvision":
            return f"{self.arch}:{self.weights or 'DEFAULT'}"
        if self.kind == "places365" and not self.path:
            return f"places365:{self.arch}"
        return Path(self.path).name or self.path or self.kind


@dataclass(frozen=True)
class DataConfig:
    dataset: str = option("demo", "Which dataset to train on.", choices=_dataset_names)
    root: str = option("", "Folder holding the dataset files, or the CSV file of multilabel-csv (not needed for "
                       "the built-in demos).")
    labels_per_class: typing.Optional[int] = option(
        None, "Keep only this many labelled training images per class (same subset for the same seed). "
        "Empty: use all.", min=1)
    val_split: float = option(0.0, "Fraction of the training set held out for validation. 0: validate on the "
                              "dataset's own test split.", min=0.0, max=0.9)
    augment: bool = option(True, "Pad, random crop and horizontal flip of training images.")
    image_size: typing.Optional[int] = option(None, "Side images are resized to (image folders); default: "
                                              "the dataset's own size.", min=8, max=1024)
    download: bool = option(False, "Download the dataset into root if it is missing (never by default).")
    device_resident: str = option("auto", "Keep the whole dataset as one uint8 tensor on the training device and "
                                  "augment there: much faster for small datasets. auto: when it fits.",
                                  choices=lambda: ("auto", "on", "off"))
    num_workers: int = option(0, "DataLoader worker processes when the data is not device resident.", min=0, max=64)
    # Video data (demo-video, ucf101, hmdb51, videofolder); image datasets ignore these.
    clip_len: typing.Optional[int] = option(None, "Frames per clip the network sees (video datasets). Empty: the "
                                            "dataset's default (16; the video demo 8).", min=1, max=512)
    frame_stride: int = option(1, "Take every n-th frame when sampling a clip (video datasets).", min=1, max=64)
    val_clips: int = option(1, "Clips per video at validation, evenly spaced, their scores averaged; 1: the "
                            "centre clip (video datasets).", min=1, max=32)
    split: int = option(1, "Official train/test split of UCF101 or HMDB51 (1, 2 or 3).", min=1, max=3)


@dataclass(frozen=True)
class MethodOptions:
    """The ``method:`` section. Each method subclasses this with the keys it reads (declared
    next to its code and registered as ``MethodInfo.options``); a preset is parsed with the
    subclass its ``name`` picks, so a key of another method is refused as unknown."""

    name: str = option("sskt", "Training method.", choices=_method_names)


def method_options(name: str) -> MethodOptions:
    """The default options of a registered method."""
    return _options_class(name)(name=name)


def _options_class(name: str) -> type:
    if not METHODS:
        raise RuntimeError("no training method is registered: import sskt_engine.catalog (which registers the "
                           "built-in ones) before reading presets")
    return METHODS.get(name).options


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(200, "Passes over the training set.", min=1, max=100000)
    batch_size: int = option(128, "Images per training step.", min=1, max=65536)
    optimizer: str = option("sgd", "Optimizer.", choices=lambda: ("sgd", "adam", "adamw"))
    lr: float = option(0.1, "Learning rate at the start (after warmup).", above=0.0, max=100.0)
    weight_decay: float = option(5e-4, "L2 weight decay.", min=0.0, max=1.0)
    momentum: float = option(0.9, "SGD momentum.", min=0.0, max=0.9999)
    nesterov: bool = option(False, "Nesterov momentum (SGD).")
    schedule: str = option("multistep", "Learning-rate schedule.", choices=lambda: ("multistep", "cosine", "constant"))
    milestones: tuple[int, ...] = option((60, 120, 160), "Epochs at which multistep multiplies the lr by gamma.")
    gamma: float = option(0.2, "Multistep decay factor.", above=0.0, max=1.0)
    warmup_epochs: int = option(0, "Epochs of linear lr warmup before the schedule.", min=0, max=1000)
    device: str = option("auto", "auto picks CUDA, then Apple MPS, then CPU; or name one (cpu, cuda, cuda:1, mps).")
    amp: bool = option(False, "Mixed precision on CUDA (ignored elsewhere).")
    seed: int = option(0, "Seed for weights, data subset, shuffling and augmentation.", min=0, max=2**31 - 1)
    deterministic: bool = option(False, "Deterministic algorithms: slower, but a rerun gives identical numbers.")
    log_every: int = option(10, "Steps between progress events.", min=1, max=100000)
    source_precision: str = option("auto", "Precision the frozen sources run in: auto uses bfloat16 (or float16) "
                                   "with channels-last on CUDA and float32 elsewhere.",
                                   choices=lambda: ("auto", "float32", "bfloat16", "float16"))
    source_view: str = option(
        "augmented", "What the source models see (SSKT, KD). augmented: the same augmented batch as the target, "
        "the paper's way; the sources run at every step. clean: each training image un-augmented, resized for "
        "each source; their outputs are computed once before the first epoch (2 bytes per class per image, kept "
        "in memory, or in a file when large) and reused every epoch. With augmentation off both are cached. "
        "Measured on 1 CPU thread, ResNet-18 source at 96 px teaching ResNet-20 (benchmarks/source_cost.py): an "
        "augmented epoch costs 3.1x a supervised one in CPU time; clean 1.03x after its first epoch (3.4x for the "
        "first, which fills the cache). On the demo "
        "(benchmarks/source_view_demo.py, final accuracy): augmented 97.20 ± 0.53 %, clean 97.22 ± 0.61 % "
        "(3 seeds each).",
        choices=lambda: ("augmented", "clean"))
    multilabel_loss: str = option(
        "bce", "Target loss on multi-label data (ignored for single-label data). bce: BCE-with-logits per class, "
        "the default. ce: the SSKT authors' option, for replicating their VOC rows: T² times the soft "
        "cross-entropy of softmax(logits/T) against softmax(multi-hot labels/T), T = multilabel_temperature. "
        "The validation loss stays BCE either way, so runs compare.",
        choices=lambda: ("bce", "ce"))
    multilabel_temperature: float = option(1.0, "T of the ce multi-label target loss.", above=0.0, max=100.0)
    nan_policy: str = option("fail", "What a NaN or infinite loss does: fail the run, or skip the batch "
                             "(counted in the summary).", choices=lambda: ("fail", "skip"))


@dataclass(frozen=True)
class PaperConfig:
    """A published figure the preset replicates (the presets under resources/presets/paper/);
    ``sskt compare`` prints it beside the measured mean and the difference in standard deviations."""

    reference: str = option("", "Where the figure is published, e.g. Hong et al., WACV 2022 (SSKT).")
    row: str = option("", "The table, row and method the figure belongs to.")
    metric: str = option("", "Validation key the figure is compared with (acc, map_samples, ...); empty: the run's "
                         "headline metric.")
    mean: typing.Optional[float] = option(None, "The published figure in percent (mean over the paper's runs).",
                                          min=0.0, max=100.0)
    std: typing.Optional[float] = option(None, "Its published standard deviation in percent, where given.",
                                         min=0.0, max=100.0)
    runs: typing.Optional[int] = option(None, "How many runs the published mean is over.", min=1, max=1000)
    note: str = option("", "What differs from the authors' setting, or what is not published.")


@dataclass(frozen=True)
class ExperimentConfig:
    schema_version: int = option(SCHEMA_VERSION, "Preset format version.", min=1)
    name: str = option("experiment", "Name of the experiment; used in run folder names.")
    target: TargetConfig = field(default_factory=TargetConfig)
    sources: tuple[SourceConfig, ...] = ()
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodOptions = field(default_factory=lambda: method_options("sskt"))
    train: TrainConfig = field(default_factory=TrainConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)  # only in presets that replicate a published row

    def replace(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------- parsing

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
MAX_PRESET_BYTES = 128 * 1024  # a real preset is a few KiB; PyYAML needs seconds per MiB of list items
MAX_NODES = 20_000  # values in a preset, after YAML aliases are expanded (a list may hold 10,000)
MAX_DEPTH = 100  # nesting levels in a preset
_BIG_INT_BITS = 64  # whole numbers beyond this are refused before any range check formats them
_NAME_RE = re.compile(r"^[\w .+-]{1,80}$")


def _line_map(text: str, source: str | None = None) -> dict[tuple, int]:
    """Map key paths to 1-based line numbers using the node tree (no objects are built).
    A key given twice in one mapping is refused: YAML would silently keep the last one."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return lines
    budget = [MAX_NODES]  # aliases can make a small text a huge tree ("billion laughs"): stop early

    def walk(node: yaml.Node, path: tuple, depth: int) -> None:
        budget[0] -= 1
        if depth > 50 or budget[0] < 0:
            return
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is not None and key in seen:
                    raise PresetError(_dotted(path + (key,)), "is given twice; remove one",
                                      key_node.start_mark.line + 1, source)
                seen.add(key)
                lines[path + (key,)] = key_node.start_mark.line + 1
                walk(value_node, path + (key,), depth + 1)
                lines[path + (key,)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, path + (index,), depth + 1)

    if root is not None:
        walk(root, (), 0)
    return lines


_dotted = format_key_path  # ("sources", 0, "arch") -> "sources[0].arch"


class _Parser:
    def __init__(self, lines: Mapping[tuple, int], source: str | None):
        self.lines = lines
        self.source = source

    def fail(self, path: tuple, reason: str) -> typing.NoReturn:
        line = None
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        raise PresetError(_dotted(path), reason, line, self.source)

    def dataclass_(self, cls: type, raw: Any, path: tuple) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.fail(path, f"must be a mapping of keys to values, not {_type_name(raw)}")
        if cls is MethodOptions:
            cls = self.method_class(raw, path)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if not isinstance(key, str) or key not in fields:
                self.fail(path + (str(key),), f"unknown key{_unknown_key_hint(cls, str(key), list(fields))}")
        values = {}
        for name, f in fields.items():
            if name in raw:
                values[name] = self.value(hints[name], raw[name], path + (name,), f.metadata)
        return cls(**values)

    def method_class(self, raw: dict, path: tuple) -> type:
        """The options class the section's ``name`` picks (the name itself is checked here, so
        an unknown method is refused before its keys are)."""
        name = raw.get("name", MethodOptions.name)  # type: ignore[attr-defined]
        name_field = {f.name: f for f in dataclasses.fields(MethodOptions)}["name"]
        name = self.value(str, name, path + ("name",), name_field.metadata)
        return _options_class(name)

    def value(self, hint: Any, raw: Any, path: tuple, meta: Mapping[str, Any]) -> Any:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if raw is None:
                return None
            return self.value(inner[0], raw, path, meta)
        if dataclasses.is_dataclass(hint):
            return self.dataclass_(hint, raw, path)
        if origin is tuple:
            if not isinstance(raw, (list, tuple)):
                self.fail(path, f"must be a list, not {_type_name(raw)}")
            if len(args) == 2 and args[1] is Ellipsis:
                item_types = [args[0]] * len(raw)
            else:
                if len(raw) != len(args):
                    self.fail(path, f"must be a list of {len(args)} values, not {len(raw)}")
                item_types = list(args)
            if len(raw) > 10000:
                self.fail(path, "is too long (more than 10000 items)")
            return tuple(self.value(t, item, path + (i,), meta) for i, (t, item) in enumerate(zip(item_types, raw)))
        if hint is bool:
            if not isinstance(raw, bool):
                self.fail(path, f"must be true or false, not {_short(raw)}")
            return raw
        if hint is int:
            if isinstance(raw, bool) or not isinstance(raw, int):
                self.fail(path, f"must be a whole number, not {_type_name(raw)} {_short(raw)}")
            if raw.bit_length() > _BIG_INT_BITS:
                self.fail(path, f"is far too large a number ({_short(raw)})")
            self.check_range(raw, path, meta)
            return raw
        if hint is float:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                self.fail(path, f"must be a number, not {_type_name(raw)} {_short(raw)}")
            if isinstance(raw, int) and raw.bit_length() > 1000:  # float() would overflow
                self.fail(path, f"must be a finite number, not {_short(raw)}")
            value = float(raw)
            if not math.isfinite(value):
                self.fail(path, f"must be a finite number, not {raw}")
            self.check_range(value, path, meta)
            return value
        if hint is str:
            choices = meta.get("choices")
            if isinstance(raw, bool) and choices is not None:
                allowed = list(choices() if callable(choices) else choices)
                if "on" in allowed and "off" in allowed:  # YAML 1.1 reads a bare on/off as true/false
                    raw = "on" if raw else "off"
            if not isinstance(raw, str):
                self.fail(path, f"must be text, not {_type_name(raw)} {_short(raw)}")
            if len(raw) > 4096:
                self.fail(path, "is too long (more than 4096 characters)")
            if choices is not None:
                allowed = list(choices() if callable(choices) else choices)
                if raw not in allowed:
                    close = difflib.get_close_matches(raw, allowed, n=1)
                    hint_text = f"; did you mean '{close[0]}'?" if close else ""
                    if not close and path and path[-1] == "arch":  # where more architectures come from
                        from .user_folders import CONFIG_DIR_ENV, user_models_dir

                        hint_text = (f"; more architectures come from .py files in the user models folder "
                                     f"{user_models_dir()} (${CONFIG_DIR_ENV}/models) or from installed plugins")
                    self.fail(path, f"{_short(raw)} is not one of {', '.join(allowed)}{hint_text}")
            return raw
        raise TypeError(f"unsupported preset type {hint!r} at {_dotted(path)}")

    def check_range(self, value: float, path: tuple, meta: Mapping[str, Any]) -> None:
        low, high, above = meta.get("min"), meta.get("max"), meta.get("above")
        if low is not None and value < low:
            self.fail(path, f"must be at least {low}, not {value}")
        if above is not None and value <= above:
            self.fail(path, f"must be greater than {above}, not {value}")
        if high is not None and value > high:
            self.fail(path, f"must be at most {high}, not {value}")


def _unknown_key_hint(cls: type, key: str, known: list[str]) -> str:
    if cls is not MethodOptions and issubclass(cls, MethodOptions):
        renamed = _RENAMED_METHOD_KEYS.get(key)
        if renamed and renamed[1] in known:
            return f"; since preset version 2 it is called '{renamed[1]}'"
        owners = [m.name for m in METHODS.entries() if key in {f.name for f in dataclasses.fields(m.options)}]
        if owners:
            return f"; method {', '.join(owners)} reads it, not {cls.__dataclass_fields__['name'].default}"
    close = difflib.get_close_matches(key, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"


def _type_name(raw: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a whole number",
            float: "a number", type(None): "empty"}.get(type(raw), type(raw).__name__)


def _short(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 128:
        # repr() of a huge int is slow and refused beyond 4300 digits
        return f"a number of about {int(raw.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(raw)
    except (ValueError, RecursionError):
        text = f"<{type(raw).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------------------- migration

# Each entry turns a raw document of version N into version N + 1. Old presets are
# upgraded on load, like Orange's migrate_settings; presets newer than this build refuse.
# Version 1 had one ``method:`` section holding every method's keys; version 2 keeps only
# the keys of the named method, and KD's and MAXL's lost their prefixes. Key -> (method, new key).
_RENAMED_METHOD_KEYS = {
    "kd_lambda": ("kd", "distill_weight"),
    "kd_temperature": ("kd", "temperature"),
    "maxl_generator_arch": ("maxl", "generator_arch"),
    "maxl_generator_lr": ("maxl", "generator_lr"),
    "maxl_entropy_weight": ("maxl", "entropy_weight"),
}
# Which version-1 keys each built-in method read (the rest were inert there).
_V1_METHOD_KEYS = {
    "supervised": (),
    "sskt": ("alpha", "temperature", "aux_loss", "head", "focal_gamma", "transfer_width"),
    "kd": ("teacher", "kd_lambda", "kd_temperature"),
    "dml": ("peers", "peer_archs"),
    "maxl": ("psi", "focal_gamma", "maxl_generator_arch", "maxl_generator_lr", "maxl_entropy_weight"),
}


def _method_keys_1_to_2(raw: dict) -> dict:
    section = raw.get("method")
    if not isinstance(section, dict):
        return raw
    name = section.get("name", "sskt")
    reads = _V1_METHOD_KEYS.get(name) if isinstance(name, str) else None
    if reads is None:  # a method from a plugin, or a wrong name: left for the parser to judge
        return raw
    kept: dict = {}
    for key, value in section.items():
        if key == "name":
            kept[key] = value
        elif key in reads:
            kept[_RENAMED_METHOD_KEYS.get(key, (name, key))[1]] = value
        elif key not in {k for keys in _V1_METHOD_KEYS.values() for k in keys}:
            kept[key] = value  # not a version-1 key at all: the parser names it as unknown
    raw["method"] = kept
    return raw


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _method_keys_1_to_2}


def migrate(raw: dict, lines: Mapping[tuple, int], source: str | None) -> dict:
    version = raw.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise PresetError("schema_version", f"must be a whole number, not {_short(version)}",
                          lines.get(("schema_version",)), source)
    if version > SCHEMA_VERSION:
        raise PresetError("schema_version", f"version {_short(version)} was written by a newer SSKT Studio; this one "
                          f"reads up to {SCHEMA_VERSION}", lines.get(("schema_version",)), source)
    if version < 1:
        raise PresetError("schema_version", f"must be at least 1, not {_short(version)}",
                          lines.get(("schema_version",)), source)
    while version < SCHEMA_VERSION:
        raw = MIGRATIONS[version](dict(raw))
        version += 1
        raw["schema_version"] = version
    return raw


# ----------------------------------------------------------------------------- cross-field checks

def _cross_check(cfg: ExperimentConfig, p: _Parser) -> None:
    if not _NAME_RE.match(cfg.name):
        p.fail(("name",), "must be 1 to 80 letters, digits, spaces or . + - _")
    if not _DEVICE_RE.match(cfg.train.device):
        p.fail(("train", "device"), f"{_short(cfg.train.device)} is not auto, cpu, mps, cuda or cuda:N")
    if list(cfg.train.milestones) != sorted(cfg.train.milestones) or any(m < 1 for m in cfg.train.milestones):
        p.fail(("train", "milestones"), "must be increasing epoch numbers of at least 1")
    for i, src in enumerate(cfg.sources):
        path = ("sources", i)
        for key, sentence in SOURCE_KINDS.get(src.kind).required.items():
            if not getattr(src, key):
                p.fail(path + (key,), sentence)
        if src.pixel_offset is not None and src.pixel_scale is None:
            p.fail(path + ("pixel_offset",), "needs pixel_scale too: the source sees (pixel - pixel_offset) / "
                   "pixel_scale")
        if src.pixel_scale is not None and (src.mean is not None or src.std is not None):
            p.fail(path + ("pixel_scale",), "give either mean/std or pixel_scale/pixel_offset, not both")
        for key in ("mean", "std"):
            values = getattr(src, key)
            if values is not None and key == "std" and any(v <= 0 for v in values):
                p.fail(path + (key,), "every std must be greater than 0")
    target = cfg.target
    if target.init in ("checkpoint", "run") and not target.path:
        what = "weights file" if target.init == "checkpoint" else "run folder"
        p.fail(("target", "path"), f"target.init {target.init} needs the {what}'s path")
    if (target.mean is None) != (target.std is None):
        p.fail(("target", "mean" if target.mean is None else "std"), "target.mean and target.std go together: "
               "set both (the target's inputs become (pixel - mean) / std) or neither (the dataset's own)")
    if target.std is not None and any(v <= 0 for v in target.std):
        p.fail(("target", "std"), "every std must be greater than 0")
    if target.frozen_stages and target.init == "scratch":
        p.fail(("target", "frozen_stages"), "freezing stages of randomly initialised weights would fix them at "
               "random; set target.init to start from pretrained weights")
    needs = METHODS.get(cfg.method.name).min_sources
    if len(cfg.sources) < needs:
        p.fail(("sources",), f"method {cfg.method.name} needs at least {needs} source model(s)")
    _check_target_fits_data(cfg, p)


def _check_target_fits_data(cfg: ExperimentConfig, p: _Parser) -> None:
    """A video network (``ArchitectureInfo.clip_len``) trains on clips, an image network on images."""
    video_net = ARCHITECTURES.get(cfg.target.arch).clip_len > 0
    video_data = bool(getattr(DATASETS.get(cfg.data.dataset), "video", False))
    if video_net and not video_data:
        p.fail(("target", "arch"), f"{cfg.target.arch} is a video network (it takes clips of frames), but "
               f"{cfg.data.dataset} holds images; pick an image architecture or a video dataset")
    if video_data and not video_net:
        p.fail(("target", "arch"), f"{cfg.target.arch} is an image network, but {cfg.data.dataset} holds video "
               "clips; pick a video architecture (tiny3d, small3d, resnet3d_18, r3d_18, ...)")


# ----------------------------------------------------------------------------- public API

def parse_overrides(items: Iterable[str]) -> list[tuple[tuple, Any]]:
    """Parse ``key.path=value`` strings; values are YAML scalars or flow collections."""
    parsed = []
    for item in items:
        if "=" not in item:
            raise PresetError("", f"an override must look like key.path=value, not {_short(item)}")
        key, _, text = item.partition("=")
        parts = list(parse_key_path(key))
        if not parts:
            raise PresetError("", f"an override needs a key before '=': {_short(item)}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except RecursionError:
            raise PresetError(_dotted(tuple(parts)), "the value is nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise ValueError, KeyError, ...
            raise PresetError(_dotted(tuple(parts)), f"value {_short(text)} is not valid YAML "
                              f"({_yaml_problem(exc)})") from None
        parsed.append((tuple(parts), value))
    return parsed


def _apply_override(raw: dict, path: tuple, value: Any) -> None:
    node: Any = raw
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise PresetError(_dotted(path), f"there is no item {part} in {_dotted(path[:depth]) or 'the preset'}")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise PresetError(_dotted(path), f"{_dotted(path[:depth])} is not a mapping")
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last > len(node):
            raise PresetError(_dotted(path), "list index out of range")
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        if not isinstance(node, dict):
            raise PresetError(_dotted(path), f"{_dotted(path[:-1])} is not a mapping")
        node[last] = value


def from_dict(raw: Any, *, lines: Mapping[tuple, int] | None = None, source: str | None = None,
              overrides: Iterable[str] = ()) -> ExperimentConfig:
    lines = lines or {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PresetError("", f"a preset must be a mapping of sections, not {_type_name(raw)}", 1, source)
    raw = _deep_copy(raw)
    for path, value in parse_overrides(overrides):
        _apply_override(raw, path, value)
    raw = migrate(raw, lines, source)
    parser = _Parser(lines, source)
    cfg = parser.dataclass_(ExperimentConfig, raw, ())
    if "sources" in raw and raw["sources"] is None:
        cfg = cfg.replace(sources=())
    _cross_check(cfg, parser)
    return cfg


def parse_section(cls: type, raw: Any, key: str) -> Any:
    """One section of a preset alone (``parse_section(DataConfig, raw, "data")``), with the
    same checks and messages as a whole preset; the GUI previews a dataset with it while the
    rest of the preset is unfinished."""
    return _Parser({}, None).dataclass_(cls, _deep_copy(raw), (key,))


def _deep_copy(raw: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A copy the overrides can change. YAML aliases share objects, so a short document can
    stand for billions of values ("billion laughs"); the budget refuses that before it
    exhausts memory."""
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise PresetError("", f"the document is too large (more than {MAX_NODES} values once its "
                          "aliases are expanded)")
    if depth > MAX_DEPTH:
        raise PresetError("", "the document is nested too deeply")
    if isinstance(raw, dict):
        return {k: _deep_copy(v, depth + 1, budget) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v, depth + 1, budget) for v in raw]
    return raw


def loads_preset(text: str, *, source: str | None = None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    if len(text) > MAX_PRESET_BYTES:  # YAML builds every node before the node budget can refuse them
        raise PresetError("", f"the preset is {len(text):,} characters long; presets are small text files (at most "
                          f"{MAX_PRESET_BYTES // 1024} KiB), so it is not read", None, source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PresetError("", f"not valid YAML: {_yaml_problem(exc)}", mark.line + 1 if mark else None,
                          source) from None
    except RecursionError:
        raise PresetError("", "the document is nested too deeply", None, source) from None
    except Exception as exc:  # noqa: BLE001 - a scalar PyYAML cannot construct (2020-13-45, !!int abc, ...)
        path, line, what = _unconstructible_scalar(text)
        reason = f"{what} ({_yaml_problem(exc)})" if what else f"a value cannot be read ({_yaml_problem(exc)})"
        raise PresetError(_dotted(path) if path else "", reason if path else f"not valid YAML: {reason}", line,
                          source) from None
    return from_dict(raw, lines=_line_map(text, source), source=source, overrides=overrides)


def _yaml_problem(exc: BaseException) -> str:
    """PyYAML's reason in a few words; its ReaderError has ``reason``, not ``problem``."""
    reason = getattr(exc, "problem", None) or getattr(exc, "reason", None)
    if not reason:
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return str(reason)[:200]


def _unconstructible_scalar(text: str) -> tuple[tuple, int | None, str]:
    """Key path, line and description of the first value PyYAML composes but cannot construct."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        stack: list[tuple[yaml.Node, tuple]] = [(root, ())] if root is not None else []
        budget = MAX_NODES
        while stack and budget > 0:
            budget -= 1
            node, path = stack.pop()
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in reversed(node.value):
                    key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                    stack.append((value_node, path + (key,)))
                    stack.append((key_node, path))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, path + (i,)) for i, item in reversed(list(enumerate(node.value))))
            else:
                try:
                    loader.construct_object(node, deep=True)
                except Exception:  # noqa: BLE001
                    kind = str(node.tag).rsplit(":", 1)[-1] or "value"
                    return path, node.start_mark.line + 1, f"{_short(node.value)} is not a valid {kind}"
    except Exception:  # noqa: BLE001 - only a helper for the message
        pass
    finally:
        loader.dispose()
    return (), None, ""


def load_preset(path: str | os.PathLike, overrides: Iterable[str] = ()) -> ExperimentConfig:
    path = Path(path)
    try:
        # stat before open: opening a FIFO blocks until a writer comes, and /dev/zero never ends
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise PresetError("", f"{path} is a folder, not a preset file")
        if not stat.S_ISREG(info.st_mode):
            raise PresetError("", f"{path} is not a regular file (a device, pipe or socket), so it is not read as "
                              "a preset")
        if info.st_size > MAX_PRESET_BYTES:
            raise PresetError("", f"preset file {path} is {info.st_size:,} bytes; presets are small text files (at "
                              f"most {MAX_PRESET_BYTES // 1024} KiB), so it is not read")
        with open(path, "rb") as handle:
            data = handle.read(MAX_PRESET_BYTES + 1)  # the file may have grown since stat
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise PresetError("", f"preset file {path} does not exist") from None
    except IsADirectoryError:
        raise PresetError("", f"{path} is a folder, not a preset file") from None
    except PermissionError:
        raise PresetError("", f"preset file {path} cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise PresetError("", f"preset file {path} is not UTF-8 text") from None
    return loads_preset(text, source=path.name, overrides=overrides)


def to_dict(cfg: Any) -> Any:
    """Plain dict/list/scalar tree of a config; tuples become lists for YAML."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(v) for v in cfg]
    return cfg


def dumps_preset(cfg: ExperimentConfig) -> str:
    raw = to_dict(cfg)
    if cfg.paper == PaperConfig():  # most presets replicate no published row: no empty section
        del raw["paper"]
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, allow_unicode=True)


def save_preset(cfg: ExperimentConfig, path: str | os.PathLike) -> None:
    atomic_write_text(path, dumps_preset(cfg))


def describe_fields(cls: type, on_error: Callable[[str, Exception], None] | None = None) -> list[dict[str, Any]]:
    """Field descriptions for forms: name, type, default, help, bounds, choices, label.
    A registry behind a choices callable that fails leaves that field's choices open (None)
    and is reported to ``on_error`` when given, else raised."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        choices = meta.get("choices")
        if callable(choices):
            try:
                meta["choices"] = tuple(choices())
            except Exception as exc:  # noqa: BLE001  a plugin's registry may be broken
                if on_error is None:
                    raise
                on_error(f"choices of {cls.__name__}.{f.name}", exc)
                meta["choices"] = None
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append({"name": f.name, "type": hints[f.name], "default": default, **meta})
    return out
