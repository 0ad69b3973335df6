"""Feature taps: the outputs of named submodules of a network, gathered by forward hooks.

A feature-based method (a FitNets hint, attention transfer) needs intermediate features of
the target and of the frozen sources, not only their logits. ``FeatureTaps`` hooks the
submodules named (``model.named_modules()`` names, e.g. ``layer3`` or ``stage2.1``) and,
inside ``capture()``, records what each returns, so the networks' own forward code stays
untouched and runs once (torchdistill's ``ForwardHookManager`` idea)::

    taps = FeatureTaps(net.backbone, ["layer2", "layer3"])
    with taps.capture() as features:
        logits = net.backbone(images)
    hint = features["layer3"]          # still in the autograd graph
    taps.close()                       # removes the hooks

Why it is shaped this way:

* Hooks record only inside ``capture()``: evaluation, export and the probing passes of
  other code run the same modules, and must neither pay for nor keep a feature map.
* Nothing here reads a value back to the host; a tap costs a dict store per module call.
* Each capture fills a fresh dict and the taps forget it on exit, so a step's features
  live exactly as long as the caller holds them (no activation kept until the next step).
* Sources run under ``torch.inference_mode`` (and maybe half-precision autocast); their
  tensors cannot take part in autograd. When the capture ends (outside that mode), each
  inference tensor is replaced by a normal float32 copy, so a loss may use it as a target.
* A tapped module followed by an in-place op (``ReLU(inplace=True)``) is seen after that op,
  as with any forward hook; stage outputs (``stage_names``) are not affected in practice.

Which modules to tap by default: ``stage_names`` reuses ``models.introspect.probe_layout``,
which finds each stage's last module generically, on any backbone.
"""

from __future__ import annotations

import contextlib
import difflib
from functools import partial
from typing import Any, Iterator, Mapping, Sequence

import torch
import torch.nn as nn

from .errors import UserInputError
from .models.introspect import probe_layout

__all__ = ["FeatureTaps", "feature_shapes", "stage_names", "untappable_reason"]


def untappable_reason(model: nn.Module) -> str | None:
    """Why forward hooks cannot see inside ``model`` (None when they can): a TorchScript
    program ignores hooks added after scripting, and a ``torch.export`` program has its
    submodules inlined into one graph."""
    for module in model.modules():
        if isinstance(module, torch.jit.ScriptModule):
            return "it is a TorchScript program, whose layers cannot be hooked"
        if isinstance(module, torch.fx.GraphModule):
            return "it is a compiled (torch.export) program, whose layers are fused into one graph"
    return None


def _first_tensor(output: Any) -> torch.Tensor | None:
    """A module's output, or the first tensor of a tuple/list output (e.g. an RNN's)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((o for o in output if isinstance(o, torch.Tensor)), None)
    return None


class FeatureTaps:
    """Forward hooks on the submodules of ``model`` named in ``names``; see the module doc.

    ``owner`` names the network in error messages (``"the target"``, ``"source 'places'"``)."""

    def __init__(self, model: nn.Module, names: Sequence[str], owner: str = "the network"):
        reason = untappable_reason(model)
        if reason is not None:
            raise UserInputError(f"cannot tap the features of {owner}: {reason}")
        modules = dict(model.named_modules())
        for name in names:
            if name not in modules or name == "":
                close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UserInputError(f"{owner} has no layer named {name!r}{hint}")
        self.names: tuple[str, ...] = tuple(dict.fromkeys(names))  # each module hooked once
        self._record: dict[str, torch.Tensor] | None = None
        self._handles = [modules[name].register_forward_hook(partial(self._keep, name)) for name in self.names]

    def _keep(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        if self._record is not None:
            tensor = _first_tensor(output)
            if tensor is not None:
                self._record[name] = tensor  # a module called twice per forward: its last call counts

    @contextlib.contextmanager
    def capture(self) -> Iterator[dict[str, torch.Tensor]]:
        """Record the tapped outputs of every forward inside the block into the dict yielded."""
        if not self._handles:
            raise RuntimeError("these feature taps are closed")
        record: dict[str, torch.Tensor] = {}
        self._record = record
        try:
            yield record
        finally:
            self._record = None
            if not torch.is_inference_mode_enabled():
                for name, tensor in record.items():
                    if tensor.is_inference():  # a source's: usable as a loss target only as a normal copy
                        record[name] = tensor.to(torch.float32, copy=True)

    @property
    def closed(self) -> bool:
        return not self._handles

    def close(self) -> None:
        """Remove every hook (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._record = None

    def __enter__(self) -> "FeatureTaps":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stage_names(model: nn.Module, input_size: int) -> tuple[str, ...]:
    """The module whose output is each stage of ``model`` (one per spatial resolution, in
    forward order), found by one probing forward pass (``models.introspect``)."""
    return probe_layout(model, input_size).stage_modules


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def feature_shapes(model: nn.Module, names: Sequence[str], input_size: int,
                   owner: str = "the network") -> Mapping[str, tuple[int, ...]]:
    """Shape (without the batch dimension) of each named module's output for square inputs
    of side ``input_size``: one forward pass on zeros in eval mode, so BatchNorm statistics
    do not move; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with FeatureTaps(model, names, owner) as taps, taps.capture() as record:
            model(torch.zeros(2, 3, input_size, input_size, device=_device_of(model)))
    finally:
        model.train(was_training)
    missing = [name for name in names if name not in record]
    if missing:
        raise UserInputError(f"{owner}: layer {missing[0]!r} does not return a tensor in a forward pass")
    return {name: tuple(record[name].shape[1:]) for name in names}
