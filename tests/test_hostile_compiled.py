"""Hostile compiled model files (issue 14, item 1): TorchScript and torch.export programs that
write a file on this machine, in several spellings, generated here from torch's own savers.

Each is refused by the operator allowlist (checked on the parsed program, or before loading
for what loading itself would run) with the operator's name, and the file it targets stays
as it was. The control: with the checks switched off, each one does write that file through
the same code path, so the refusal is what protects it.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from sskt_engine.config import SourceConfig
from sskt_engine.errors import SourceError, UserInputError
from sskt_engine.model_files import compiled as compiled_module
from sskt_engine.model_files import operators
from sskt_engine.predict import Predictor
from sskt_engine.sources import build_source

PRECIOUS = b"precious data\n"
SIZE = len(PRECIOUS)


class Net(nn.Module):
    """A tiny classifier of 32x32 images: what a hostile file pretends to be."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def _entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path: Path, entries: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def _torchscript(path: Path, meta: dict | None = None) -> dict[str, bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        extra = {"sskt_meta.json": json.dumps(meta)} if meta else {}
        torch.jit.save(torch.jit.script(Net().eval()), str(path), _extra_files=extra)
    return _entries(path)


def _code_entry(entries: dict[str, bytes], class_name: str) -> str:
    return next(name for name, data in entries.items()
                if name.endswith(".py") and f"class {class_name}(Module)" in data.decode())


def _inject(code: str, payload: str) -> str:
    """Put ``payload`` (lines that define ``_s``, a tensor) at the start of the first forward in
    ``code`` and add ``_s`` to what it returns, so the interpreter cannot drop it as unused."""
    start = code.index("def forward(")
    body = code.index(") -> Tensor:\n", start) + len(") -> Tensor:\n")
    returned = re.compile(r"^    return (.+)$", re.M).search(code, body)
    lines = "".join(f"    {line}\n" for line in payload.strip().splitlines())
    return (code[:body] + lines + code[body:returned.start()] + f"    return torch.add({returned.group(1)}, _s)"
            + code[returned.end():])


def _file_write(call: str, victim: Path) -> str:
    """Map ``victim`` into a tensor with ``call`` (a spelling of torch.from_file) and overwrite it."""
    return (f'_w = {call}("{victim}", True, {SIZE}, dtype=0)\n'
            f"_s = torch.sum(torch.copy_(_w, torch.ones([{SIZE}], dtype=0)))")


def _torchscript_variant(kind: str) -> Callable[[Path, Path], Path]:
    def make(folder: Path, victim: Path) -> Path:
        path = folder / f"{kind.replace(' ', '_')}.pt"
        entries = _torchscript(path)
        main, linear = _code_entry(entries, "Net"), _code_entry(entries, "Linear")
        code = entries[main].decode()
        # scripting the same class again in a process mangles its name; read the one it got
        net = re.search(r"def forward\(self: ([\w.]+),", code).group(1)
        if kind == "parenthesised call":  # the spelling that passed the old text check
            code = _inject(code, _file_write("(torch.from_file)", victim))
        elif kind == "plain call":
            code = _inject(code, _file_write("torch.from_file", victim))
        elif kind == "ops namespace":
            code = _inject(code, _file_write("ops.aten.from_file", victim))
        elif kind == "helper function":
            code = _inject(code, f'_s = {net.rsplit(".", 1)[0]}.grab("{victim}")') + (
                f"def grab(p: str) -> Tensor:\n  _w = (torch.from_file)(p, True, {SIZE}, dtype=0)\n"
                f"  return torch.sum(torch.copy_(_w, torch.ones([{SIZE}], dtype=0)))\n")
        elif kind == "in a submodule":
            entries[linear] = _inject(entries[linear].decode(), _file_write("(torch.from_file)", victim)).encode()
        elif kind == "torch.save":
            code = _inject(code, f'torch.save(x, "{victim}")\n_s = torch.zeros([1])')
        elif kind == "__setstate__ at load":  # runs inside torch.jit.load, before any input
            code = code.replace("  def forward(", (
                f"  def __getstate__(self: {net}) -> Dict[str, Tensor]:\n"
                "    return {}\n"
                f"  def __setstate__(self: {net}, state: Dict[str, Tensor]) -> None:\n"
                f'    _w = (torch.from_file)("{victim}", True, {SIZE}, dtype=0)\n'
                f"    _s = torch.sum(torch.copy_(_w, torch.ones([{SIZE}], dtype=0)))\n"
                f"    self.training = bool(torch.eq(_s, {SIZE}))\n"
                "    return None\n"
                "  def forward("), 1)
        entries[main] = code.encode()
        return _write(path, entries)

    return make


