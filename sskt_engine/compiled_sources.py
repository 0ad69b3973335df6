"""Compiled model files as sources: TorchScript and ``torch.export`` programs, no architecture needed.

One source kind, ``compiled``, reads both formats; which one a file is comes from its
content (the entries of its zip archive), never from its suffix:

* a TorchScript file, written by ``torch.jit.save`` (``.pt``, ``.ts``, ``.torchscript``...);
* a ``torch.export`` program, written by ``torch.export.save`` (``.pt2``).

What the engine needs besides the network comes from the source's preset entry first, then
from metadata stored with the file, then from defaults:

* ``input_size``: the preset, the metadata, or (``.pt2`` only) the program's own static input
  shape; a file that says nothing is refused with a sentence asking for ``input_size``;
* normalization: ``mean``/``std`` on pixels in [0, 1], or ``pixel_scale``/``pixel_offset`` on
  pixels in [0, 255] (the source sees ``(255 * x - pixel_offset) / pixel_scale``); default:
  ImageNet's mean/std, as for checkpoint files;
* class names (optional): the preset's ``class_names_file`` (one name per line), or the metadata;
* the class count is found by running the model once on a batch of zeros.

Metadata is a JSON object in an extra file named ``sskt_meta.json`` inside the archive
(``torch.jit.save(m, f, _extra_files={"sskt_meta.json": ...})`` or
``torch.export.save(ep, f, extra_files={"sskt_meta.json": ...})``), or, failing that, a JSON
file beside the model: ``model.pt2.json`` or ``model.json`` for ``model.pt2``. Keys (all
optional, unknown keys ignored): ``input_size``, ``mean``, ``std``, ``pixel_scale``,
``pixel_offset``, ``class_names``, ``num_classes`` (checked against the model's output),
``clip_len`` (a video network taking clips [N, 3, T, H, W]: frames per clip; it then teaches on
video data and sees whole clips, see ``clip_sources``). A ``.pt2`` program whose input is 5-D is a
video network without being told.

Trust model
-----------
Only load compiled files from people you trust, as you would a program. A compiled file *is*
a program; ``model_files`` checks it before it runs: pickles, ``__setstate__`` and the
``torch.export`` JSON before loading, then every operator of the parsed program against an
allowlist, before it sees any input (``model_files.torchscript``,
``model_files.exported_program``; the threat model is in docs/RELIABILITY.md). The file is
read into memory once; the checks and the load use those same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .config import SourceConfig
from .errors import SourceError
from .frozen_source import IMAGENET_MEAN, IMAGENET_STD, FrozenSource, resolve_path
from .model_files import EXPORTED_PROGRAM, META_FILE, TORCHSCRIPT, CompiledFile, load_compiled, read_compiled
from .model_files.archive import error_summary
from .registry import SOURCE_KINDS, SourceKindInfo

PROBE_BATCH = 2
COMPILED_FILTER = "Compiled models (*.pt2 *.pt *.ts *.torchscript);;All files (*)"
__all__ = ["META_FILE", "CompiledMetadata", "CompiledModel", "build_compiled_source", "metadata_json",
           "parse_metadata"]


# ----------------------------------------------------------------------------- metadata

@dataclass(frozen=True)
class CompiledMetadata:
    """What a compiled file says about itself (every field optional)."""

    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    pixel_scale: float | None = None
    pixel_offset: float | None = None
    class_names: tuple[str, ...] | None = None
    num_classes: int | None = None
    clip_len: int | None = None  # a video network: frames per clip it takes
    where: str = ""  # the metadata's location, for messages


def parse_metadata(text: str | bytes, where: str) -> CompiledMetadata:
    """Validate a metadata JSON object; a bad value becomes one sentence naming the key."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise SourceError(f"the metadata {where} is not valid JSON") from None
    if not isinstance(raw, dict):
        raise SourceError(f"the metadata {where} must be a JSON object of keys to values")

    def bad(key: str, want: str) -> SourceError:
        return SourceError(f"the metadata {where} is not valid: {key} must be {want}, not {str(raw[key])[:60]!r}")

    def number(key: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(key, "a number")
        return float(value)

    def triple(key: str, positive: bool) -> tuple[float, float, float] | None:
        value = raw.get(key)
        if value is None:
            return None
        ok = (isinstance(value, list) and len(value) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
              and (not positive or all(v > 0 for v in value)))
        if not ok:
            raise bad(key, "a list of 3 numbers" + (" greater than 0" if positive else ""))
        return tuple(float(v) for v in value)  # type: ignore[return-value]

    def whole(key: str, low: int, high: int) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad(key, f"a whole number from {low} to {high}")
        return value

    names = raw.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise bad("class_names", "a list of texts")
    scale, offset = number("pixel_scale"), number("pixel_offset")
    if scale is not None and scale <= 0:
        raise bad("pixel_scale", "greater than 0")
    if offset is not None and scale is None:
        raise SourceError(f"the metadata {where} gives pixel_offset without pixel_scale")
    if scale is not None and (raw.get("mean") is not None or raw.get("std") is not None):
        raise SourceError(f"the metadata {where} gives both mean/std and pixel_scale; keep one normalization")
    return CompiledMetadata(input_size=whole("input_size", 8, 1024), mean=triple("mean", False),
                            std=triple("std", True), pixel_scale=scale, pixel_offset=offset,
                            class_names=tuple(names) if names is not None else None,
                            num_classes=whole("num_classes", 1, 10**7), clip_len=whole("clip_len", 1, 512),
                            where=where)


def metadata_json(*, input_size: int | None = None, mean: Any = None, std: Any = None,
                  pixel_scale: float | None = None, pixel_offset: float | None = None,
                  class_names: Any = None) -> str:
    """The metadata text to embed with ``_extra_files``/``extra_files`` (helper for exporters)."""
    values = {"input_size": input_size, "mean": list(mean) if mean else None, "std": list(std) if std else None,
              "pixel_scale": pixel_scale, "pixel_offset": pixel_offset,
              "class_names": list(class_names) if class_names else None}
    return json.dumps({k: v for k, v in values.items() if v is not None})


def _sidecar_metadata(path: Path) -> CompiledMetadata | None:
    for sidecar in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if sidecar != path and sidecar.is_file():
            try:
                text = sidecar.read_bytes()
            except OSError as exc:
                raise SourceError(f"the metadata file {sidecar} cannot be read ({exc.strerror})") from None
            return parse_metadata(text, f"file {sidecar.name}")
    return None


# ----------------------------------------------------------------------------- the loaded network

class CompiledModel(nn.Module):
    """A loaded TorchScript module or exported program, always in eval mode.

    Exported programs refuse ``train()``/``eval()`` (the graph is fixed), so the mode is set on
    the flags only. A program exported with a static batch size runs any batch: in chunks of
    that size, the last one padded with zeros (a source is in eval mode, so images never
    influence each other)."""

    def __init__(self, program: nn.Module, fixed_batch: int | None = None):
        super().__init__()
        self.program = program
        self.fixed_batch = fixed_batch
        self.train(False)

    def train(self, mode: bool = True) -> "CompiledModel":
        for module in self.modules():
            if module is not self:
                module.training = False
        self.training = False
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.fixed_batch
        if batch is None or x.shape[0] == batch:
            return self.program(x)
        outputs = []
        for start in range(0, x.shape[0], batch):
            chunk = x[start:start + batch]
            count = chunk.shape[0]
            if count < batch:
                chunk = torch.cat([chunk, chunk.new_zeros((batch - count, *chunk.shape[1:]))])
            outputs.append(self.program(chunk)[:count])
        return torch.cat(outputs)


@dataclass(frozen=True)
class _InputSpec:
    rank: int | None = None
    frames: int | None = None  # T of a video network's 5-D input [N, 3, T, H, W]
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    batch: int | None = None


def _exported_input_spec(program: Any, name: str) -> _InputSpec:
    user_inputs = list(program.graph_signature.user_inputs)
    if len(user_inputs) != 1:
        raise SourceError(f"{name} takes {len(user_inputs)} inputs, but a source must take one batch of images")
    node = next((n for n in program.graph.nodes if n.op == "placeholder" and n.name == user_inputs[0]), None)
    value = node.meta.get("val") if node is not None else None
    if value is None or not hasattr(value, "shape"):
        return _InputSpec()
    if not isinstance(value, torch.Tensor):
        raise SourceError(f"{name} takes a {type(value).__name__}, but a source must take a batch of images")
    shape = [d if isinstance(d, int) else None for d in value.shape]
    if len(shape) == 5:  # a video network: clips [N, 3, T, H, W]
        return _InputSpec(5, shape[2], shape[1], shape[3], shape[4], shape[0])
    if len(shape) != 4:
        raise SourceError(f"{name} takes {len(shape)}-D input of shape {_shape_text(value.shape)}, but a source must "
                          f"take a 4-D batch of images (N, 3, H, W) or a 5-D batch of clips (N, 3, T, H, W)")
    return _InputSpec(4, None, shape[1], shape[2], shape[3], shape[0])


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "any" for d in shape) + ")"


