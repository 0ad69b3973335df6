"""A network by architecture name, and weights loaded into it with errors a person can act on.

Used wherever a file names its architecture and holds weights: checkpoint and run sources,
a run's export, and the reader of exported files.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .errors import SourceError


def torchvision_classifiers() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_any_architecture(arch: str, num_classes: int) -> nn.Module:
    """A registered architecture, or any torchvision classification model by name."""
    from .models import ARCHITECTURES

    if arch in ARCHITECTURES:
        return ARCHITECTURES.get(arch).build(num_classes)
    if arch in torchvision_classifiers():
        import torchvision

        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    raise SourceError(f"unknown architecture {arch!r}; use one of this app's ({', '.join(ARCHITECTURES.keys())}) "
                      "or a torchvision classification model name")


def native_input_size(arch: str) -> int:
    from .models import ARCHITECTURES

    if arch in ARCHITECTURES:
        return int(ARCHITECTURES.get(arch).input_size)
    return 224


def native_clip_len(arch: str) -> int:
    """Frames per clip a registered video architecture was made for; 0 for image networks."""
    from .models import ARCHITECTURES

    return int(ARCHITECTURES.get(arch).clip_len) if arch in ARCHITECTURES else 0


def classifier_key(model: nn.Module) -> str | None:
    """The weight of the last linear layer: its rows are the classes."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"{names[-1]}.weight" if names else None


def load_weights_into(model: nn.Module, state: dict[str, torch.Tensor], what: str,
                      classifier: str | None = None) -> None:
    """``load_state_dict`` with errors a person can act on: class-count mismatch, wrong shapes,
    missing and unexpected keys (the first few named)."""
    expected = model.state_dict()
    if classifier and classifier in state and classifier in expected:
        got, want = state[classifier].shape[0], expected[classifier].shape[0]
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
