"""Places365 sources: the CSAIL checkpoints (Zhou et al., places2.csail.mit.edu) as a kind of their own.

A preset names the architecture and, optionally, the file::

    sources:
      - {kind: places365, arch: resnet50}                      # <places365 folder>/resnet50_places365.pth.tar
      - {kind: places365, arch: densenet161, path: ~/w/densenet161_places365.pth.tar}

Without a path the file is looked up in the Places365 folder: ``$SSKT_PLACES365_DIR`` when set,
else ``places365/`` in the app's user data folder (``places365_dir()``). The files are the
authors' ``torch.save`` pickles of ``{'epoch', 'arch', 'state_dict', 'best_prec1'}`` with
DataParallel's ``module.`` prefixes; they are read through ``model_files.read_tensor_file``
(``weights_only=True``: nothing in them can run code). ``densenet161_places365.pth.tar`` was
saved by an old torchvision whose DenseNet layers were named ``norm.1``/``conv.2``; those keys
are renamed to today's ``norm1``/``conv2`` (the same rename torchvision applies to its own old
DenseNet files). ``wideresnet18`` is the authors' own network (``models/wideresnet_places365``).
The 365 category names ship with the app (``resources/places365/categories_places365.txt``, the
authors' file), so predictions and the source inspector name scenes, not numbers.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .config import SourceConfig
from .errors import SourceError
from .frozen_source import IMAGENET_MEAN, IMAGENET_STD, FrozenSource, resolve_path
from .model_files import read_tensor_file
from .network_weights import classifier_key, load_weights_into
from .registry import SOURCE_KINDS, SourceKindInfo
from .sources import extract_state_dict

NUM_CLASSES = 365
INPUT_SIZE = 224  # the authors trained and evaluated at 224 px crops with ImageNet's mean/std
DOWNLOAD_URL = "http://places2.csail.mit.edu/models_places365/"
ENV_FOLDER = "SSKT_PLACES365_DIR"


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    return build


def _wideresnet18(num_classes: int) -> nn.Module:
    from .models.wideresnet_places365 import PlacesWideResNet18

    return PlacesWideResNet18(num_classes)


# The CSAIL checkpoints this kind reads: architecture -> builder (file: <arch>_places365.pth.tar).
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": _torchvision("resnet18"),
    "resnet50": _torchvision("resnet50"),
    "densenet161": _torchvision("densenet161"),
    "wideresnet18": _wideresnet18,
}

# Old torchvision DenseNet names: features.denseblock1.denselayer1.norm.1.weight -> ...norm1.weight
_OLD_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|"
                               r"running_var|num_batches_tracked))$")


def places365_dir() -> Path:
    """Where Places365 checkpoints are looked for when a source names no path."""
    env = os.environ.get(ENV_FOLDER)
    if env:
        return Path(env).expanduser()
    import appdirs

    return Path(appdirs.user_data_dir("sskt-studio", "SSKT")) / "places365"


def file_name(arch: str) -> str:
    return f"{arch}_places365.pth.tar"


def checkpoint_path(cfg: SourceConfig) -> Path:
    """The file a places365 source reads; a missing one is one sentence saying where to get it."""
    arch = known_arch(cfg.arch)
    path = resolve_path(cfg.path) if cfg.path else places365_dir() / file_name(arch)
    if not path.is_file():
        where = (f"put it at {path}" if cfg.path else
                 f"put it in {path.parent} (or set {ENV_FOLDER}, or give the source a path)")
        raise SourceError(f"the Places365 checkpoint {path.name} is not on this machine; download "
                          f"{file_name(arch)} from {DOWNLOAD_URL}{file_name(arch)} and {where}")
    return path


def known_arch(arch: str) -> str:
    if arch not in ARCHITECTURES:
        raise SourceError(f"a places365 source's arch must be one of {', '.join(ARCHITECTURES)} (the CSAIL "
                          f"checkpoints), not {arch!r}")
    return arch


def rename_old_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``norm.1`` -> ``norm1``, ``conv.2`` -> ``conv2`` (DenseNet files from torchvision before 0.3)."""
    renamed = {}
    for key, value in state.items():
        match = _OLD_DENSENET_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


@functools.lru_cache(maxsize=1)
def category_names() -> tuple[str, ...]:
    """The 365 scene names in class order, read from the authors' ``categories_places365.txt``
    shipped with the app (lines ``/a/airfield 0``); the letter folder is dropped: ``airfield``,
    ``apartment_building/outdoor``."""
    from .resources import resource_path

    path = resource_path("places365", "categories_places365.txt")
    names: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        label, index = line.rsplit(" ", 1)
        names[int(index)] = label.split("/", 2)[2]
    if sorted(names) != list(range(NUM_CLASSES)):
        raise SourceError(f"{path} does not list the {NUM_CLASSES} Places365 categories; the app's files are damaged")
    return tuple(names[i] for i in range(NUM_CLASSES))


def load_network(path: Path, arch: str) -> nn.Module:
    """The CSAIL network of ``arch`` with the weights of ``path`` (safe loader), not yet frozen."""
    obj, _ = read_tensor_file(path)
    state = extract_state_dict(obj, path.name)
    if arch == "densenet161":
        state = rename_old_densenet_keys(state)
    model = ARCHITECTURES[arch](NUM_CLASSES)
    load_weights_into(model, state, f"{path.name} (Places365 {arch})", classifier_key(model))
    return model


def _build_places365(cfg: SourceConfig) -> FrozenSource:
    arch = known_arch(cfg.arch)
    path = checkpoint_path(cfg)
    return FrozenSource(
        name=cfg.name or f"places365:{arch}", module=load_network(path, arch), num_classes=NUM_CLASSES,
        input_size=cfg.input_size or INPUT_SIZE, mean=tuple(cfg.mean or IMAGENET_MEAN),
        std=tuple(cfg.std or IMAGENET_STD), class_names=category_names(), origin=f"Places365 {arch} file {path}")


SOURCE_KINDS.add(SourceKindInfo(
    name="places365", build=_build_places365, title="Places365 (CSAIL)",
    description="a Places365 scene network from the CSAIL checkpoints (resnet18, resnet50, densenet161, "
                "wideresnet18), read from the Places365 folder or a path",
    required={"arch": "a places365 source needs the architecture: resnet18, resnet50, densenet161 or wideresnet18"},
    keys=("kind", "arch", "path", "input_size", "mean", "std", "name"),
    path_is="file", file_filter="Places365 checkpoints (*_places365.pth.tar *.pth.tar);;All files (*)"))
