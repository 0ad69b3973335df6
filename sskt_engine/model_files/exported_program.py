"""``torch.export`` programs (``.pt2``): checked as data before ``torch.export.load`` sees them,
and their graph checked again once parsed, before it runs on any input.

A ``.pt2`` archive is mostly data: a graph of operators in JSON plus raw tensor bytes.
Mostly: ``torch.export.load`` (the only public loader; PyTorch itself warns never to load
untrusted files with it) resolves each node's target as *any* attribute path under
``torch``, ``_operator`` or ``math`` (``torch.os.system`` included), parses shape expressions
with ``sympy.sympify`` (which evaluates Python), ``ExportedProgram.module()`` ``exec``s the
program's shape-guard code, full unpickling (``weights_only=False``) is its fallback for
pickled weights, sample inputs and custom objects, and it loads AOTInductor native libraries
when an archive holds them. So, before anything is loaded: every node target must be an
operator of the allowlist in ``operators.py`` (or a plain arithmetic function); every shape
expression and guard must parse (``ast``) as arithmetic over sizes and known sympy
constructors; input/output structures (pytree specs) may not name enums or defaultdict
factories (torch imports the module named there); every pickled entry must load under
``torch.load(weights_only=True)``; custom (TorchBind/opaque) objects, AOTInductor/ExecuTorch
payloads and pre-2.8 archives are refused. After loading, the parsed graph (every submodule
and control-flow branch) is walked once more: each call must be an allowed operator object,
whatever the JSON spelled.
"""

from __future__ import annotations

import ast
import io
import json
import pickle
import re
from typing import Any

import torch

from ..errors import SourceError
from . import operators
from .archive import ModelArchive, error_summary
from .inflation import check_inflation

_OP_TARGET = re.compile(r"^torch\.ops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?$")
_SYM_TARGET = re.compile(r"^(torch\.(sym_[a-z_]+|_sym_[a-z_]+)|math\.([a-z][a-z0-9_]*)|_operator\.([a-z_]+))$")
_SIZE_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}
_GUARD_NAMES = {"L", "math", "inf", "abs", "min", "max", "int", "float", "round", "bool",
                "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless"}
_EXPR_LOWER_NAMES = {"floor", "ceiling", "sqrt", "exp", "log", "sin", "cos", "tan", "sign", "oo", "zoo", "nan",
                     "true", "false", "pi"}
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ARITHMETIC_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Load, ast.operator,
                     ast.cmpop, ast.boolop, ast.unaryop, ast.keyword)


# ----------------------------------------------------------------------------- before loading

def check_exported_archive(archive: ModelArchive, name: str) -> None:
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
        _check_document(doc, entry, name)
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


def _check_document(doc: Any, entry: str, name: str) -> None:
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


def _check_weights_only(blob: bytes, entry: str, name: str) -> None:
    check_inflation(blob, f"{name} ({entry})")  # a nested torch.save archive inflates as freely
    try:
        torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SourceError(f"{name} was refused: its {entry} holds pickled Python objects, which could run code "
                          f"here; export the program again with plain tensor weights") from None
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{name} is not a readable torch.export program: its {entry} is damaged "
                          f"({error_summary(exc)})") from None


def _target_allowed(target: str) -> bool:
    """A node target as the JSON spells it: ``torch.ops.NS.OP.OVERLOAD`` of an allowed operator,
    or an allowed Python-level arithmetic function."""
    match = _OP_TARGET.match(target)
    if match:
        namespace, op = match.group(1), match.group(2)
        if any(part and part.startswith("__") for part in match.groups()):
            return False
        return operators.allowed(f"{namespace}::{op}")
    match = _SYM_TARGET.match(target)
    if not match:
        return False
    return operators.python_function_allowed(target)


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


# ----------------------------------------------------------------------------- loading and after

def load_exported_program(data: bytes, name: str) -> Any:
    """Load the (already checked) archive and check its parsed graph; raises ``SourceError`` for
    a refused call, and whatever torch raises for a file it cannot load."""
    program = torch.export.load(io.BytesIO(data))
    check_program_graph(program, name)
    return program


def check_program_graph(program: Any, name: str) -> None:
    """Every node of every graph of the program (submodules and control-flow branches included)
    calls an allowed operator or arithmetic function: the resolved objects, not their spelling."""
    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        for node in graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            if node.op != "call_function":
                raise SourceError(f"{name} was refused: its graph holds a {node.op} node ({str(node.target)[:80]}), "
                                  f"which an exported program of plain operators never contains")
            _check_call(node.target, name)


def _check_call(target: Any, name: str) -> None:
    if isinstance(target, torch._ops.OpOverload):
        op = target._schema.name  # "aten::conv2d"
        if not operators.allowed(op):
            raise SourceError(operators.refusal(name, "its graph", op))
        return
    if isinstance(target, torch._ops.HigherOrderOperator):
        if not operators.allowed(f"higher_order::{target.name()}"):
            raise SourceError(operators.refusal(name, "its graph", f"higher_order::{target.name()}"))
        return
    if not operators.python_callable_allowed(target):
        spelled = f"{getattr(target, '__module__', '?')}.{getattr(target, '__name__', target)}"
        raise SourceError(f"{name} was refused: its graph calls {spelled[:80]}, which is not a PyTorch "
                          f"operator this app runs")

