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
``pixel_offset``, ``class_names``, ``num_classes`` (checked against the model's output).

Trust model
-----------
Only load compiled files from people you trust, as you would a program.

* A TorchScript file *is code*: ``torch.jit.load`` compiles and runs the TorchScript held in
  the archive (a restricted, statically typed subset of Python executed by PyTorch's own
  interpreter, not by Python). It cannot import Python modules, but it can call any operator
  PyTorch has, use memory and time without bound, and any flaw in the interpreter is reachable
  from it. Before loading, every pickle inside the archive is checked opcode by opcode: only
  references to TorchScript classes compiled from the archive itself and to the few tensor and
  container builders PyTorch's C++ unpickler knows are accepted; a file referencing any other
  Python object (``os.system``, a class from some package, ...) is refused without being loaded.
  The code is also searched for the operators that touch files (``aten::save``,
  ``aten::from_file``, ``debugprims::load_tensor``); a file using them is refused. This is a
  tripwire, not a sandbox.
* A ``torch.export`` program is mostly data: a graph of PyTorch operators in JSON plus raw
  tensor bytes. Mostly: ``torch.export.load`` (the only public loader; PyTorch itself warns
  never to load untrusted files with it) resolves each node's target as *any* attribute path
  under ``torch``, ``_operator`` or ``math`` (``torch.os.system`` included), parses shape
  expressions with ``sympy.sympify`` (which evaluates Python), ``ExportedProgram.module()``
  ``exec``s the program's shape-guard code, full unpickling (``weights_only=False``) is its
  fallback for pickled weights, sample inputs and custom objects, and it loads AOTInductor
  native libraries when an archive holds them. So the archive is checked before anything is
  loaded: every node target must be an operator of ``torch.ops`` in the namespaces in
  ``_OP_NAMESPACES`` (minus the file-touching ones) or a plain arithmetic function; every shape
  expression and guard must parse (``ast``) as arithmetic over sizes and known sympy
  constructors, with no attribute access beyond ``.size()``-style calls; input/output structures
  (pytree specs) may not name enums or defaultdict factories (torch imports the module named
  there); every pickled entry must load under ``torch.load(weights_only=True)`` (tensors and
  plain containers only); custom
  (TorchBind/opaque) objects, AOTInductor/ExecuTorch payloads and pre-2.8 archives are refused.
  A program that passes runs only PyTorch operators; a file a current ``torch.export.save``
  writes for an ordinary vision network passes.
* The file is read into memory once; the checks and the load use those same bytes, so the file
  cannot change between being checked and being loaded.
"""

from __future__ import annotations

import ast
import io
import json
import math
import pickle
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .config import SourceConfig
from .errors import SourceError
from .sources import IMAGENET_MEAN, IMAGENET_STD, FrozenSource, _check_file, resolve_path

META_FILE = "sskt_meta.json"
TORCHSCRIPT = "TorchScript"
EXPORTED_PROGRAM = "torch.export"
PROBE_BATCH = 2

# Globals the TorchScript (C++) unpickler resolves itself; anything else in a TorchScript
# pickle can only be a Python object, which a genuine torch.jit.save never writes.
_TS_GLOBALS = {
    ("collections", "OrderedDict"), ("builtins", "complex"), ("torch", "device"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_sparse_tensor"),
}
# torch.export: operator namespaces a vision network's graph may use, and what is never allowed.
_OP_NAMESPACES = {"aten", "prims", "quantized", "_quantized", "quantized_decomposed", "torchvision", "higher_order"}
_BLOCKED_OPS = {("aten", "save"), ("aten", "from_file")}
_HIGHER_ORDER_OPS = {"cond", "while_loop", "map_impl", "scan", "associative_scan", "wrap_with_set_grad_enabled",
                     "wrap_with_autocast", "invoke_subgraph", "auto_functionalized", "auto_functionalized_v2",
                     "with_effects"}
_PY_OPERATORS = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "getitem", "eq",
                 "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert", "lshift", "rshift",
                 "matmul", "truth"}
_OP_TARGET = re.compile(r"^torch\.ops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?$")
_SYM_TARGET = re.compile(r"^(torch\.(sym_[a-z_]+|_sym_[a-z_]+)|math\.[a-z][a-z0-9_]*|_operator\.([a-z_]+))$")
_SIZE_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}
_GUARD_NAMES = {"L", "math", "inf", "abs", "min", "max", "int", "float", "round", "bool",
                "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless"}
_EXPR_LOWER_NAMES = {"floor", "ceiling", "sqrt", "exp", "log", "sin", "cos", "tan", "sign", "oo", "zoo", "nan",
                     "true", "false", "pi"}
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ARITHMETIC_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Load, ast.operator,
                     ast.cmpop, ast.boolop, ast.unaryop, ast.keyword)
_TS_FILE_OPS = re.compile(r"\b(?:torch|aten|ops\.aten)\s*\.\s*(?:save|from_file)\s*\(|\bload_tensor\s*\(")
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING"}
_MEMO_OPS = {"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}


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
                            num_classes=whole("num_classes", 1, 10**7), where=where)


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


# ----------------------------------------------------------------------------- the archive

@dataclass
class _Archive:
    zip: zipfile.ZipFile
    prefix: str  # the archive's top folder, with its trailing "/", or ""
    names: set[str]  # entry names without the prefix

    def read(self, name: str) -> bytes:
        return self.zip.read(self.prefix + name)


def _open_archive(data: bytes, name: str) -> _Archive:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise SourceError(f"{name} is not a model file: {_what_else(data)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SourceError(f"{name} is not a readable model file; it may be truncated ({_summary(exc)})") from None
    tops = {n.split("/", 1)[0] for n in entries}
    prefix = tops.pop() + "/" if len(tops) == 1 and all("/" in n for n in entries) else ""
    return _Archive(archive, prefix, {n[len(prefix):] for n in entries})


def _what_else(data: bytes) -> str:
    expected = "a compiled source must be a TorchScript file (torch.jit.save) or a torch.export program (.pt2)"
    if data[:1] == b"\x80":
        return f"it is a pickle (an old torch.save file), and {expected}"
    if data[8:10] == b'{"':
        return f"it looks like a safetensors file of weights (use kind checkpoint), and {expected}"
    if not data:
        return f"the file is empty, and {expected}"
    return expected


def _detect_format(archive: _Archive, name: str) -> str:
    names = archive.names
    if "archive_format" in names or any(n.startswith("models/") and n.endswith(".json") for n in names):
        return EXPORTED_PROGRAM
    if any(n.rsplit("/", 1)[-1] == "serialized_exported_program.json" for n in names):
        raise SourceError(f"{name} is a torch.export program in the pre-2.8 format, which cannot be loaded "
                          f"safely; save it again with torch.export.save from a current PyTorch")
    if "constants.pkl" in names and "data.pkl" in names and any(n.startswith("code/") for n in names):
        return TORCHSCRIPT
    if "data.pkl" in names:
        raise SourceError(f"{name} is not a model file but a torch.save file (weights or a pickled model); use "
                          f"kind checkpoint for weights, or save the model with torch.jit.save or torch.export.save")
    raise SourceError(f"{name} is not a model file: it is a zip archive, but neither a TorchScript file "
                      f"(torch.jit.save) nor a torch.export program (.pt2)")


def _pickle_globals(data: bytes) -> list[tuple[str, str] | None]:
    """Every global a pickle references, in order; None for one that cannot be resolved statically."""
    found: list[tuple[str, str] | None] = []
    recent: list[tuple[str, Any]] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            found.append((module, attr))
        elif op.name == "STACK_GLOBAL":
            if len(recent) >= 2 and recent[-1][0] in _STRING_OPS and recent[-2][0] in _STRING_OPS:
                found.append((str(recent[-2][1]), str(recent[-1][1])))
            else:
                found.append(None)
        elif op.name in ("EXT1", "EXT2", "EXT4"):
            found.append(None)
        if op.name not in _MEMO_OPS:
            recent = (recent + [(op.name, arg)])[-2:]
    return found


def _torchscript_global_allowed(ref: tuple[str, str] | None) -> bool:
    if ref is None:
        return False
    module, attr = ref
    return (module == "__torch__" or module.startswith("__torch__.") or module == "torch.jit._pickle"
            or (module == "torch" and attr.endswith("Storage")) or ref in _TS_GLOBALS)


def _check_torchscript(archive: _Archive, name: str) -> None:
    for entry in sorted(archive.names):
        if entry.startswith("code/") and entry.endswith(".py"):
            found = _TS_FILE_OPS.search(archive.read(entry).decode("utf-8", "replace"))
            if found:
                raise SourceError(f"{name} was refused: its TorchScript code reads or writes files "
                                  f"({found.group(0).rstrip('(').strip()}), which a source network never needs")
        if not entry.endswith((".pkl", ".debug_pkl")):
            continue
        try:
            refs = _pickle_globals(archive.read(entry))
        except Exception as exc:  # noqa: BLE001  pickletools raises ValueError and friends on garbage
            raise SourceError(f"{name} is not a readable TorchScript file: its {entry} is damaged "
                              f"({_summary(exc)})") from None
        for ref in refs:
            if not _torchscript_global_allowed(ref):
                what = f"{ref[0]}.{ref[1]}" if ref else "an object it hides from inspection"
                raise SourceError(f"{name} was refused: its {entry} holds pickled Python objects ({what}), which a "
                                  f"genuine torch.jit.save file never contains and which could run code here")


def check_torchscript_file(path: Path) -> None:
    """Run the TorchScript checks on a file before anything calls ``torch.jit.load`` on it
    (the predict command and export verification use this too)."""
    data = Path(path).read_bytes()
    archive = _open_archive(data, Path(path).name)
    if _detect_format(archive, Path(path).name) != TORCHSCRIPT:
        raise SourceError(f"{Path(path).name} is not a TorchScript file")
    _check_torchscript(archive, Path(path).name)


def _check_weights_only(blob: bytes, entry: str, name: str) -> None:
    try:
        torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SourceError(f"{name} was refused: its {entry} holds pickled Python objects, which could run code "
                          f"here; export the program again with plain tensor weights") from None
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{name} is not a readable torch.export program: its {entry} is damaged "
                          f"({_summary(exc)})") from None


def _target_allowed(target: str) -> bool:
    match = _OP_TARGET.match(target)
    if match:
        namespace, op = match.group(1), match.group(2)
        if any(part and part.startswith("__") for part in match.groups()):
            return False
        if namespace == "higher_order":
            return op in _HIGHER_ORDER_OPS
        return namespace in _OP_NAMESPACES and (namespace, op) not in _BLOCKED_OPS
    match = _SYM_TARGET.match(target)
    return bool(match) and (match.group(3) is None or match.group(3) in _PY_OPERATORS)


def _expression_allowed(text: str) -> bool:
    """A sympy shape expression (``srepr`` form, e.g. ``Add(Symbol('s0', integer=True), Integer(1))``):
    calls of plainly named constructors on numbers, identifiers and each other, nothing else."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                return False
        elif isinstance(node, ast.Name):
            if not (_IDENTIFIER.match(node.id) and (node.id[0].isupper() or node.id in _EXPR_LOWER_NAMES
                                                    or re.match(r"^[a-z]{1,8}\d+$", node.id))):
                return False
        elif isinstance(node, ast.Constant):
            # strings are symbol names only: sympy parses (evaluates) any string it is handed
            if isinstance(node.value, str) and not _IDENTIFIER.match(node.value):
                return False
            if not isinstance(node.value, (str, int, float, bool)):
                return False
        elif isinstance(node, ast.keyword):
            if node.arg is None or not isinstance(node.value, ast.Constant) or isinstance(node.value.value, str):
                return False
        elif not isinstance(node, _ARITHMETIC_NODES):
            return False
    return True


def _guard_allowed(code: str) -> bool:
    """A shape guard (``L['x'].size()[2] == L['x'].size()[3]``): arithmetic and comparisons over
    input sizes; ``ExportedProgram.module()`` runs it with ``exec``."""
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in _GUARD_NAMES:
                return False
        elif isinstance(node, ast.Attribute):
            on_math = isinstance(node.value, ast.Name) and node.value.id == "math"
            if not (node.attr in _SIZE_METHODS or (on_math and re.match(r"^[a-z][a-z0-9_]*$", node.attr))):
                return False
        elif isinstance(node, ast.Call):
            if node.keywords or not isinstance(node.func, (ast.Name, ast.Attribute)):
                return False
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, int, float, bool)) or (
                    isinstance(node.value, str) and not _IDENTIFIER.match(node.value)):
                return False
        elif not isinstance(node, (*_ARITHMETIC_NODES, ast.Subscript)):
            return False
    return True


