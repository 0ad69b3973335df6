"""Find a backbone's stages and its penultimate feature without per-architecture code.

SSKT's claim is that it works for any network, so the heads must attach to any
network. One probing forward pass with hooks on every module records who
produced which tensor; walking back from the logits gives the trunk (the chain
of outermost modules the data flows through), and modules on the trunk that
change the spatial size are opened up until every resolution has its own last
module. A stage is the last trunk module at each resolution; the penultimate
feature is the input of the last ``nn.Linear``.

Video networks (clips [B, 3, T, H, W]) are probed the same way: a resolution is the spatial
size (H, W) of a 5-D feature map, so a block that subsamples space and time in two steps (the
(2+1)D convolutions of R(2+1)D) still makes one stage, and time-only subsampling makes none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class BackboneLayout:
    stage_modules: tuple[str, ...]  # module names whose outputs are the stages, in forward order
    stage_channels: tuple[int, ...]
    stage_sizes: tuple[tuple[int, int], ...]  # spatial size of each stage at the probe's input size
    classifier: str | None  # the final nn.Linear; its input is the penultimate feature
    feature_dim: int  # width of the penultimate feature (or of the last stage when there is no Linear)
    stage_rank: int = 4  # dimensions of the stage outputs: 4 for images, 5 for clips [B, C, T, H, W]


@dataclass
class _Call:
    name: str
    module: nn.Module
    start: int
    end: int = -1
    input: torch.Tensor | None = None
    output: torch.Tensor | None = None


_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)


def _spatial(t: torch.Tensor | None) -> tuple[int, int] | None:
    """(H, W) of an image feature map [B, C, H, W] or a clip feature map [B, C, T, H, W]."""
    return tuple(t.shape[-2:]) if isinstance(t, torch.Tensor) and t.dim() in (4, 5) else None


def probe_input(input_size: int, clip_len: int = 0, batch: int = 2,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Zeros shaped like what the network takes: images [batch, 3, S, S], or clips
    [batch, 3, clip_len, S, S] when ``clip_len`` is set."""
    shape = (batch, 3, clip_len, input_size, input_size) if clip_len else (batch, 3, input_size, input_size)
    return torch.zeros(shape, device=device)


class _Recorder:
    def __init__(self, model: nn.Module):
        self.calls: list[_Call] = []
        self.clock = 0
        self.handles = []
        self.open: dict[int, list[_Call]] = {}
        for name, module in model.named_modules():
            if module is model:
                continue
            self.handles.append(module.register_forward_pre_hook(self._pre(name)))
            self.handles.append(module.register_forward_hook(self._post()))

    def _pre(self, name: str):
        def hook(module, args):
            call = _Call(name, module, self.clock)
            self.clock += 1
            call.input = args[0] if args and isinstance(args[0], torch.Tensor) else None
            self.open.setdefault(id(module), []).append(call)
            self.calls.append(call)

        return hook

    def _post(self):
        def hook(module, args, output):
            call = self.open[id(module)].pop()
            call.end = self.clock
            self.clock += 1
            call.output = output if isinstance(output, torch.Tensor) else None

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _producer(calls: list[_Call], tensor: torch.Tensor, lo: int, hi: int, before: int) -> _Call | None:
    """The outermost call inside (lo, hi) that finished before ``before`` and produced ``tensor``;
    when no module produced it (a functional op did), the outermost call that finished last before."""
    inside = [c for c in calls if c.start > lo and c.end < hi and c.end < before]
    if not inside:
        return None
    exact = [c for c in inside if c.output is tensor]
    pool = exact or inside
    last = max(pool, key=lambda c: c.end)
    # climb to the outermost enclosing call that is still inside the window
    enclosing = [c for c in inside if c.start <= last.start and c.end >= last.end]
    return min(enclosing, key=lambda c: c.start)


def _chain(calls: list[_Call], lo: int, hi: int, output: torch.Tensor, stop_at: torch.Tensor | None) -> list[_Call]:
    chain: list[_Call] = []
    tensor, before = output, hi
    for _ in range(len(calls)):
        call = _producer(calls, tensor, lo, hi, before)
        if call is None or call in chain:
            break
        chain.append(call)
        if call.input is None or call.input is stop_at:
            break
        tensor, before = call.input, call.start
    chain.reverse()
    return chain


def _expand(calls: list[_Call], chain: list[_Call], depth: int = 0) -> list[_Call]:
    out: list[_Call] = []
    for call in chain:
        changes_size = _spatial(call.input) is not None and _spatial(call.input) != _spatial(call.output)
        if changes_size and depth < 12 and call.output is not None:
            inner = _chain(calls, call.start, call.end, call.output, call.input)
            if inner and inner != [call]:
                out.extend(_expand(calls, inner, depth + 1))
                continue
        out.append(call)
    return out


@torch.no_grad()
def probe_layout(model: nn.Module, input_size: int, max_stages: int = 4, clip_len: int = 0) -> BackboneLayout:
    """Run one forward pass on zeros and read the layout off it (the model's mode is restored);
    ``clip_len`` > 0 probes a video network with clips of that many frames."""
    was_training = model.training
    model.eval()
    recorder = _Recorder(model)
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        logits = model(probe_input(input_size, clip_len, device=device))
    finally:
        recorder.remove()
        model.train(was_training)
    calls = recorder.calls
    linears = [c for c in calls if isinstance(c.module, nn.Linear)]
    classifier = max(linears, key=lambda c: c.end) if linears else None

    trunk = _expand(calls, _chain(calls, -1, recorder.clock + 1, logits, None))
    # Per resolution, the last of the shallowest trunk modules: opening a strided
    # residual block exposes its inner branch (e.g. a bottleneck's first 1x1 conv at the
    # old resolution), which is deeper than the stage's real last block.
    last_at: dict[tuple[int, int], _Call] = {}
    order: list[tuple[int, int]] = []
    for call in trunk:
        size = _spatial(call.output)
        if size is None or isinstance(call.module, _GLOBAL_POOLS):
            continue
        if size not in last_at:
            order.append(size)
            last_at[size] = call
        elif call.name.count(".") <= last_at[size].name.count("."):
            last_at[size] = call
    stages = [last_at[size] for size in order][-max_stages:]
    if not stages:
        raise ValueError(f"{type(model).__name__}: no 4-D or 5-D feature maps found; cannot attach a transfer module")
    if classifier is not None and classifier.input is not None:
        feature_dim = classifier.input.shape[-1]
    else:
        feature_dim = stages[-1].output.shape[1]
    return BackboneLayout(
        stage_modules=tuple(c.name for c in stages),
        stage_channels=tuple(int(c.output.shape[1]) for c in stages),
        stage_sizes=tuple(_spatial(c.output) for c in stages),
        classifier=classifier.name if classifier is not None else None,
        feature_dim=int(feature_dim),
        stage_rank=int(stages[-1].output.dim()),
    )
