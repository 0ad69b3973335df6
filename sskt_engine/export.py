"""Export a run's trained network to files other tools load, each verified before it is published.

Formats:

* ``pt``: ``{"format", "meta", "state_dict"[, "aux_heads"]}``, loadable with
  ``torch.load(weights_only=True)``; the state_dict is the bare backbone's.
* ``safetensors``: the backbone's tensors (plus ``aux_heads.*`` when kept); the metadata
  as JSON strings in the header, one key per field.
* ``torchscript``: a traced module for plain ``torch.jit.load``; the metadata as JSON in
  the archive's extra file ``sskt_meta.json``.
* ``onnx``: opset 17, dynamic batch dimension, input ``images``, outputs ``logits``
  (and ``aux_0``, ... when heads are kept); the metadata as JSON in the model's
  ``metadata_props`` under ``sskt_meta``. Written with torch's TorchScript-based
  exporter (``dynamo=False``): the dynamo exporter needs onnxscript, which the
  ``onnx`` extra does not install. Needs the ``onnx`` package.

Every export is written to a hidden temporary file beside the destination, loaded
back the way another tool would load it, run on a batch, and compared with the
in-memory network; only when the largest absolute difference is within
``TOLERANCE`` does it replace the destination (``os.replace``). A failure at any
point (while writing, converting or verifying) removes the temporary file and
leaves whatever was at the destination before untouched.

Preprocessing, for anyone using the files: RGB, shorter side resized to
``input_size`` then centre-cropped to a square, pixels scaled to [0, 1], then
``(x - mean) / std`` per channel; the network outputs logits (softmax for
single-label models, sigmoid per class when ``multi_label`` is true).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from . import __version__
from .atomic import _publishable
from .errors import UserInputError
from .export_target import locked_if_in_a_run, refuse_run_files
from .model_files import (EXPORTED_PROGRAM, META_FILE, TORCHSCRIPT, checked_class_count, first_line,
                          load_compiled, read_compiled, read_safetensors, read_tensor_file)
from .model_files import detect_format as _file_format
from .network_weights import build_any_architecture
from .run_checkpoint import CHECKPOINT_FORMAT, RunCheckpoint
from .runs import RunFolder, find_run
from .stale_files import TempGuard, remove_export_temporaries

TOLERANCE = 1e-4
EXPORT_FORMAT = "sskt-studio-model"  # the "format" field of every exported file's metadata
TORCHSCRIPT_META = META_FILE  # extra file inside a TorchScript archive
ONNX_META = "sskt_meta"  # key in an ONNX model's metadata_props
ONNX_OPSET = 17
PROBE_BATCH = 4  # images in the verification batch
TRACE_BATCH = 2  # images the TorchScript/ONNX graphs are traced with (differs: checks the dynamic batch)
FORMATS = ("pt", "safetensors", "torchscript", "onnx")
DEFAULT_SUFFIX = {"pt": ".pt", "safetensors": ".safetensors", "torchscript": ".torchscript.pt", "onnx": ".onnx"}
PREPROCESS = {"color": "RGB", "resize": "shorter side to input_size, then center crop to input_size x input_size",
              "scale": "pixel / 255", "normalize": "(x - mean) / std per channel"}

CLIP_PREPROCESS = ("clip_len consecutive frames, each preprocessed as an image, stacked as "
                   "[batch, 3, clip_len, input_size, input_size]")

ProgressCallback = Callable[[str, float], None]  # (stage sentence, fraction done in [0, 1])


class ExportFailed(Exception):
    """The export could not be produced or did not verify; nothing was published.

    Not the user's input at fault (that is ``UserInputError``): the CLI exits 1.
    ``max_abs_diff`` is set when verification measured a difference over the limit."""

    def __init__(self, message: str, max_abs_diff: float | None = None):
        super().__init__(message)
        self.max_abs_diff = max_abs_diff


@dataclass(frozen=True)
class ExportResult:
    """What an export produced. ``max_abs_diff`` is None only for ONNX without onnxruntime,
    when the file was checked structurally (``verification`` says how it was checked)."""

    path: Path
    format: str
    max_abs_diff: float | None
    metadata: dict[str, Any]
    verification: str  # e.g. "torch.jit.load, batch of 4" or "onnx.checker only: ..."
    size_bytes: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verified(self) -> bool:
        return self.max_abs_diff is not None and self.max_abs_diff <= TOLERANCE

    def diff_text(self) -> str:
        """The verification figure as a person reads it, e.g. ``3.0e-08``."""
        return "not measured" if self.max_abs_diff is None else f"{self.max_abs_diff:.1e}"


# ----------------------------------------------------------------------------- the network of a run

def load_run_network(folder: RunFolder, checkpoint: str = "best", network: str | None = None,
                     keep_aux_heads: bool = False) -> tuple[nn.Module, dict[str, Any], dict[str, torch.Tensor]]:
    """Rebuild the trained backbone of a run (optionally with its auxiliary heads' weights).

    Returns (backbone in eval mode, metadata, aux-head tensors keyed ``aux_heads.*``; empty
    unless ``keep_aux_heads``). With aux heads the metadata gains ``aux_heads``: what
    ``aux_head_network`` needs to rebuild them."""
    if checkpoint not in ("best", "last"):
        raise UserInputError(f"checkpoint must be best or last, not {checkpoint!r}")
    path = folder.checkpoint_path(checkpoint)
    if not path.is_file():
        raise UserInputError(f"run {folder.path.name} has no {checkpoint} checkpoint (has it finished an epoch?)")
    state = RunCheckpoint.read(path, f"the {checkpoint} checkpoint of run {folder.path.name}")
    meta = state.meta.to_dict()
    network = network or state.meta.export_network
    if network not in state.models:
        raise UserInputError(f"run {folder.path.name} has no network {network!r}; it has {', '.join(state.models)}")
    weights = state.models[network]
    arch = state.meta.arch_of(network)
    backbone = build_any_architecture(arch, state.meta.num_classes)
    backbone.load_state_dict(state.backbone_weights(network))
    backbone.eval()
    aux = {k: v for k, v in weights.items() if k.startswith("aux_heads.")} if keep_aux_heads else {}
    meta.update({"arch": arch, "network": network, "checkpoint": checkpoint, "epoch": state.epoch,
                 "format": EXPORT_FORMAT, "app_version": __version__, "run": folder.path.name})
    meta.pop("aux_heads", None)
    if aux:
        meta["aux_heads"] = aux_head_spec(aux, meta.get("sources") or [])
    return backbone, meta, aux


def aux_head_spec(aux: dict[str, torch.Tensor], sources: list[dict[str, Any]]) -> dict[str, Any]:
    """Describe auxiliary heads from their weights alone: kind, width, class count per head,
    and the source each one learnt (by name, when the run's sources match)."""
    count = 1 + max(int(k.split(".")[1]) for k in aux)
    classes = [int(aux[f"aux_heads.{i}.fc.weight"].shape[0]) for i in range(count)]
    kind = "transfer_module" if any(".branches." in k for k in aux) else "linear"
    width = int(aux["aux_heads.0.fc.weight"].shape[1]) if kind == "transfer_module" else 0
    names = [str(s.get("name", f"source {i}")) for i, s in enumerate(sources)]
    if len(names) != count:
        names = [f"source {i}" for i in range(count)]
    return {"kind": kind, "width": width, "classes": classes, "names": names}


class LogitsAndAuxHeads(nn.Module):
    """The backbone plus its auxiliary heads, returning ``(logits, aux_0, aux_1, ...)``:
    a plain tuple, so it traces to TorchScript and ONNX."""

    def __init__(self, target: nn.Module):
        super().__init__()
        self.target = target

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.target(x)
        return (out.logits, *out.aux_logits)


def aux_head_network(backbone: nn.Module, spec: dict[str, Any], aux: dict[str, torch.Tensor],
                     input_size: int, clip_len: int = 0) -> LogitsAndAuxHeads:
    """Rebuild the target network (backbone + heads, hooks included) and load the heads' weights."""
    from .models.target import TargetNetwork

    target = TargetNetwork(backbone, int(input_size), [int(c) for c in spec["classes"]], spec["kind"],
                           int(spec.get("width", 0)), clip_len=int(clip_len))
    missing, unexpected = target.aux_heads.load_state_dict(
        {k[len("aux_heads."):]: v for k, v in aux.items()}, strict=False)
    if missing or unexpected:
        raise UserInputError(f"the auxiliary heads' tensors do not match their description "
                             f"({len(missing)} missing, {len(unexpected)} unexpected)")
    return LogitsAndAuxHeads(target).eval()


def _public_meta(meta: dict[str, Any], fmt: str) -> dict[str, Any]:
    keys = ("format", "app_version", "arch", "num_classes", "class_names", "input_size", "mean", "std", "method",
            "sources", "val", "network", "checkpoint", "epoch", "run", "multi_label", "aux_heads", "clip_len")
    public = {k: meta[k] for k in keys if k in meta}
    public["export_format"] = fmt
    public["preprocess"] = dict(PREPROCESS)
    if meta.get("clip_len"):  # a video network: its input is a clip of frames, each preprocessed as above
        public["preprocess"]["clip"] = CLIP_PREPROCESS
    public["outputs"] = ["logits"] + [f"aux_{i}" for i in range(len(meta.get("aux_heads", {}).get("classes", [])))]
    return public


# ----------------------------------------------------------------------------- writers

def _outputs(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


@dataclass
class _Exportable:
    """Everything a writer needs: the bare backbone, the module to trace (backbone, or
    backbone + heads), the heads' tensors, the metadata, an example input."""

    backbone: nn.Module
    module: nn.Module
    aux: dict[str, torch.Tensor]
    meta: dict[str, Any]
    example: torch.Tensor


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """torch 2.14 marks torch.jit (and the ONNX exporter built on it) as deprecated on every
    call; the files they write still load, so the warnings would only alarm people."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=Warning)
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export", category=Warning)
        warnings.filterwarnings("ignore", message=r".*feature will be removed", category=Warning)
        warnings.filterwarnings("ignore", message=r"Constant folding", category=UserWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _write_pt(tmp: Path, item: _Exportable) -> None:
    body: dict[str, Any] = {"format": EXPORT_FORMAT, "meta": item.meta, "state_dict": item.backbone.state_dict()}
    if item.aux:
        body["aux_heads"] = item.aux
    torch.save(body, tmp)


def _write_safetensors(tmp: Path, item: _Exportable) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in item.backbone.state_dict().items()}
    tensors.update({k: v.detach().contiguous() for k, v in item.aux.items()})
    header = {k: json.dumps(v) for k, v in item.meta.items()}
    save_file(tensors, str(tmp), metadata=header)


def _write_torchscript(tmp: Path, item: _Exportable) -> None:
    with _quiet_jit(), torch.no_grad():
        traced = torch.jit.trace(item.module, item.example, check_trace=False)
        torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_META: json.dumps(item.meta)})


def _onnx_module():
    try:
        import onnx
    except ImportError:
        from .export_formats import ONNX_INSTALL

        raise UserInputError(f"ONNX export needs the onnx package, which this installation lacks; install it with "
                             f"{ONNX_INSTALL}") from None
    return onnx


def _write_onnx(tmp: Path, item: _Exportable) -> None:
    onnx = _onnx_module()
    names = item.meta["outputs"]
    with _quiet_jit(), torch.no_grad():
        torch.onnx.export(item.module, (item.example,), str(tmp), input_names=["images"], output_names=names,
                          dynamic_axes={name: {0: "batch"} for name in ["images", *names]},
                          opset_version=ONNX_OPSET, dynamo=False)
    model = onnx.load(str(tmp))
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_META, json.dumps(item.meta)
    model.producer_name = "SSKT Studio"
    model.producer_version = __version__
    onnx.save(model, str(tmp))


WRITERS: dict[str, Callable[[Path, _Exportable], None]] = {
    "pt": _write_pt, "safetensors": _write_safetensors, "torchscript": _write_torchscript, "onnx": _write_onnx,
}


# ----------------------------------------------------------------------------- reading exported files

@dataclass
class ExportedModel:
    """An exported file loaded back: ``run(x)`` gives every output (logits first) as tensors."""

    path: Path
    format: str
    metadata: dict[str, Any]
    run: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    module: nn.Module | None = None  # the torch module (pt, safetensors, torchscript), None for ONNX

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


def detect_format(path: str | os.PathLike) -> str:
    """pt, safetensors, torchscript or onnx, from the file's first bytes (``model_files.detect_format``)."""
    path = Path(path)
    fmt = _file_format(path)
    if fmt == EXPORTED_PROGRAM:
        raise UserInputError(f"{path.name} is a torch.export program, not a model file exported by SSKT Studio; "
                             "use it as a compiled source instead")
    if fmt is None:
        raise UserInputError(f"{path.name} is not a model file exported by SSKT Studio (not a PyTorch, TorchScript, "
                             "safetensors or ONNX file)")
    return fmt


def _check_meta(meta: Any, path: Path, container: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(meta, dict) and meta.get("format") == EXPORT_FORMAT:
        for key in ("arch", "num_classes", "input_size", "mean", "std"):
            if key not in meta:
                raise UserInputError(f"{path.name} was exported by SSKT Studio but its metadata lacks {key!r}")
        _check_meta_values(meta, path)
        return meta
    if CHECKPOINT_FORMAT in (isinstance(meta, dict) and meta.get("format"), (container or {}).get("format")):
        raise UserInputError(f"{path.name} is a training checkpoint of SSKT Studio, not an exported model; "
                             "export its run with sskt export first")
    raise UserInputError(f"{path.name} was not exported by SSKT Studio (it has no SSKT Studio model metadata)")


def _check_meta_values(meta: dict[str, Any], path: Path) -> None:
    """Refuse impossible metadata before it sizes a network (a huge class count would allocate gigabytes)."""
    if checked_class_count(meta["num_classes"], path.name) is None:
        raise UserInputError(f"{path.name}: its metadata gives no class count")
    size = meta["input_size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 4096:
        raise UserInputError(f"{path.name}: its metadata gives an impossible input size ({str(size)[:40]})")
    for key in ("mean", "std"):
        values = meta[key]
        if (not isinstance(values, list) or len(values) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
                or key == "std" and not all(v > 0 for v in values)):
            raise UserInputError(f"{path.name}: its metadata gives an impossible {key} ({str(values)[:60]})")
    if not isinstance(meta["arch"], str):
        raise UserInputError(f"{path.name}: its metadata names no architecture")
    clip = meta.get("clip_len", 0)
    if isinstance(clip, bool) or not isinstance(clip, int) or not 0 <= clip <= 4096:
        raise UserInputError(f"{path.name}: its metadata gives an impossible clip length ({str(clip)[:40]})")


def clip_length(meta: dict[str, Any]) -> int:
    """Frames per clip a model file's network takes; 0 for an image network."""
    return int(meta.get("clip_len") or 0)


def _load_state_dict_file(path: Path, fmt: str, with_aux_heads: bool) -> ExportedModel:
    if fmt == "safetensors":
        tensors, meta = read_safetensors(path)
        meta = _check_meta(meta, path)
        state = {k: v for k, v in tensors.items() if not k.startswith("aux_heads.")}
        aux = {k: v for k, v in tensors.items() if k.startswith("aux_heads.")}
    else:
        obj, _ = read_tensor_file(path)
        meta = _check_meta(obj.get("meta"), path, obj)
        state = obj.get("state_dict") or {}
        aux = obj.get("aux_heads") or {}
    backbone = build_any_architecture(meta["arch"], int(meta["num_classes"]))
    try:
        backbone.load_state_dict(state)
    except RuntimeError as exc:
        raise UserInputError(f"{path.name} does not match its own metadata ({first_line(exc)})") from None
    backbone.eval()
    module: nn.Module = backbone
    if with_aux_heads and aux and "aux_heads" in meta:
        module = aux_head_network(backbone, meta["aux_heads"], aux, int(meta["input_size"]), clip_length(meta))

    @torch.no_grad()
    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _outputs(module(x))

    return ExportedModel(path, fmt, meta, run, module)


def _load_torchscript(path: Path) -> ExportedModel:
    # TorchScript is code: the same checks as a compiled source gets, on the bytes then loaded
    file = read_compiled(path, expect=TORCHSCRIPT)
    try:
        with _quiet_jit():
            module = load_compiled(file)
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not a usable TorchScript model
        raise UserInputError(f"{path.name} is not a loadable TorchScript file ({first_line(exc)})") from None
    raw = (file.metadata_text() or b"").decode("utf-8", "replace")
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    meta = _check_meta(meta, path)
    module.eval()

    @torch.no_grad()
    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _outputs(module(x))

    return ExportedModel(path, "torchscript", meta, run, module)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _load_onnx(path: Path) -> ExportedModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserInputError("running an ONNX model needs onnxruntime; install it with "
                             "pip install 'sskt-studio[onnx]' (or pip install onnxruntime)") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise UserInputError(f"{path.name} is not a loadable ONNX model ({first_line(exc)})") from None
    raw = session.get_modelmeta().custom_metadata_map.get(ONNX_META)
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    meta = _check_meta(meta, path)
    input_name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = session.run(None, {input_name: x.detach().cpu().float().numpy()})
        return tuple(torch.from_numpy(o) for o in outs)

    return ExportedModel(path, "onnx", meta, run, None)


def load_exported(path: str | os.PathLike, fmt: str | None = None, with_aux_heads: bool = False) -> ExportedModel:
    """Load a file exported by this app, in any format, the way another tool would (no run folder).

    ``with_aux_heads`` (pt, safetensors) rebuilds the kept auxiliary heads too, so ``run``
    returns ``(logits, aux_0, ...)``; TorchScript and ONNX files return whatever they were
    exported with. Raises ``UserInputError`` for anything that is not such a file."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt in ("pt", "safetensors"):
        return _load_state_dict_file(path, fmt, with_aux_heads)
    if fmt == "torchscript":
        return _load_torchscript(path)
    if fmt == "onnx":
        return _load_onnx(path)
    raise UserInputError(f"unknown model format {fmt!r}; use one of {', '.join(FORMATS)}")


def read_model_file(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Load a ``.pt`` or ``.safetensors`` file exported by this app: (backbone in eval mode, metadata)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt not in ("pt", "safetensors"):
        raise UserInputError(f"{path.name} is a {fmt} file; a PyTorch state_dict (.pt) or .safetensors "
                             "export is needed here")
    model = _load_state_dict_file(path, fmt, with_aux_heads=False)
    return model.module, model.metadata


# ----------------------------------------------------------------------------- verification

def _probe_batch(meta: dict[str, Any]) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    side = int(meta["input_size"])
    frames = (clip_length(meta),) if clip_length(meta) else ()  # clips: [batch, 3, T, side, side]
    return torch.randn(PROBE_BATCH, 3, *frames, side, side, generator=generator)


def _max_abs_diff(got: tuple[torch.Tensor, ...], expected: tuple[torch.Tensor, ...]) -> float:
    if len(got) != len(expected):
        raise ExportFailed(f"the exported file gives {len(got)} outputs where the network gives {len(expected)}")
    diff = 0.0
    for g, e in zip(got, expected):
        if tuple(g.shape) != tuple(e.shape):
            raise ExportFailed(f"the exported file gives outputs of shape {tuple(g.shape)} where the network "
                               f"gives {tuple(e.shape)}")
        d = (g.detach().float() - e.detach().float()).abs().max()
        diff = max(diff, float("inf") if not torch.isfinite(d) else float(d))
    return diff


def verify_export(path: Path, fmt: str, x: torch.Tensor,
                  expected: tuple[torch.Tensor, ...] | torch.Tensor) -> tuple[float | None, str]:
    """Load the written file the way another tool would, run it on ``x``, return (the largest
    absolute difference from ``expected``, how it was checked). ONNX without onnxruntime
    is checked structurally only: (None, reason)."""
    expected = _outputs(expected)
    if fmt == "onnx" and not onnxruntime_available():
        return None, _check_onnx_structure(path, x.shape[0], len(expected))
    model = load_exported(path, fmt, with_aux_heads=len(expected) > 1)
    how = {"pt": "torch.load(weights_only=True)", "safetensors": "safetensors", "torchscript": "torch.jit.load",
           "onnx": "onnxruntime"}[fmt]
    return _max_abs_diff(model.run(x), expected), f"{how}, batch of {x.shape[0]}"


def _check_onnx_structure(path: Path, batch: int, outputs: int) -> str:
    onnx = _onnx_module()
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for an invalid model
        raise ExportFailed(f"the exported ONNX file is not a valid model ({first_line(exc)})") from None
    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if not dims or not dims[0].dim_param:
        raise ExportFailed("the exported ONNX file has a fixed batch dimension")
    if len(model.graph.output) != outputs:
        raise ExportFailed(f"the exported ONNX file has {len(model.graph.output)} outputs, not {outputs}")
    return "onnx.checker only: outputs not compared because onnxruntime is not installed"


# ----------------------------------------------------------------------------- the export

def _resolve_output(output: str | os.PathLike, folder: RunFolder, fmt: str) -> Path:
    text = os.fspath(output)
    if not text.strip():
        raise UserInputError("no output path given")
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) and not path.is_dir():
        raise UserInputError(f"cannot write into {text}: that folder does not exist")
    if path.is_dir():
        path = path / f"{folder.path.name}{DEFAULT_SUFFIX[fmt]}"
    parent = path.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise UserInputError(f"cannot write {path}: {ancestor} is a file, not a folder")
            break
    if not parent.is_dir():
        raise UserInputError(f"cannot write {path}: folder {parent} does not exist")
    if not _folder_writable(parent):
        raise UserInputError(f"cannot write {path}: folder {parent} is not writable")
    if path.exists() and not path.is_file():
        raise UserInputError(f"cannot write {path}: something other than a file is there")
    refuse_run_files(path)
    return path


def _folder_writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _unwritable(path: Path, exc: OSError) -> UserInputError:
    reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
    return UserInputError(f"cannot write {path}: folder {path.parent} is not writable ({reason})")


def _stage_and_publish(output: Path, write: Callable[[Path], None],
                       verify: Callable[[Path], tuple[float | None, str]]) -> tuple[float | None, str]:
    """Write to a hidden temporary file beside ``output``, verify it, then ``os.replace``.
    Any failure removes the temporary file; ``output`` is replaced only by a verified file."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    except (PermissionError, OSError) as exc:
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _unwritable(output, exc) from None
        raise ExportFailed(f"cannot create a file in {output.parent} ({exc.strerror or exc})") from None
    guard = TempGuard(fd)  # another export's cleanup of this folder leaves a locked temporary alone
    tmp = Path(name)
    try:
        try:
            write(tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _unwritable(output, exc) from None
            if exc.errno == errno.ENOSPC:
                raise ExportFailed(f"no space left on the device holding {output.parent}; {output.name} was "
                                   "not written") from None
            raise ExportFailed(f"writing {output} failed ({exc.strerror or first_line(exc)}); it was not "
                               "written") from None
        result = verify(tmp)
        _publishable(tmp)
        if os.name == "nt":  # pragma: no cover - Windows cannot rename a file that is open
            guard.close()
        os.replace(tmp, output)
        return result
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        guard.close()


def _prepare(folder: RunFolder, fmt: str, checkpoint: str, keep_aux_heads: bool,
             network: str | None) -> tuple[_Exportable, list[str]]:
    backbone, meta, aux = load_run_network(folder, checkpoint, network, keep_aux_heads)
    notes = []
    if keep_aux_heads and not aux:
        notes.append(f"network {meta['network']} has no auxiliary heads; exported without them")
    meta = _public_meta(meta, fmt)
    module: nn.Module = backbone
    if aux:
        module = aux_head_network(backbone, meta["aux_heads"], aux, int(meta["input_size"]), clip_length(meta))
    example = _probe_batch(meta)[:TRACE_BATCH]
    return _Exportable(backbone, module, aux, meta, example), notes


def export_run(run_dir: str | os.PathLike, fmt: str, output: str | os.PathLike, checkpoint: str = "best",
               keep_aux_heads: bool = False, network: str | None = None, *,
               runs_root: str | os.PathLike | None = None,
               on_progress: ProgressCallback | None = None) -> ExportResult:
    """Export one network of a run to ``output`` (a file path, or a folder to name the file in).

    Raises ``UserInputError`` for bad input (unknown run, format or network, unwritable
    folder, missing onnx package) and ``ExportFailed`` when the file could not be produced
    or computes more than ``TOLERANCE`` away from the trained network; in both cases
    nothing at ``output`` has changed. Safe to call from a worker thread."""
    progress = on_progress or (lambda stage, fraction: None)
    if fmt not in WRITERS:
        raise UserInputError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        _onnx_module()
    progress("loading the trained network", 0.0)
    folder = find_run(os.fspath(run_dir), runs_root)
    path = _resolve_output(output, folder, fmt)
    item, notes = _prepare(folder, fmt, checkpoint, keep_aux_heads, network)
    x = _probe_batch(item.meta)
    with torch.no_grad():
        expected = _outputs(item.module(x))

    def write(tmp: Path) -> None:
        progress(f"writing {fmt}", 0.2)
        try:
            WRITERS[fmt](tmp, item)
        except (UserInputError, ExportFailed, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - tracing/conversion errors of an architecture
            raise ExportFailed(f"writing {item.meta['arch']} as {fmt} failed ({first_line(exc)})") from None

    def verify(tmp: Path) -> tuple[float | None, str]:
        progress("loading the file back and comparing outputs", 0.7)
        try:
            diff, how = verify_export(tmp, fmt, x, expected)
        except UserInputError as exc:  # our own fresh file refused by its reader: the export is broken
            raise ExportFailed(f"the exported {fmt} file could not be loaded back ({exc}); "
                               "it was not written") from None
        if diff is not None and not diff <= TOLERANCE:
            raise ExportFailed(f"the exported {fmt} file computes outputs up to {diff:.2e} away from the trained "
                               f"network (limit {TOLERANCE:.0e}); it was not written", diff)
        return diff, how

    with locked_if_in_a_run(path):
        stale = remove_export_temporaries(path.parent)
        if stale:  # left by an export that was killed while writing
            names = ", ".join(p.name for p in stale[:3]) + (", ..." if len(stale) > 3 else "")
            notes.append(f"removed {len(stale)} unfinished export file(s) left in {path.parent} by an export that "
                         f"ended while writing ({names})")
        diff, how = _stage_and_publish(path, write, verify)
    progress("done", 1.0)
    return ExportResult(path, fmt, diff, item.meta, how, path.stat().st_size, tuple(notes))