def _spec_is_plain(text: str, depth: int = 0) -> bool:
    """A pytree spec (JSON in a string, contexts nested as JSON strings again) that names no
    enum and no defaultdict factory: loading those imports a module named in the file."""
    if depth > 20:
        return False
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return True  # not JSON: torch cannot import anything from it either
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__enum__" in node or "default_factory_module" in node:
                return False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node[:1] in ("[", "{") and not _spec_is_plain(node, depth + 1):
            return False
    return True


def _check_graph(doc: Any, entry: str, name: str) -> None:
    """Walk a serialized program: node targets, operator arguments, shape expressions, guards."""
    if not isinstance(doc, dict):
        raise SourceError(f"{name} is not a readable torch.export program: its {entry} is damaged")
    for guard in doc.get("guards_code") or ():
        if not isinstance(guard, str) or not _guard_allowed(guard):
            raise SourceError(f"{name} was refused: its shape guard {str(guard)[:80]!r} is not a plain size check, "
                              f"and loading would run it as Python")
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            is_target = key == "as_operator" or (key == "target" and "inputs" in node and "outputs" in node)
            if is_target and isinstance(value, str):
                if not _target_allowed(value):
                    raise SourceError(f"{name} was refused: its graph calls {value[:80]}, which is not a PyTorch "
                                      f"operator this app runs")
            elif key == "expr_str" and isinstance(value, str):
                if not _expression_allowed(value):
                    raise SourceError(f"{name} was refused: its shape expression {value[:80]!r} is not plain "
                                      f"arithmetic, and loading would evaluate it as Python")
            elif isinstance(value, str) and value[:1] in ("[", "{") and not _spec_is_plain(value):
                raise SourceError(f"{name} was refused: its input or output structure names a Python enum or factory "
                                  f"({key}), and loading would import the module it names")
            elif key in ("custom_obj_values", "as_custom_obj") and value:
                raise SourceError(f"{name} was refused: it holds custom TorchBind objects, which could run code here")
            elif isinstance(value, (dict, list)):
                stack.append(value)


