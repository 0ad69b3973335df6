"""TorchScript files: checked before ``torch.jit.load`` sees them, and their program checked
after it is parsed, before it runs on any input.

A TorchScript file is a program. Loading it compiles the code in the archive (TorchScript, a
typed subset of Python run by PyTorch's interpreter, not by Python) and unpickles its data;
the only code of the file that loading *runs* is a class's ``__setstate__``, called for each
object unpickled. So:

1. before loading, every pickle is checked opcode by opcode (only TorchScript classes of the
   archive itself and the few tensor and container builders torch's C++ unpickler knows; no
   TorchBind objects), and a file whose code mentions ``__setstate__`` is refused: nothing of
   the file runs while it loads;
2. after loading, every node of every function the archive compiled (each method of each
   module and class, submodules and hooks included) must be an operator of the allowlist in
   ``operators.py``. The check reads the parsed graphs, not the text, so no spelling of a call
   (``(torch.from_file)(...)``, an alias, a helper function) gets past it.
"""

from __future__ import annotations

from typing import Iterator

import torch

from ..errors import SourceError
from . import operators
from .archive import ModelArchive, error_summary, pickle_globals

# Globals the TorchScript (C++) unpickler resolves itself; anything else in a TorchScript
# pickle can only be a Python object, which a genuine torch.jit.save never writes.
_TS_GLOBALS = {
    ("collections", "OrderedDict"), ("builtins", "complex"), ("torch", "device"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_sparse_tensor"),
}


def _global_allowed(ref: tuple[str, str] | None) -> bool:
    if ref is None:
        return False
    module, attr = ref
    if module == "__torch__.torch.classes" or module.startswith("__torch__.torch.classes."):
        return False  # TorchBind objects: native classes whose __setstate__ runs while loading
    return (module == "__torch__" or module.startswith("__torch__.") or module == "torch.jit._pickle"
            or (module == "torch" and attr.endswith("Storage")) or ref in _TS_GLOBALS)


def check_torchscript_archive(archive: ModelArchive, name: str) -> None:
    """The checks before loading: pickles and ``__setstate__`` (see the module's docstring)."""
    for entry in sorted(archive.names):
        lowered = entry.lower()  # torch finds entries whatever their case
        if lowered.endswith(".py") and b"__setstate__" in archive.read(entry):
            raise SourceError(f"{name} was refused: its TorchScript code defines __setstate__, which loading "
                              f"would run before the code can be checked; a source network never needs it")
        if not lowered.endswith((".pkl", ".debug_pkl")):
            continue
        try:
            refs = pickle_globals(archive.read(entry))
        except Exception as exc:  # noqa: BLE001  pickletools raises ValueError and friends on garbage
            raise SourceError(f"{name} is not a readable TorchScript file: its {entry} is damaged "
                              f"({error_summary(exc)})") from None
        for ref in refs:
            if not _global_allowed(ref):
                what = f"{ref[0]}.{ref[1]}" if ref else "an object it hides from inspection"
                raise SourceError(f"{name} was refused: its {entry} holds pickled Python objects ({what}), which a "
                                  f"genuine torch.jit.save file never contains and which could run code here")


def load_torchscript(data: bytes, name: str) -> torch.jit.ScriptModule:
    """Parse the (already checked) archive and check its program; raises ``SourceError`` for a
    refused operator, and whatever torch raises for a file it cannot load.

    ``torch.jit.load`` does the same two calls but keeps the compilation unit to itself; this
    needs it, since it lists every function the archive defined."""
    from torch.jit._recursive import wrap_cpp_module

    unit = torch._C.CompilationUnit()
    cpp_module = torch._C.import_ir_module_from_buffer(unit, data, torch.device("cpu"), {}, False)
    for function in unit.get_functions():
        _check_graph(function.graph, function.qualified_name, name)
    return wrap_cpp_module(cpp_module)


def _check_graph(graph: torch._C.Graph, where: str, name: str) -> None:
    for node in _nodes(graph.block()):
        if not operators.allowed(node.kind()):
            raise SourceError(operators.refusal(name, "its TorchScript code", node.kind(), where))


def _nodes(block: torch._C.Block) -> Iterator[torch._C.Node]:
    """Every node of a block, those inside its ifs and loops and any fused subgraph included."""
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _nodes(inner)
        for attribute in node.attributeNames():
            if node.kindOf(attribute) == "g":
                yield from _nodes(node.g(attribute).block())