def _load_program(file: CompiledFile) -> nn.Module | Any:
    try:
        return load_compiled(file)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001  both loaders raise assorted errors on bad files
        raise SourceError(f"{file.name} could not be loaded as {file.format_name} ({error_summary(exc)})") from None


def _probe(model: CompiledModel, name: str, side: int, fmt: str, clip_len: int = 0) -> torch.Tensor:
    batch = model.fixed_batch or PROBE_BATCH
    x = torch.zeros(batch, 3, clip_len, side, side) if clip_len else torch.zeros(batch, 3, side, side)
    try:
        with torch.inference_mode():
            out = model(x)
    except Exception as exc:  # noqa: BLE001
        rank = _accepted_rank(model, side) if fmt == TORCHSCRIPT else None
        if rank == 5:
            raise SourceError(f"{name} takes clips (5-D input), but does not say how many frames; add clip_len to "
                              f"its metadata ({META_FILE})") from None
        if rank is not None:
            raise SourceError(f"{name} takes {rank}-D input, but a source must take a 4-D batch of images "
                              f"(N, 3, H, W)") from None
        if clip_len:
            raise SourceError(f"{name} fails on a batch of clips of {clip_len} frames of {side}x{side} RGB "
                              f"({error_summary(exc)}); check its clip_len and the source's input_size") from None
        raise SourceError(f"{name} fails on a batch of {side}x{side} RGB images ({error_summary(exc)}); check the "
                          f"source's input_size") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch or out.shape[1] < 1 \
            or not out.is_floating_point():
        raise SourceError(f"{name} returns {_describe_output(out)}, not 2-D logits of shape (batch, classes); a "
                          f"source must map each image to one row of class scores")
    return out