def _check_exported_program(archive: _Archive, name: str) -> None:
    native = [n for n in archive.names if n.startswith(("data/aotinductor/", "data/executorch/", "data/mtia"))]
    if native:
        raise SourceError(f"{name} was refused: it holds compiled native code ({native[0]}), which this app does not "
                          f"load; save the exported program with torch.export.save, without AOTInductor packaging")
    if "version" in archive.zip.namelist() or any(n.rsplit("/", 1)[-1].startswith("serialized_")
                                                 for n in archive.names):
        raise SourceError(f"{name} is a torch.export program in the pre-2.8 format, which cannot be loaded "
                          f"safely; save it again with torch.export.save from a current PyTorch")
    models = [n for n in archive.names if n.startswith("models/") and n.endswith(".json")]
    if not models:
        raise SourceError(f"{name} is not a model file: this torch.export archive holds no program")
    for entry in models:
        try:
            doc = json.loads(archive.read(entry))
        except (ValueError, RecursionError):
            raise SourceError(f"{name} is not a readable torch.export program: its {entry} is damaged") from None
        _check_graph(doc, entry, name)
    raw_payloads: set[str] = set()
    for entry in sorted(archive.names):
        if not entry.startswith("data/") or not entry.endswith("_config.json"):
            continue
        folder = entry.rsplit("/", 1)[0] + "/"
        try:
            config = json.loads(archive.read(entry)).get("config", {})
            items = list(config.values())
        except (ValueError, AttributeError):
            raise SourceError(f"{name} is not a readable torch.export program: its {entry} is damaged") from None
        for item in items:
            path_name = str(item.get("path_name", "")) if isinstance(item, dict) else ""
            if path_name.startswith(("custom_obj_", "opaque_obj_")):
                raise SourceError(f"{name} was refused: it holds custom Python or TorchBind objects "
                                  f"({path_name}), which could run code here")
            if path_name and not item.get("use_pickle", False):
                raw_payloads.add(folder + path_name)
    for entry in sorted(archive.names):
        if entry.startswith(("data/weights/", "data/constants/", "data/sample_inputs/")) \
                and not entry.endswith(".json") and entry not in raw_payloads:
            _check_weights_only(archive.read(entry), entry, name)


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
    if len(shape) != 4:
        raise SourceError(f"{name} takes {len(shape)}-D input of shape {_shape_text(value.shape)}, but a source must "
                          f"take a 4-D batch of images (N, 3, H, W)")
    return _InputSpec(4, shape[1], shape[2], shape[3], shape[0])


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "any" for d in shape) + ")"


