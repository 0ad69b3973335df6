"""Where a target network's weights start, and which of its first stages stay frozen.

``target.init`` in a preset picks the start:

* ``scratch``: the architecture's own random initialisation (the paper's setting);
* ``torchvision``: torchvision's pretrained weights for the architecture (``target.weights``,
  e.g. IMAGENET1K_V1), read from the torch hub cache under ``TORCH_HOME``, never downloaded;
* ``checkpoint``: a weights file (``target.path``) read with the safe loader (``model_files``:
  ``weights_only=True`` or safetensors; ``{'state_dict': ...}`` and ``module.`` prefixes are
  unwrapped as for sources, so CSAIL and 3D-ResNets checkpoints load);
* ``run``: the trained network of an earlier run of this app (``target.path``, ``target.checkpoint``).

Every tensor must fit the architecture except the classifier (the last ``nn.Linear``): a
pretrained classifier of another class count is left freshly initialised, which is what
fine-tuning means. ``target.frozen_stages: N`` then freezes everything that runs up to the end
of the N-th stage (the stem included): those parameters get no gradients, so the optimizer
leaves them alone, and ``TargetNetwork`` keeps those modules in eval mode so that their
BatchNorm statistics do not drift either. ``supervised`` from pretrained weights is the
fine-tuning baseline any study can include.

The functions take plain modules and names, so a 3D target (video) uses them alike: it passes
its own stage names and a clip-shaped example input to ``freeze_first_stages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .config import TargetConfig
from .errors import SourceError, UserInputError
from .frozen_source import resolve_path
from .model_files import read_tensor_file
from .network_weights import classifier_key

INIT_KINDS = ("scratch", "torchvision", "checkpoint", "run")


@dataclass(frozen=True)
class InitialWeights:
    state: dict[str, torch.Tensor]
    origin: str  # what a person reads in the log: "torchvision resnet18 IMAGENET1K_V1"


def torchvision_name(arch: str) -> str:
    """The name torchvision knows an architecture by: a registered one's ``torchvision_name``, or
    the name itself when torchvision has it."""
    from .models import ARCHITECTURES
    from .network_weights import torchvision_classifiers

    if arch in ARCHITECTURES and ARCHITECTURES.get(arch).torchvision_name:
        return ARCHITECTURES.get(arch).torchvision_name
    if arch in torchvision_classifiers():
        return arch
    try:  # video and other model families are not in the classification list
        import torchvision

        torchvision.models.get_model_weights(arch)
        return arch
    except (ValueError, KeyError):
        raise UserInputError(f"target.init torchvision: torchvision has no pretrained weights for architecture "
                             f"{arch!r}; use target.init checkpoint with a weights file instead") from None


def torchvision_weights_file(arch: str, weights: str):
    """(weights enum member, path of its file in the hub cache) for ``arch``; the file may be missing."""
    from .sources import _torchvision_weights, torchvision_cache_file

    member = _torchvision_weights(torchvision_name(arch), weights)
    return member, torchvision_cache_file(member)


def read_initial_weights(target: TargetConfig, arch: str | None = None) -> InitialWeights | None:
    """The tensors ``target.init`` names for ``arch`` (default: the preset's), or None for scratch."""
    from .sources import extract_state_dict

    arch = arch or target.arch
    if target.init == "scratch":
        return None
    if target.init == "torchvision":
        member, path = torchvision_weights_file(arch, target.weights)
        if not path.is_file():
            raise SourceError(
                f"target.init torchvision: the weights file {path.name} for {arch} {member.name} is not on this "
                f"machine; download it from {member.url} and put it in {path.parent} (or set TORCH_HOME to a "
                "folder holding hub/checkpoints)")
        obj, _ = read_tensor_file(path)
        return InitialWeights(extract_state_dict(obj, path.name), f"torchvision {arch} {member.name}")
    if target.init == "checkpoint":
        path = resolve_path(target.path)
        if not path.is_file():
            raise SourceError(f"target.path: the weights file {path} does not exist")
        obj, metadata = read_tensor_file(path)
        state = extract_state_dict(obj, path.name)
        meta = {**metadata, **(obj.get("meta") if isinstance(obj.get("meta"), dict) else {})}
        if meta.get("format") == "sskt-studio-model":  # a model exported by this app, maybe with its aux heads
            state = {k: v for k, v in state.items() if not k.startswith("aux_heads.")}
        return InitialWeights(state, f"file {path}")
    if target.init == "run":
        return InitialWeights(_run_weights(target, arch), f"run {resolve_path(target.path).name} ({target.checkpoint})")
    raise UserInputError(f"target.init must be one of {', '.join(INIT_KINDS)}, not {target.init!r}")


def _run_weights(target: TargetConfig, arch: str) -> dict[str, torch.Tensor]:
    from .run_checkpoint import RunCheckpoint
    from .runs import RunFolder

    folder = RunFolder(resolve_path(target.path))
    if not folder.exists():
        raise SourceError(f"target.path: {target.path} is not a run folder of SSKT Studio (no preset.yaml)")
    path = folder.checkpoint_path(target.checkpoint)
    if not path.is_file():
        raise SourceError(f"target.path: run {folder.path.name} has no {target.checkpoint} checkpoint yet")
    checkpoint = RunCheckpoint.read(path, f"the {target.checkpoint} checkpoint of run {folder.path.name}")
    network = checkpoint.meta.export_network
    trained = checkpoint.meta.arch_of(network)
    if trained != arch:
        raise SourceError(f"target.path: run {folder.path.name} trained a {trained}, but the target is a {arch}")
    return checkpoint.backbone_weights(network)


def load_initial_weights(backbone: nn.Module, weights: InitialWeights) -> list[str]:
    """Copy ``weights`` into ``backbone``; returns notes for the run's log. The classifier is
    kept as initialised when its shape differs (another class count); any other tensor that is
    missing, extra or of another shape is a ``SourceError`` naming the first few."""
    expected = backbone.state_dict()
    state = dict(weights.state)
    notes = [f"target starts from {weights.origin}"]
    key = classifier_key(backbone)
    head = {key, key[: -len("weight")] + "bias"} if key else set()
    kept_fresh = [k for k in head if k in state and k in expected and state[k].shape != expected[k].shape]
    if kept_fresh:
        for k in kept_fresh:
            del state[k]
        notes.append(f"its classifier ({key.rsplit('.', 1)[0]}: {weights.state[key].shape[0]} classes) does not "
                     f"fit {expected[key].shape[0]} classes and starts fresh")
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    missing = [k for k in expected if k not in state and k not in kept_fresh and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if wrong or missing or unexpected:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                         f"{tuple(expected[k].shape)} in the network)")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise SourceError(f"the target's initial weights ({weights.origin}) do not fit its architecture: "
                          f"{'; '.join(parts)} tensors; is it the right architecture?")
    backbone.load_state_dict(state, strict=False)
    return notes


def initialise_backbone(backbone: nn.Module, target: TargetConfig, arch: str | None = None) -> list[str]:
    """``read_initial_weights`` then ``load_initial_weights``; no notes for scratch."""
    weights = read_initial_weights(target, arch)
    return load_initial_weights(backbone, weights) if weights is not None else []


@torch.no_grad()
def freeze_first_stages(backbone: nn.Module, count: int, stage_modules: tuple[str, ...] | list[str],
                        example_input: torch.Tensor) -> tuple[str, ...]:
    """Freeze every module (with parameters or buffers of its own) whose forward call ends no
    later than that of stage ``count`` (1-based, in ``stage_modules``' order); returns their names.
    One forward pass on ``example_input`` (in eval mode) finds the order, so no per-architecture
    code is needed. The caller keeps the returned modules in eval mode."""
    if count <= 0:
        return ()
    if count > len(stage_modules):
        raise UserInputError(f"target.frozen_stages is {count}, but the target has {len(stage_modules)} stages")
    modules = dict(backbone.named_modules())
    last_stage = stage_modules[count - 1]
    ends: dict[str, int] = {}
    clock = [0]
    handles = []

    def hook(name: str):
        def record(module: nn.Module, args: Any, output: Any) -> None:
            clock[0] += 1
            ends.setdefault(name, clock[0])

        return record

    stateful = {name for name, module in modules.items()
                if name and (any(True for _ in module.parameters(recurse=False))
                             or any(True for _ in module.buffers(recurse=False)))}
    for name in stateful | {last_stage}:
        handles.append(modules[name].register_forward_hook(hook(name)))
    was_training = backbone.training
    backbone.eval()
    try:
        backbone(example_input)
    finally:
        for handle in handles:
            handle.remove()
        backbone.train(was_training)
    if last_stage not in ends:
        raise UserInputError(f"target.frozen_stages: stage {last_stage!r} did not run in a forward pass")
    frozen = tuple(name for name, end in sorted(ends.items(), key=lambda item: item[1])
                   if name in stateful and end <= ends[last_stage])
    for name in frozen:
        for parameter in modules[name].parameters(recurse=False):
            parameter.requires_grad_(False)
    return frozen


def describe_init(target: TargetConfig) -> str:
    """One line for ``sskt check`` and the GUI: where the target starts and what is frozen."""
    start = {"scratch": "random initialisation", "torchvision": f"torchvision weights {target.weights or 'DEFAULT'}",
             "checkpoint": f"weights file {target.path}",
             "run": f"run {target.path} ({target.checkpoint})"}.get(target.init, target.init)
    frozen = f", stem and first {target.frozen_stages} stage(s) frozen" if target.frozen_stages else ""
    return start + frozen
