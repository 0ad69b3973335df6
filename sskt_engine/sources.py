"""Source models: pretrained networks that label every training batch, frozen.

A source comes from torchvision's weights (through its weights API and the
``TORCH_HOME`` cache, never downloaded here), a checkpoint file (plain
state_dict, CSAIL ``.pth.tar`` with ``module.`` prefixes, safetensors), an
earlier run of this app, or a compiled model file (TorchScript or ``torch.export``;
see ``compiled_sources``, which documents its own trust model). Weight files are read
with ``torch.load(weights_only=True)`` or safetensors: a file that would need arbitrary
unpickling is refused, because unpickling can run code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import SourceConfig
from .errors import SourceError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BUILTIN_PREFIX = "builtin:"


@dataclass
class FrozenSource:
    """A frozen network plus what it expects: input side, normalization, classes."""

    name: str
    module: nn.Module
    num_classes: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...] | None
    origin: str  # where it came from, for the GUI and the summary
    # Set when the source wants (255 * x - pixel_offset) / pixel_scale; mean/std then hold the
    # equivalent values on [0, 1] pixels, for anything that only reads those.
    pixel_scale: float | None = None
    pixel_offset: float | None = None

    def set_pixel_normalization(self, scale: float, offset: float) -> None:
        self.pixel_scale, self.pixel_offset = float(scale), float(offset)
        self.mean = (self.pixel_offset / 255.0,) * 3
        self.std = (self.pixel_scale / 255.0,) * 3

    def preprocessing(self) -> tuple[int, float, tuple[float, ...], tuple[float, ...]]:
        """(side, multiplier, shift, divisor): the source sees (resize(x) * multiplier - shift) / divisor."""
        if self.pixel_scale is not None:
            return self.input_size, 255.0, (self.pixel_offset or 0.0,) * 3, (self.pixel_scale,) * 3
        return self.input_size, 1.0, tuple(self.mean), tuple(self.std)

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "num_classes": self.num_classes, "input_size": self.input_size,
               "mean": list(self.mean), "std": list(self.std), "origin": self.origin}
        if self.pixel_scale is not None:
            out.update(pixel_scale=self.pixel_scale, pixel_offset=self.pixel_offset)
        return out


# ----------------------------------------------------------------------------- file reading

def resolve_path(path: str) -> Path:
    """Expand ``~`` and the ``builtin:`` prefix (files shipped in the app's resources)."""
    if path.startswith(BUILTIN_PREFIX):
        from .resources import resource_path

        return resource_path("models", path[len(BUILTIN_PREFIX):])
    return Path(path).expanduser()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"model file {path} does not exist")
    if path.is_dir():
        raise SourceError(f"{path} is a folder, not a model file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"model file {path} cannot be read (permission denied)")


def read_tensor_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a model file into (top-level object as a dict, safetensors metadata).

    ``.safetensors`` files hold only tensors; everything else goes through
    ``torch.load(weights_only=True)``, whose restricted unpickler refuses code."""
    _check_file(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = _decode_header(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise SourceError(f"{path.name} is not a readable safetensors file ({_first_line(exc)})") from None
        return tensors, metadata
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SourceError(
            f"{path.name} was refused: loading it needs unsafe unpickling of Python objects, which could run "
            f"code on this machine ({_unsafe_reason(exc)}); re-save it as a plain state_dict or as safetensors"
        ) from None
    except Exception as exc:  # noqa: BLE001  a damaged file makes torch.load raise almost anything
        # (struct.error, KeyError, IndexError, AssertionError, UnicodeDecodeError, ...)
        raise SourceError(f"{path.name} is not a readable PyTorch file; it may be truncated or of another "
                          f"format ({type(exc).__name__}: {_first_line(exc)})") from None
    if isinstance(obj, nn.Module):  # impossible with weights_only, kept for clarity
        raise SourceError(f"{path.name} holds a whole pickled model; save its state_dict instead")
    if not isinstance(obj, dict):
        raise SourceError(f"{path.name} does not hold a state_dict (found {type(obj).__name__})")
    return obj, {}


def _decode_header(header: dict[str, str]) -> dict[str, Any]:
    """safetensors metadata is str -> str; this app stores JSON there (other tools plain text)."""
    import json

    decoded: dict[str, Any] = {}
    for key, value in header.items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return decoded


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _unsafe_reason(exc: BaseException) -> str:
    import re

    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return f"it refers to {found.group(1)}, which is not a tensor or plain data"
    return "it contains objects other than tensors"


MAX_CLASSES = 100_000


def checked_class_count(value: Any, where: str) -> int | None:
    """A class count read from a file's metadata: None when absent, else a sane integer."""
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        raise SourceError(f"{where}: its metadata gives an impossible class count ({str(value)[:40]})") from None
    if not 1 <= count <= MAX_CLASSES or count != value and not isinstance(value, str):
        raise SourceError(f"{where}: its metadata gives an impossible class count ({str(value)[:40]})")
    return count


def extract_state_dict(obj: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    """Find the weights in common layouts: a bare state_dict, {'state_dict': ...} (CSAIL
    Places365, Lightning), {'model': ...}, {'models': {'target': ...}} (this app's checkpoints);
    strip DataParallel's ``module.`` prefix."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    else:
        if isinstance(obj.get("models"), dict) and obj["models"]:
            obj = next(iter(obj["models"].values()))
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SourceError(f"{name} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def load_weights_into(model: nn.Module, state: dict[str, torch.Tensor], what: str,
                      classifier_key: str | None = None) -> None:
    """``load_state_dict`` with errors a person can act on: class-count mismatch, wrong shapes,
    missing and unexpected keys (the first few named)."""
    expected = model.state_dict()
    if classifier_key and classifier_key in state and classifier_key in expected:
        got, want = state[classifier_key].shape[0], expected[classifier_key].shape[0]
        if got != want:
            raise SourceError(f"{what} has {got} output classes, but {want} were expected; "
                              f"set num_classes to {got}")
    for key, tensor in state.items():
        if key in expected and tuple(expected[key].shape) != tuple(tensor.shape):
            raise SourceError(f"{what}: tensor {key} has shape {tuple(tensor.shape)} in the file but "
                              f"{tuple(expected[key].shape)} in the architecture; is it the right architecture?")
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise SourceError(f"{what} does not match the architecture: {'; '.join(parts)} keys")
    model.load_state_dict(state, strict=False)


# ----------------------------------------------------------------------------- architectures

def _torchvision_classifiers() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_any_architecture(arch: str, num_classes: int) -> nn.Module:
    """A registered architecture, or any torchvision classification model by name."""
    from .models import ARCHITECTURES

    if arch in ARCHITECTURES:
        return ARCHITECTURES.get(arch)(num_classes)
    if arch in _torchvision_classifiers():
        import torchvision

        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    raise SourceError(f"unknown architecture {arch!r}; use one of this app's ({', '.join(ARCHITECTURES.keys())}) "
                      "or a torchvision classification model name")


def native_input_size(arch: str) -> int:
    from .models import ARCHITECTURES

    if arch in ARCHITECTURES:
        return int(ARCHITECTURES.entry(arch).meta.get("input_size", 224))
    return 224


def _last_linear(model: nn.Module) -> str | None:
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


# ----------------------------------------------------------------------------- torchvision

def _torchvision_weights(arch: str, weights: str):
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise SourceError(f"torchvision has no classification model {arch!r}") from None
    name = weights or "DEFAULT"
    try:
        return enum.DEFAULT if name == "DEFAULT" else enum[name]
    except KeyError:
        raise SourceError(f"torchvision model {arch} has no weights {name!r}; available: "
                          f"{', '.join(w.name for w in enum)}") from None


def torchvision_cache_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def torchvision_catalog() -> list[dict[str, Any]]:
    """Every torchvision classification model with its weights and whether each is cached here."""
    import torchvision

    catalog = []
    for arch in _torchvision_classifiers():
        try:
            enum = torchvision.models.get_model_weights(arch)
        except (ValueError, KeyError):
            continue
        members = list(enum)
        if not members:
            continue
        first = members[0]
        catalog.append({
            "model": arch,
            "weights": [w.name for w in members],
            "cached": {w.name: torchvision_cache_file(w).is_file() for w in members},
            "num_classes": len(first.meta.get("categories") or []),
            "input_size": _crop_size(first),
        })
    return catalog


def _crop_size(weights) -> int:
    try:
        crop = weights.transforms().crop_size
        return int(crop[0] if isinstance(crop, (list, tuple)) else crop)
    except Exception:  # some transforms (video, optical flow) lack it; not classification anyway
        return 224


def _build_torchvision(cfg: SourceConfig) -> FrozenSource:
    import torchvision

    weights = _torchvision_weights(cfg.arch, cfg.weights)
    path = torchvision_cache_file(weights)
    if not path.is_file():
        raise SourceError(
            f"the weights file {path.name} for {cfg.arch} {weights.name} is not on this machine; download it "
            f"from {weights.url} and put it in {path.parent} (or set TORCH_HOME to a folder holding hub/checkpoints)")
    state = extract_state_dict(read_tensor_file(path)[0], path.name)
    categories = tuple(weights.meta.get("categories") or ())
    model = torchvision.models.get_model(cfg.arch, weights=None, num_classes=len(categories) or 1000)
    load_weights_into(model, state, f"{path.name}", _classifier_key(model))
    transforms = weights.transforms()
    return FrozenSource(
        name=cfg.display_name(), module=model, num_classes=len(categories) or 1000,
        input_size=cfg.input_size or _crop_size(weights),
        mean=tuple(cfg.mean or getattr(transforms, "mean", IMAGENET_MEAN)),
        std=tuple(cfg.std or getattr(transforms, "std", IMAGENET_STD)),
        class_names=categories or None, origin=f"torchvision {cfg.arch} {weights.name}")


def _classifier_key(model: nn.Module) -> str | None:
    name = _last_linear(model)
    return f"{name}.weight" if name else None


# ----------------------------------------------------------------------------- checkpoint files

def _build_checkpoint(cfg: SourceConfig) -> FrozenSource:
    path = resolve_path(cfg.path)
    obj, metadata = read_tensor_file(path)
    meta = dict(metadata)
    if isinstance(obj.get("meta"), dict):
        meta.update(obj["meta"])
    state = extract_state_dict(obj, path.name)
    if meta.get("format") == "sskt-studio-model":  # auxiliary heads kept at export are not part of the source
        state = {k: v for k, v in state.items() if not k.startswith("aux_heads.")}
    arch = cfg.arch or meta.get("arch", "")
    if not arch:
        raise SourceError(f"{path.name} does not say which architecture it is; set the source's arch")
    num_classes = cfg.num_classes or checked_class_count(meta.get("num_classes"), path.name)
    model = build_any_architecture(arch, num_classes or 1000)
    key = _classifier_key(model)
    if num_classes is None:
        if key is None or key not in state:
            raise SourceError(f"cannot tell the class count of {path.name}; set the source's num_classes")
        num_classes = int(state[key].shape[0])
        model = build_any_architecture(arch, num_classes)
    load_weights_into(model, state, path.name, key)
    return FrozenSource(
        name=cfg.display_name(), module=model, num_classes=num_classes,
        input_size=cfg.input_size or _int_or_none(meta.get("input_size")) or native_input_size(arch),
        mean=tuple(cfg.mean or _floats(meta.get("mean")) or IMAGENET_MEAN),
        std=tuple(cfg.std or _floats(meta.get("std")) or IMAGENET_STD),
        class_names=_names(meta.get("class_names")), origin=f"file {path}")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _floats(value: Any) -> tuple[float, ...] | None:
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, (list, tuple)) and len(value) == 3:
        try:
            return tuple(float(v) for v in value)
        except (TypeError, ValueError):
            return None
    return None


def _names(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


# ----------------------------------------------------------------------------- runs of this app

def _build_run(cfg: SourceConfig) -> FrozenSource:
    from .runs import RunFolder

    folder = RunFolder(resolve_path(cfg.path))
    if not folder.exists():
        raise SourceError(f"{cfg.path} is not a run folder of SSKT Studio (no preset.yaml)")
    checkpoint = folder.checkpoint_path(cfg.checkpoint)
    if not checkpoint.is_file():
        raise SourceError(f"run {folder.path.name} has no {cfg.checkpoint} checkpoint yet")
    obj, _ = read_tensor_file(checkpoint)
    meta = obj.get("meta", {})
    network = meta.get("export_network", "target")
    models = obj.get("models", {})
    if network not in models:
        raise SourceError(f"checkpoint of run {folder.path.name} holds no network {network!r}")
    state = {k[len("backbone."):]: v for k, v in models[network].items() if k.startswith("backbone.")}
    arch = meta["networks"][network]["arch"] if "networks" in meta else meta["arch"]
    num_classes = int(meta["num_classes"])
    model = build_any_architecture(arch, num_classes)
    load_weights_into(model, state, f"run {folder.path.name}", _classifier_key(model))
    return FrozenSource(
        name=cfg.name or folder.path.name, module=model, num_classes=num_classes,
        input_size=cfg.input_size or int(meta["input_size"]),
        mean=tuple(cfg.mean or meta["mean"]), std=tuple(cfg.std or meta["std"]),
        class_names=_names(meta.get("class_names")), origin=f"run {folder.path}")


def _build_compiled(cfg: SourceConfig) -> FrozenSource:
    from .compiled_sources import build_compiled_source  # it imports this module

    return build_compiled_source(cfg)


_BUILDERS = {"torchvision": _build_torchvision, "checkpoint": _build_checkpoint, "run": _build_run,
             "compiled": _build_compiled}


def build_source(cfg: SourceConfig, device: torch.device | str = "cpu") -> FrozenSource:
    """Build, load and freeze one source: ``eval()``, no gradients, on ``device``.

    ``pixel_scale``/``pixel_offset`` in the preset override any normalization the source brings."""
    source = _BUILDERS[cfg.kind](cfg)
    if cfg.pixel_scale is not None:
        source.set_pixel_normalization(cfg.pixel_scale, cfg.pixel_offset or 0.0)
    source.module.eval().requires_grad_(False).to(device)
    return source


# ----------------------------------------------------------------------------- the ensemble

class SourceEnsemble(nn.Module):
    """Runs every source on the same augmented batch the target sees.

    Images arrive as pixels in [0, 1]; each distinct preprocessing (size, then mean/std
    on [0, 1] pixels or scale/offset on [0, 255] pixels) is prepared once (bilinear
    resize, re-normalization) and shared by the sources that need it.
    Stays in eval mode whatever ``train()`` is called with: BatchNorm statistics of
    a source must never drift (the authors' scripts let them)."""

    def __init__(self, sources: Iterable[FrozenSource], precision: str = "float32", channels_last: bool = False):
        """``precision`` bfloat16/float16 runs the sources under autocast (CUDA): soft labels
        need no more, and the sources are often the larger networks. ``channels_last`` suits
        tensor cores; both are what ``source_settings`` picks for a device."""
        super().__init__()
        self.sources = list(sources)
        self.autocast_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(precision)
        self.channels_last = channels_last
        self.nets = nn.ModuleList(s.module for s in self.sources)
        if channels_last:
            for net in self.nets:
                if not isinstance(net, torch.jit.ScriptModule):
                    net.to(memory_format=torch.channels_last)
        groups: dict[tuple, list[int]] = {}
        for index, s in enumerate(self.sources):
            groups.setdefault(s.preprocessing(), []).append(index)
        self.groups = list(groups.items())
        for index, ((_, _, shift, divisor), _) in enumerate(self.groups):
            self.register_buffer(f"shift{index}", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
            self.register_buffer(f"divisor{index}", torch.tensor(divisor).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> "SourceEnsemble":
        return super().train(False)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor | None] = [None] * len(self.sources)
        if self.autocast_dtype is not None:
            precision = torch.autocast(pixels.device.type, dtype=self.autocast_dtype)
        else:
            precision = contextlib.nullcontext()
        with torch.inference_mode(), precision:
            for group, ((size, multiplier, _, _), members) in enumerate(self.groups):
                x = pixels
                if x.shape[-1] != size or x.shape[-2] != size:
                    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                if multiplier != 1.0:
                    x = x * multiplier
                x = (x - getattr(self, f"shift{group}")) / getattr(self, f"divisor{group}")
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                for index in members:
                    outputs[index] = self.nets[index](x)
        # Inference tensors cannot be saved for backward; a clone outside the mode is a normal tensor.
        return [o.float().clone() for o in outputs]


def source_settings(precision: str, device: torch.device) -> dict[str, Any]:
    """Keyword arguments of ``SourceEnsemble`` for ``train.source_precision`` on ``device``:
    auto means bfloat16 (or float16) with channels_last on CUDA, float32 elsewhere."""
    cuda = device.type == "cuda"
    if precision == "auto":
        if not cuda:
            return {"precision": "float32", "channels_last": False}
        precision = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if precision != "float32" and not cuda:
        precision = "float32"  # autocast in half precision is a CUDA feature; CPU stays exact
    return {"precision": precision, "channels_last": cuda}