def _load_program(data: bytes, fmt: str, name: str) -> nn.Module | Any:
    try:
        if fmt == TORCHSCRIPT:
            return torch.jit.load(io.BytesIO(data), map_location="cpu")
        return torch.export.load(io.BytesIO(data))
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001  both loaders raise assorted errors on bad files
        raise SourceError(f"{name} could not be loaded as {fmt} ({_summary(exc)})") from None


def _summary(exc: BaseException) -> str:
    """One line of an error; TorchScript errors put the real message last, under a traceback."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[-1] if "Traceback of TorchScript" in str(exc) or "TorchScript interpreter" in str(exc) else lines[0]
    return line[:200]


def _probe(model: CompiledModel, name: str, side: int, fmt: str) -> torch.Tensor:
    batch = model.fixed_batch or PROBE_BATCH
    x = torch.zeros(batch, 3, side, side)
    try:
        with torch.inference_mode():
            out = model(x)
    except Exception as exc:  # noqa: BLE001
        rank = _accepted_rank(model, side) if fmt == TORCHSCRIPT else None
        if rank is not None:
            raise SourceError(f"{name} takes {rank}-D input, but a source must take a 4-D batch of images "
                              f"(N, 3, H, W)") from None
        raise SourceError(f"{name} fails on a batch of {side}x{side} RGB images ({_summary(exc)}); check the "
                          f"source's input_size") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch or out.shape[1] < 1 \
            or not out.is_floating_point():
        raise SourceError(f"{name} returns {_describe_output(out)}, not 2-D logits of shape (batch, classes); a "
                          f"source must map each image to one row of class scores")
    return out


def _accepted_rank(model: CompiledModel, side: int) -> int | None:
    """After a 4-D batch failed: does the TorchScript model take 3-D images or flat 2-D rows instead?"""
    for rank, x in ((3, torch.zeros(3, side, side)), (2, torch.zeros(PROBE_BATCH, 3 * side * side))):
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
    _check_file(path)
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"model file {path} cannot be read ({exc.strerror})") from None
    archive = _open_archive(data, name)
    fmt = _detect_format(archive, name)
    if fmt == TORCHSCRIPT:
        _check_torchscript(archive, name)
    else:
        _check_exported_program(archive, name)
    if "extra/" + META_FILE in archive.names:
        meta = parse_metadata(archive.read("extra/" + META_FILE), f"{META_FILE} in {name}")
    else:
        meta = _sidecar_metadata(path) or CompiledMetadata()

    program = _load_program(data, fmt, name)
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

    model = CompiledModel(module, spec.batch)
    out = _probe(model, name, input_size, fmt)
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
        origin=f"{'TorchScript file' if fmt == TORCHSCRIPT else 'torch.export program'} {path}")
    if not given_mean_std and meta.pixel_scale is not None:
        source.set_pixel_normalization(meta.pixel_scale, meta.pixel_offset or 0.0)
    return source
