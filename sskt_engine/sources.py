"""Source models: pretrained networks that label every training batch, frozen.

This module holds the source kinds that name an architecture and load weights into it, each
registered in ``registry.SOURCE_KINDS`` where it is implemented:

* ``torchvision``: torchvision's weights, through its weights API and the ``TORCH_HOME``
  cache (never downloaded here);
* ``checkpoint``: a weights file (plain state_dict, CSAIL ``.pth.tar`` with ``module.``
  prefixes, Lightning, safetensors, a model exported by this app);
* ``run``: the trained network of an earlier run of this app.

The ``compiled`` kind (TorchScript, ``torch.export``) lives in ``compiled_sources``. Files are
read through ``model_files`` (``torch.load(weights_only=True)`` or safetensors: a file that
would need arbitrary unpickling is refused, because unpickling can run code) and a run's
checkpoint through ``run_checkpoint``. ``build_source`` dispatches on the kind through the
registry; ``SourceEnsemble`` runs the frozen sources on every batch.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from .clip_sources import label_clips
from .config import SourceConfig
from .errors import SourceError, UserInputError
from .frozen_source import IMAGENET_MEAN, IMAGENET_STD, FrozenSource, resolve_path
from .model_files import checked_class_count, read_tensor_file
from .network_weights import build_any_architecture, classifier_key, load_weights_into, native_clip_len, \
    native_input_size, torchvision_classifiers
from .registry import SOURCE_KINDS, SourceKindInfo

# Names other modules and older code import from here.
__all__ = ["FrozenSource", "IMAGENET_MEAN", "IMAGENET_STD", "SourceEnsemble", "build_source", "read_tensor_file",
           "resolve_path", "source_settings", "torchvision_cache_file", "torchvision_catalog"]

CHECKPOINT_FILTER = "Model files (*.pt *.pth *.tar *.safetensors *.ckpt);;All files (*)"


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
    for arch in torchvision_classifiers():
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
    load_weights_into(model, state, f"{path.name}", classifier_key(model))
    transforms = weights.transforms()
    return FrozenSource(
        name=cfg.display_name(), module=model, num_classes=len(categories) or 1000,
        input_size=cfg.input_size or _crop_size(weights),
        mean=tuple(cfg.mean or getattr(transforms, "mean", IMAGENET_MEAN)),
        std=tuple(cfg.std or getattr(transforms, "std", IMAGENET_STD)),
        class_names=categories or None, origin=f"torchvision {cfg.arch} {weights.name}",
        clip_len=native_clip_len(cfg.arch))


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
    key = classifier_key(model)
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
        class_names=_names(meta.get("class_names")), origin=f"file {path}",
        clip_len=_int_or_none(meta.get("clip_len")) or native_clip_len(arch))


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
    from .run_checkpoint import RunCheckpoint
    from .runs import RunFolder

    folder = RunFolder(resolve_path(cfg.path))
    if not folder.exists():
        raise SourceError(f"{cfg.path} is not a run folder of SSKT Studio (no preset.yaml)")
    path = folder.checkpoint_path(cfg.checkpoint)
    if not path.is_file():
        raise SourceError(f"run {folder.path.name} has no {cfg.checkpoint} checkpoint yet")
    try:
        checkpoint = RunCheckpoint.read(path, f"the {cfg.checkpoint} checkpoint of run {folder.path.name}")
    except UserInputError as exc:
        raise SourceError(str(exc)) from None
    meta = checkpoint.meta
    network = meta.export_network
    if network not in checkpoint.models:
        raise SourceError(f"checkpoint of run {folder.path.name} holds no network {network!r}")
    model = build_any_architecture(meta.arch_of(network), meta.num_classes)
    load_weights_into(model, checkpoint.backbone_weights(network), f"run {folder.path.name}", classifier_key(model))
    return FrozenSource(
        name=cfg.name or folder.path.name, module=model, num_classes=meta.num_classes,
        input_size=cfg.input_size or meta.input_size,
        mean=tuple(cfg.mean or meta.mean), std=tuple(cfg.std or meta.std),
        class_names=meta.class_names or None, origin=f"run {folder.path}",
        clip_len=_int_or_none(meta.extra.get("clip_len")) or native_clip_len(meta.arch_of(network)))


SOURCE_KINDS.add(SourceKindInfo(
    name="torchvision", build=_build_torchvision, title="torchvision",
    description="torchvision pretrained weights, read from the torch hub cache",
    required={"arch": "a torchvision source needs the model name, e.g. resnet50"},
    keys=("kind", "arch", "weights", "input_size", "mean", "std", "pixel_scale", "pixel_offset", "name",
          "clip_frames")))
SOURCE_KINDS.add(SourceKindInfo(
    name="checkpoint", build=_build_checkpoint, title="checkpoint file",
    description="a checkpoint file (torch zip, .pth.tar, safetensors)",
    required={"path": "a checkpoint source needs the file's path"},
    keys=("kind", "arch", "path", "num_classes", "input_size", "mean", "std", "pixel_scale", "pixel_offset",
          "name", "clip_frames"),
    path_is="file", file_filter=CHECKPOINT_FILTER))
SOURCE_KINDS.add(SourceKindInfo(
    name="run", build=_build_run, title="earlier run",
    description="the trained network of an earlier run of this app",
    required={"path": "a run source needs the run folder's path"},
    keys=("kind", "path", "checkpoint", "name", "clip_frames"), path_is="folder"))


def build_source(cfg: SourceConfig, device: torch.device | str = "cpu") -> FrozenSource:
    """Build, load and freeze one source: ``eval()``, no gradients, on ``device``.

    The kind's builder comes from ``SOURCE_KINDS`` (``catalog.load_builtins`` registers every
    built-in kind). ``pixel_scale``/``pixel_offset`` in the preset override any normalization
    the source brings."""
    source = SOURCE_KINDS.get(cfg.kind).build(cfg)
    source.clip_frames = cfg.clip_frames
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
            for source, net in zip(self.sources, self.nets):
                if not isinstance(net, torch.jit.ScriptModule) and not source.clip_len:  # 2-D layouts only
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

    def prepared(self, pixels: torch.Tensor, group: int) -> torch.Tensor:
        """Images [N, 3, H, W] in [0, 1] as the sources of ``group`` take them: resized, normalized."""
        size, multiplier, _, _ = self.groups[group][0]
        x = pixels
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        if multiplier != 1.0:
            x = x * multiplier
        x = (x - getattr(self, f"shift{group}")) / getattr(self, f"divisor{group}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """Each source's logits for images [B, 3, H, W] or clips [B, 3, T, H, W] (``clip_sources``
        says what each source sees of a clip), all float32 [B, classes]."""
        outputs: list[torch.Tensor | None] = [None] * len(self.sources)
        if self.autocast_dtype is not None:
            precision = torch.autocast(pixels.device.type, dtype=self.autocast_dtype)
        else:
            precision = contextlib.nullcontext()
        with torch.inference_mode(), precision:
            if pixels.dim() == 5:  # clips
                outputs = label_clips(self, pixels)
            else:
                for group, (_, members) in enumerate(self.groups):
                    x = self.prepared(pixels, group)
                    for index in members:
                        outputs[index] = self.nets[index](x)
        # Inference tensors cannot be saved for backward; a clone outside the mode is a normal tensor.
        return [o.float().clone() for o in outputs]


def source_settings(precision: str, device: torch.device) -> dict[str, Any]:
    """Keyword arguments of ``SourceEnsemble`` for ``train.source_precision`` on ``device``:
    auto means bfloat16 (or float16) on CUDA, float32 elsewhere. Channels-last on CUDA and CPU:
    on this project's CPU it cut the sources' CPU time to 0.80x (ResNet-18 at 96 px) and 0.69x
    (the demo's source) (``benchmarks/source_cost.py --levers``); MPS is left as it was."""
    cuda = device.type == "cuda"
    channels_last = device.type in ("cuda", "cpu")
    if precision == "auto":
        if not cuda:
            return {"precision": "float32", "channels_last": channels_last}
        precision = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if precision != "float32" and not cuda:
        precision = "float32"  # autocast in half precision is a CUDA feature; CPU stays exact
    return {"precision": precision, "channels_last": channels_last}