def _accepted_rank(model: CompiledModel, side: int) -> int | None:
    """After a 4-D batch failed: does the TorchScript model take clips, 3-D images or flat 2-D rows instead?"""
    for rank, x in ((5, torch.zeros(PROBE_BATCH, 3, 4, side, side)), (3, torch.zeros(3, side, side)),
                    (2, torch.zeros(PROBE_BATCH, 3 * side * side))):
        try:
            with torch.inference_mode():
                model.program(x)
            return rank
        except Exception:  # noqa: BLE001
            continue
    return None


def _describe_output(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f"a {out.dim()}-D {str(out.dtype).replace('torch.', '')} tensor of shape {tuple(out.shape)}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} values"
    return f"a {type(out).__name__}"


def _read_class_names(path_text: str) -> tuple[str, ...]:
    path = resolve_path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"class names file {path} does not exist") from None
    except (OSError, UnicodeDecodeError):
        raise SourceError(f"class names file {path} cannot be read as UTF-8 text") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise SourceError(f"class names file {path} holds no names (one per line)")
    return names


# ----------------------------------------------------------------------------- the builder

def build_compiled_source(cfg: SourceConfig) -> FrozenSource:
    """A ``compiled`` source: check the file, load it, find its input size, normalization and classes."""
    path = resolve_path(cfg.path)
    file = read_compiled(path)
    name, fmt = path.name, file.format
    embedded = file.metadata_text()
    if embedded is not None:
        meta = parse_metadata(embedded, f"{META_FILE} in {name}")
    else:
        meta = _sidecar_metadata(path) or CompiledMetadata()

    program = _load_program(file)
    spec = _InputSpec()
    if fmt == EXPORTED_PROGRAM:
        spec = _exported_input_spec(program, name)
        module = program.module()
    else:
        module = program
    if spec.channels is not None and spec.channels != 3:
        raise SourceError(f"{name} takes {spec.channels}-channel images, but a source must take 3-channel RGB images")
    static_side = None
    if spec.height is not None and spec.width is not None:
        if spec.height != spec.width:
            raise SourceError(f"{name} was exported for {spec.height}x{spec.width} images, but sources see square "
                              f"images; export it with a square or dynamic image size")
        static_side = spec.height
    input_size = cfg.input_size or meta.input_size or static_side
    if input_size is None:
        raise SourceError(f"{name} does not say which image size it takes; set the source's input_size")
    if static_side is not None and input_size != static_side:
        raise SourceError(f"{name} was exported for {static_side}x{static_side} images, so its input_size must be "
                          f"{static_side}, not {input_size} (or export it with a dynamic image size)")

    # a video network: frames per clip from its metadata, else from a .pt2's static 5-D input (16, the
    # usual clip length, when that dimension is dynamic); 0 for an image network
    clip_len = meta.clip_len or ((spec.frames or 16) if spec.rank == 5 else 0)
    model = CompiledModel(module, spec.batch)
    out = _probe(model, name, input_size, fmt, clip_len)
    num_classes = int(out.shape[1])
    for expected, what in ((cfg.num_classes, "the preset's num_classes"), (meta.num_classes, meta.where)):
        if expected is not None and expected != num_classes:
            raise SourceError(f"{name} has {num_classes} output classes, but {what} says {expected}")
    class_names = _read_class_names(cfg.class_names_file) if cfg.class_names_file else meta.class_names
    if class_names is not None and len(class_names) != num_classes:
        where = f"class names file {cfg.class_names_file}" if cfg.class_names_file else meta.where
        raise SourceError(f"{name} has {num_classes} output classes, but {where} names {len(class_names)}")

    given_mean_std = cfg.mean is not None or cfg.std is not None
    source = FrozenSource(
        name=cfg.display_name(), module=model, num_classes=num_classes, input_size=input_size,
        mean=tuple(cfg.mean or meta.mean or IMAGENET_MEAN), std=tuple(cfg.std or meta.std or IMAGENET_STD),
        class_names=class_names,
        origin=f"{'TorchScript file' if fmt == TORCHSCRIPT else 'torch.export program'} {path}", clip_len=clip_len)
    if not given_mean_std and meta.pixel_scale is not None:
        source.set_pixel_normalization(meta.pixel_scale, meta.pixel_offset or 0.0)
    return source


SOURCE_KINDS.add(SourceKindInfo(
    name="compiled", build=build_compiled_source, title="compiled model file",
    description="a TorchScript or torch.export (.pt2) file; no architecture needed",
    required={"path": "a compiled source needs the model file's path"},
    keys=("kind", "path", "input_size", "mean", "std", "pixel_scale", "pixel_offset", "num_classes",
          "class_names_file", "name", "clip_frames"),
    path_is="file", file_filter=COMPILED_FILTER))