def _exported_program(folder: Path, victim: Path) -> Path:
    """A .pt2 whose first node, a torch.zeros, is respelled as torch.from_file on ``victim``;
    the program then copies ones into it (``copy_`` survives export as a node)."""

    class Writer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = Net()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = torch.zeros(SIZE, dtype=torch.uint8)
            w.copy_(torch.ones(SIZE, dtype=torch.uint8))
            return self.net(x) + w.sum()

    path = folder / "writer.pt2"
    torch.export.save(torch.export.export(Writer().eval(), (torch.zeros(2, 3, 32, 32),)), str(path))
    entries = _entries(path)
    name = next(n for n in entries if n.endswith("models/model.json"))
    doc = json.loads(entries[name])
    node = next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"] == "torch.ops.aten.zeros.default")
    node["target"] = "torch.ops.aten.from_file.default"
    node["inputs"] = [{"name": "filename", "arg": {"as_string": str(victim)}, "kind": 1},
                      {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
                      {"name": "size", "arg": {"as_int": SIZE}, "kind": 1},
                      *[i for i in node["inputs"] if i["kind"] == 2]]  # dtype, device, pin_memory
    entries[name] = json.dumps(doc).encode()
    return _write(path, entries)


HOSTILE = {kind: _torchscript_variant(kind) for kind in (
    "parenthesised call", "plain call", "ops namespace", "helper function", "in a submodule", "torch.save",
    "__setstate__ at load")}
HOSTILE["torch.export from_file node"] = _exported_program
REFUSAL = {"torch.save": r"reads or writes files \(torch\.save\)",
           "__setstate__ at load": r"defines __setstate__, which loading would run",
           "torch.export from_file node": r"torch\.ops\.aten\.from_file\.default, which is not a PyTorch operator"}


def _victim(folder: Path, kind: str) -> Path:
    victim = folder / "victim.txt"
    if kind != "torch.save":  # torch.save creates its file; the others overwrite an existing one
        victim.write_bytes(PRECIOUS)
    return victim


def _untouched(victim: Path, kind: str) -> bool:
    return not victim.exists() if kind == "torch.save" else victim.read_bytes() == PRECIOUS


def _source(path: Path) -> SourceConfig:
    return SourceConfig(kind="compiled", path=str(path), input_size=32)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_compiled_file_is_refused_by_name_and_writes_nothing(tmp_path, kind):
    victim = _victim(tmp_path, kind)
    path = HOSTILE[kind](tmp_path, victim)
    words = REFUSAL.get(kind, r"reads or writes files \(torch\.from_file\)")
    with pytest.raises(SourceError, match=rf"^{re.escape(path.name)} was refused: .*{words}") as info:
        build_source(_source(path))
    assert "\n" not in str(info.value)
    assert _untouched(victim, kind)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_each_hostile_file_does_write_when_the_checks_are_off(tmp_path, monkeypatch, kind):
    """The control: the same files, the same code path, the checks switched off."""
    victim = _victim(tmp_path, kind)
    path = HOSTILE[kind](tmp_path, victim)
    monkeypatch.setattr(operators, "allowed", lambda op: True)
    monkeypatch.setattr(compiled_module, "check_torchscript_archive", lambda archive, name: None)
    try:
        build_source(_source(path))
    except SourceError:  # the __setstate__ file fails to load, after it has written
        pass
    assert not _untouched(victim, kind)


def _exported_looking(folder: Path, victim: Path) -> Path:
    """The parenthesised TorchScript writer with the metadata of a model exported by this app."""
    meta = {"format": "sskt-studio-model", "arch": "tiny_cnn", "num_classes": 3, "input_size": 32,
            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "class_names": ["a", "b", "c"]}
    path = folder / "exported.torchscript.pt"
    entries = _torchscript(path, meta)
    main = _code_entry(entries, "Net")
    entries[main] = _inject(entries[main].decode(), _file_write("(torch.from_file)", victim)).encode()
    return _write(path, entries)


def test_an_exported_looking_torchscript_file_is_refused_by_predict(tmp_path, monkeypatch):
    victim = _victim(tmp_path, "predict")
    path = _exported_looking(tmp_path, victim)
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(image)
    with pytest.raises(UserInputError, match=r"exported.torchscript.pt was refused: .*\(torch\.from_file\)"):
        Predictor(path).predict([image])
    assert victim.read_bytes() == PRECIOUS
    monkeypatch.setattr(operators, "allowed", lambda op: True)  # the control
    Predictor(path).predict([image])
    assert victim.read_bytes() != PRECIOUS


def test_genuine_scripted_traced_and_exported_networks_pass_the_allowlist(tmp_path):
    """The allowlist is not so narrow that ordinary networks are refused: scripted, traced and
    exported networks of two families load as sources (this app's own architectures are
    exported and verified in tests/test_export.py)."""
    import torchvision

    for arch in ("resnet18", "mobilenet_v3_small"):  # benchmarks/ covers more families, scripted and exported
        model = torchvision.models.get_model(arch, weights=None, num_classes=5).eval()
        x = torch.zeros(2, 3, 64, 64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted, traced = tmp_path / f"{arch}.s.pt", tmp_path / f"{arch}.t.pt"
            torch.jit.save(torch.jit.script(model), str(scripted))
            torch.jit.save(torch.jit.trace(model, x), str(traced))
        exported = tmp_path / f"{arch}.pt2"
        torch.export.save(torch.export.export(model, (x,)), str(exported))
        for path in (scripted, traced, exported):
            assert build_source(SourceConfig(kind="compiled", path=str(path), input_size=64)).num_classes == 5


def test_an_archive_torch_could_read_otherwise_than_the_checks_is_refused(tmp_path):
    """torch looks entries up without regard to case and reads only the first entry's folder:
    an archive where that could pick other bytes than the checks read is refused."""
    entries = _torchscript(tmp_path / "net.pt")
    main = _code_entry(entries, "Net")
    twin = _write(tmp_path / "twin.pt", {**entries, main.replace("/code/", "/CODE/"): entries[main]})
    with pytest.raises(SourceError, match=r"^twin.pt is not a readable model file: .*two entries of the same name"):
        build_source(_source(twin))
    split = _write(tmp_path / "split.pt", {**entries, "other/code/__torch__.py": entries[main]})
    with pytest.raises(SourceError, match=r"^split.pt is not a readable model file: .*not in one folder"):
        build_source(_source(split))
