"""Export a run's trained network to files other tools load, each verified after writing.

Formats: ``pt`` (state_dict + metadata, loadable with ``torch.load(weights_only=True)``)
and ``safetensors`` (tensors + the same metadata as JSON strings in the header).
Every file is written atomically, loaded back, run on a batch, and compared with
the in-memory network; more than ``TOLERANCE`` apart and the export fails with the
figure and leaves no file behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from . import __version__
from .atomic import atomic_write_with
from .errors import UserInputError
from .runs import RunFolder, find_run
from .sources import build_any_architecture, read_tensor_file

TOLERANCE = 1e-4
EXPORT_FORMAT = "sskt-studio-model"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    metadata: dict[str, Any]


def load_run_network(folder: RunFolder, checkpoint: str = "best", network: str | None = None,
                     keep_aux_heads: bool = False) -> tuple[nn.Module, dict[str, Any], dict[str, torch.Tensor]]:
    """Rebuild the trained backbone of a run (optionally with its auxiliary heads' weights).

    Returns (backbone in eval mode, metadata, extra aux-head tensors)."""
    path = folder.checkpoint_path(checkpoint)
    if not path.is_file():
        raise UserInputError(f"run {folder.path.name} has no {checkpoint} checkpoint")
    state, _ = read_tensor_file(path)
    meta = dict(state.get("meta", {}))
    network = network or meta.get("export_network", "target")
    models = state.get("models", {})
    if network not in models:
        raise UserInputError(f"run {folder.path.name} has no network {network!r}; it has {', '.join(models)}")
    weights = models[network]
    arch = meta.get("networks", {}).get(network, {}).get("arch", meta.get("arch"))
    backbone = build_any_architecture(arch, int(meta["num_classes"]))
    backbone.load_state_dict({k[len("backbone."):]: v for k, v in weights.items() if k.startswith("backbone.")})
    backbone.eval()
    aux = {k: v for k, v in weights.items() if k.startswith("aux_heads.")} if keep_aux_heads else {}
    meta.update({"arch": arch, "network": network, "checkpoint": checkpoint, "epoch": int(state.get("epoch", 0)),
                 "format": EXPORT_FORMAT, "app_version": __version__, "run": folder.path.name})
    return backbone, meta, aux


def _public_meta(meta: dict[str, Any]) -> dict[str, Any]:
    keys = ("format", "app_version", "arch", "num_classes", "class_names", "input_size", "mean", "std", "method",
            "sources", "val", "network", "checkpoint", "epoch", "run", "multi_label")
    return {k: meta[k] for k in keys if k in meta}


def _probe_batch(meta: dict[str, Any]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    side = int(meta["input_size"])
    return torch.randn(4, 3, side, side, generator=generator)


def _write_pt(path: Path, model: nn.Module, meta: dict[str, Any], aux: dict[str, torch.Tensor]) -> None:
    body = {"format": EXPORT_FORMAT, "meta": meta, "state_dict": model.state_dict()}
    if aux:
        body["aux_heads"] = aux
    atomic_write_with(path, lambda tmp: torch.save(body, tmp))


def _write_safetensors(path: Path, model: nn.Module, meta: dict[str, Any], aux: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.update(aux)
    header = {k: json.dumps(v) for k, v in meta.items()}
    atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def read_model_file(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Load a ``.pt`` or ``.safetensors`` file exported by this app: (network in eval mode, metadata)."""
    path = Path(path)
    obj, header = read_tensor_file(path)
    if path.suffix == ".safetensors":
        meta = header
        state = {k: v for k, v in obj.items() if not k.startswith("aux_heads.")}
    else:
        meta = obj.get("meta", {})
        state = obj.get("state_dict", {})
    if meta.get("format") != EXPORT_FORMAT:
        raise UserInputError(f"{path.name} was not exported by SSKT Studio (it has no model metadata)")
    model = build_any_architecture(meta["arch"], int(meta["num_classes"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserInputError(f"{path.name} does not match its own metadata ({str(exc).splitlines()[0]})") from None
    return model.eval(), meta


WRITERS: dict[str, tuple[str, Callable]] = {
    "pt": (".pt", _write_pt),
    "safetensors": (".safetensors", _write_safetensors),
}


def export_run(run_dir: str | os.PathLike, fmt: str, output: str | os.PathLike, checkpoint: str = "best",
               keep_aux_heads: bool = False, network: str | None = None) -> ExportResult:
    if fmt not in WRITERS:
        raise UserInputError(f"unknown export format {fmt!r}; use {', '.join(WRITERS)}")
    folder = find_run(str(run_dir))
    model, meta, aux = load_run_network(folder, checkpoint, network, keep_aux_heads)
    meta = _public_meta(meta)
    output = Path(output).expanduser()
    if output.is_dir():
        output = output / f"{folder.path.name}{WRITERS[fmt][0]}"
    if not output.parent.is_dir():
        raise UserInputError(f"folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise UserInputError(f"folder {output.parent} is not writable")
    x = _probe_batch(meta)
    with torch.no_grad():
        expected = model(x)
    previous = output.read_bytes() if output.is_file() else None
    WRITERS[fmt][1](output, model, meta, aux)
    try:
        diff = verify_export(output, fmt, x, expected)
    except BaseException:
        _restore(output, previous)
        raise
    if diff > TOLERANCE:
        _restore(output, previous)
        raise UserInputError(f"the exported {fmt} file computes outputs up to {diff:.2e} away from the trained "
                             f"network (limit {TOLERANCE:.0e}); the export was removed")
    return ExportResult(output, fmt, diff, meta)


def _restore(output: Path, previous: bytes | None) -> None:
    if previous is None:
        output.unlink(missing_ok=True)
    else:
        from .atomic import atomic_write_bytes

        atomic_write_bytes(output, previous)


def verify_export(path: Path, fmt: str, x: torch.Tensor, expected: torch.Tensor) -> float:
    """Load the written file the way another tool would, run it, return the max |difference|."""
    if fmt in ("pt", "safetensors"):
        model, _ = read_model_file(path)
        with torch.no_grad():
            got = model(x)
    else:
        raise UserInputError(f"no verifier for format {fmt!r}")
    return float((got - expected).abs().max())
