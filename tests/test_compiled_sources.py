"""Compiled model files as sources: TorchScript and torch.export programs written here with
torch's own savers, used in a real SSKT run, their normalization checked at the source's
input, and every refusal as one sentence."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile

import pytest
import torch
import torch.nn as nn

from sskt_engine.compiled_sources import META_FILE, metadata_json
from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.errors import PresetError, SourceError
from sskt_engine.models import build_architecture
from sskt_engine.sources import SourceEnsemble, build_source
from sskt_engine.trainer import Trainer


class FlatNet(nn.Module):
    """Takes flattened images (N, 3*32*32): the wrong input rank for a source."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class FeatureNet(nn.Module):
    """Returns a feature map, not logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PairNet(nn.Module):
    """Returns (logits, features): not plain logits either."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = x.mean(dim=(2, 3))
        return self.fc(pooled), pooled


def _tiny(classes: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_architecture("tiny_cnn", classes).eval()


def save_torchscript(path, model: nn.Module, meta: str | None = None, trace: bool = False):
    scripted = torch.jit.trace(model, torch.zeros(2, 3, 32, 32)) if trace else torch.jit.script(model)
    torch.jit.save(scripted, str(path), _extra_files={META_FILE: meta} if meta is not None else {})
    return path


def save_program(path, model: nn.Module, example: torch.Tensor | None = None, meta: str | None = None,
                 dynamic: bool = False):
    example = torch.zeros(2, 3, 32, 32) if example is None else example
    shapes = None
    if dynamic:
        side = torch.export.Dim("side", min=8, max=256)
        shapes = ({0: torch.export.Dim("batch"), 2: side, 3: side},)
    program = torch.export.export(model, (example,), dynamic_shapes=shapes)
    torch.export.save(program, str(path), extra_files={META_FILE: meta} if meta is not None else None)
    return path


def compiled(path, **fields) -> SourceConfig:
    return SourceConfig(kind="compiled", path=str(path), **fields)


# ----------------------------------------------------------------------------- in a run

def test_torchscript_and_exported_program_sources_in_an_sskt_run(tmp_path):
    ts = save_torchscript(tmp_path / "teacher.ts", _tiny(5, 1), metadata_json(
        input_size=40, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), class_names=[f"c{i}" for i in range(5)]))
    pt2 = save_program(tmp_path / "teacher.pt2", _tiny(7, 2))  # static batch 2, static 32x32 input
    preset = f"""\
name: compiled
target: {{arch: tiny_cnn}}
data: {{dataset: demo, labels_per_class: 4}}
method: {{name: sskt}}
train: {{epochs: 1, batch_size: 16, device: cpu}}
sources:
  - {{kind: compiled, path: "{ts}"}}
  - {{kind: compiled, path: "{pt2}", pixel_scale: 128, pixel_offset: 127}}
"""
    folder = Trainer(loads_preset(preset), tmp_path / "runs").run()
    summary = folder.summary()
    assert summary.status == "finished", summary.message
    described = {s["name"]: s for s in summary.sources}
    assert described["teacher.ts"]["num_classes"] == 5 and described["teacher.ts"]["input_size"] == 40
    assert described["teacher.ts"]["origin"].startswith("TorchScript file")
    assert described["teacher.pt2"]["num_classes"] == 7 and described["teacher.pt2"]["input_size"] == 32
    assert described["teacher.pt2"]["origin"].startswith("torch.export program")
    assert described["teacher.pt2"]["pixel_scale"] == 128.0 and described["teacher.pt2"]["pixel_offset"] == 127.0
    # the preset recorded in the run rebuilds the same sources
    rebuilt = folder.config().sources
    assert rebuilt[1].kind == "compiled" and rebuilt[1].pixel_scale == 128.0 and rebuilt[1].path == str(pt2)


def test_loaded_networks_compute_what_was_saved(tmp_path):
    model = _tiny(5, 3)
    x = torch.rand(3, 3, 32, 32)
    for path in (save_torchscript(tmp_path / "s.pt", model, trace=True), save_program(tmp_path / "p.pt2", model)):
        source = build_source(compiled(path, input_size=32))
        assert not source.module.training and not any(p.requires_grad for p in source.module.parameters())
        with torch.no_grad():  # batch 3 through a program exported for batch 2: chunked and padded
            assert torch.allclose(source.module(x), model(x), atol=1e-5)


# ----------------------------------------------------------------------------- normalization

def test_mean_std_and_scale_offset_both_reach_the_source(tmp_path):
    seen: dict[str, torch.Tensor] = {}
    ts = save_torchscript(tmp_path / "a.ts", _tiny(4))
    pt2 = save_program(tmp_path / "b.pt2", _tiny(4), dynamic=True)
    meta_pt2 = save_program(tmp_path / "c.pt2", _tiny(4), dynamic=True,
                            meta=metadata_json(input_size=48, pixel_scale=127.5, pixel_offset=127.5))
    configs = {
        "mean_std": compiled(ts, input_size=48, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5), name="mean_std"),
        "scale_offset": compiled(pt2, input_size=48, pixel_scale=128.0, pixel_offset=127.0, name="scale_offset"),
        "from_metadata": compiled(meta_pt2, name="from_metadata"),
    }
    sources = []
    for name, cfg in configs.items():
        source = build_source(cfg)
        source.module.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, a[0].clone()))
        sources.append(source)
    ensemble = SourceEnsemble(sources)
    assert len(ensemble.groups) == 3
    torch.manual_seed(0)
    pixels = torch.rand(4, 3, 48, 48)  # already at the sources' size: no resize, exact arithmetic
    ensemble(pixels)
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.5]).view(1, 3, 1, 1)
    assert torch.allclose(seen["mean_std"], (pixels - mean) / std, atol=1e-6)
    assert torch.allclose(seen["scale_offset"], (pixels * 255 - 127) / 128, atol=1e-5)
    assert torch.allclose(seen["from_metadata"], (pixels * 255 - 127.5) / 127.5, atol=1e-5)
    # the statistics a person would check: uniform [0,1] pixels -> about [-1, 1] for (x - 127.5) / 127.5
    stats = seen["from_metadata"]
    assert -1.0 <= stats.min() < -0.95 and 0.95 < stats.max() <= 1.0 and abs(stats.mean()) < 0.05


def test_sources_with_the_same_scale_offset_share_one_preprocessing(tmp_path):
    a = save_program(tmp_path / "a.pt2", _tiny(4), dynamic=True)
    sources = [build_source(compiled(a, input_size=32, pixel_scale=128.0, pixel_offset=127.0, name=n))
               for n in ("x", "y")]
    sources.append(build_source(compiled(a, input_size=32, mean=(127 / 255,) * 3, std=(128 / 255,) * 3, name="z")))
    ensemble = SourceEnsemble(sources)
    assert [members for _, members in ensemble.groups] == [[0, 1], [2]]
    out = ensemble(torch.rand(2, 3, 32, 32))
    assert torch.allclose(out[0], out[2], atol=1e-4)  # equivalent normalizations, same numbers


def test_sidecar_metadata_and_class_names_file(tmp_path):
    ts = save_torchscript(tmp_path / "net.ts", _tiny(3))
    (tmp_path / "net.ts.json").write_text(json.dumps({"input_size": 64, "mean": [0.1, 0.2, 0.3],
                                                      "std": [0.5, 0.5, 0.5]}))
    names = tmp_path / "classes.txt"
    names.write_text("cat\ndog\n\nbird\n")
    source = build_source(compiled(ts, class_names_file=str(names)))
    assert source.input_size == 64 and source.mean == (0.1, 0.2, 0.3) and source.class_names == ("cat", "dog", "bird")


# ----------------------------------------------------------------------------- refusals

def test_not_a_model_file(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    weights = tmp_path / "weights.pt"
    torch.save(_tiny(3).state_dict(), weights)
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("readme.txt", "x")
    for path, words in ((text, "is not a model file"), (weights, "is not a model file but a torch.save file"),
                        (archive, "is not a model file: it is a zip archive")):
        with pytest.raises(SourceError, match=words):
            build_source(compiled(path, input_size=32))
    with pytest.raises(SourceError, match="does not exist"):
        build_source(compiled(tmp_path / "missing.pt2"))


def test_wrong_input_rank(tmp_path):
    ts = save_torchscript(tmp_path / "flat.ts", FlatNet())
    with pytest.raises(SourceError, match=r"flat.ts takes 2-D input, but a source must take a 4-D batch"):
        build_source(compiled(ts, input_size=32))
    pt2 = save_program(tmp_path / "flat.pt2", FlatNet(), example=torch.zeros(2, 3 * 32 * 32))
    with pytest.raises(SourceError, match=r"flat.pt2 takes 2-D input of shape \(2, 3072\), but a source must take "
                                          r"a 4-D batch"):
        build_source(compiled(pt2))


def test_output_not_two_d_logits(tmp_path):
    for path in (save_torchscript(tmp_path / "features.ts", FeatureNet()),
                 save_program(tmp_path / "features.pt2", FeatureNet())):
        with pytest.raises(SourceError,
                           match=r"returns a 4-D float32 tensor of shape \(2, 4, 32, 32\), not 2-D logits"):
            build_source(compiled(path, input_size=32))
    with pytest.raises(SourceError, match="returns a tuple of 2 values, not 2-D logits"):
        build_source(compiled(save_torchscript(tmp_path / "pair.ts", PairNet()), input_size=32))


def test_missing_input_size_and_class_count_mismatches(tmp_path):
    ts = save_torchscript(tmp_path / "plain.ts", _tiny(3))
    with pytest.raises(SourceError, match="does not say which image size it takes; set the source's input_size"):
        build_source(compiled(ts))
    with pytest.raises(SourceError, match="has 3 output classes, but the preset's num_classes says 10"):
        build_source(compiled(ts, input_size=32, num_classes=10))
    pt2 = save_program(tmp_path / "fixed.pt2", _tiny(3))
    with pytest.raises(SourceError, match="was exported for 32x32 images, so its input_size must be 32, not 64"):
        build_source(compiled(pt2, input_size=64))
    named = save_torchscript(tmp_path / "named.ts", _tiny(3), metadata_json(input_size=32, class_names=["a", "b"]))
    with pytest.raises(SourceError, match="has 3 output classes, but sskt_meta.json in named.ts names 2"):
        build_source(compiled(named))


def test_bad_metadata_is_one_sentence(tmp_path):
    for meta, words in (("{not json", "is not valid JSON"),
                        ('{"input_size": "big"}', "input_size must be a whole number from 8 to 1024"),
                        ('{"std": [1, 0, 1]}', "std must be a list of 3 numbers greater than 0"),
                        ('{"pixel_offset": 3}', "gives pixel_offset without pixel_scale")):
        path = save_torchscript(tmp_path / "m.ts", _tiny(3), meta)
        with pytest.raises(SourceError, match=words):
            build_source(compiled(path, input_size=32))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _rewrite(path, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> None:
    """Rewrite a zip archive with some entries replaced or added (names relative to its top folder)."""
    with zipfile.ZipFile(path) as handle:
        entries = {info.filename: handle.read(info.filename) for info in handle.infolist()}
    top = next(iter(entries)).split("/", 1)[0] + "/"
    for name, data in replace.items():
        assert top + name in entries
        entries[top + name] = data
    for name, data in (add or {}).items():
        entries[top + name] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("protocol", [2, 4])
def test_torchscript_with_pickled_python_objects_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = save_torchscript(tmp_path / "evil.ts", _tiny(3))
    _rewrite(path, {"data.pkl": pickle.dumps({"x": _Payload(marker)}, protocol=protocol)})
    with pytest.raises(SourceError, match=r"evil.ts was refused: its data.pkl holds pickled Python objects "
                                          r"\((posix\.system|os\.system)\)"):
        build_source(compiled(path, input_size=32))
    assert not marker.exists()


def test_exported_program_with_pickled_python_objects_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = save_program(tmp_path / "evil.pt2", _tiny(3))
    with zipfile.ZipFile(path) as handle:
        top = handle.namelist()[0].split("/", 1)[0] + "/"
        config = json.loads(handle.read(top + "data/weights/model_weights_config.json"))
    config["config"]["stage1.0.weight"]["use_pickle"] = True
    _rewrite(path, {"data/weights/model_weights_config.json": json.dumps(config).encode(),
                    "data/weights/weight_0": pickle.dumps(_Payload(marker))})
    with pytest.raises(SourceError,
                       match="evil.pt2 was refused: its data/weights/weight_0 holds pickled Python objects"):
        build_source(compiled(path))
    assert not marker.exists()

    native = save_program(tmp_path / "native.pt2", _tiny(3))
    _rewrite(native, {}, {"data/aotinductor/model/model.so": b"\x7fELF"})
    with pytest.raises(SourceError, match="native.pt2 was refused: it holds compiled native code"):
        build_source(compiled(native))


def _edit_program(path, edit) -> None:
    with zipfile.ZipFile(path) as handle:
        top = handle.namelist()[0].split("/", 1)[0] + "/"
        doc = json.loads(handle.read(top + "models/model.json"))
    edit(doc)
    _rewrite(path, {"models/model.json": json.dumps(doc).encode()})


@pytest.mark.parametrize("tamper, words", [
    ("target", "its graph calls torch.os.system, which is not a PyTorch operator"),
    ("guard", "its shape guard \"__import__('os').system"),
    ("expression", "its shape expression 'S(\"__import__"),
    ("spec", "its input or output structure names a Python enum or factory (in_spec)"),
])
def test_exported_program_that_would_run_python_is_refused(tmp_path, tamper, words):
    marker = tmp_path / "pwned"
    path = save_program(tmp_path / "evil.pt2", _tiny(3), dynamic=True)
    command = f"__import__('os').system('touch {marker}')"

    def edit(doc):
        graph = doc["graph_module"]["graph"]
        if tamper == "target":
            graph["nodes"][0]["target"] = "torch.os.system"
        elif tamper == "guard":
            doc["guards_code"].append(command)
        elif tamper == "spec":  # an enum dict key: torch would import the module the spec names
            context = json.dumps([{"__enum__": True, "fqn": "antigravity:Key", "name": "A"}])
            doc["graph_module"]["module_call_graph"][0]["signature"]["in_spec"] = json.dumps(
                [1, {"type": "builtins.dict", "context": context, "children_spec": []}])
        else:
            symbolic = next(v for v in graph["tensor_values"].values() if v["sizes"] and "as_expr" in v["sizes"][0])
            size = symbolic["sizes"][0]
            size["as_expr"]["expr_str"] = f"S({command!r})"

    _edit_program(path, edit)
    with pytest.raises(SourceError, match=re.escape(f"evil.pt2 was refused: {words}")):
        build_source(compiled(path))
    assert not marker.exists()


def test_torchscript_code_that_touches_files_is_refused(tmp_path):
    path = save_torchscript(tmp_path / "writer.ts", _tiny(3))
    with zipfile.ZipFile(path) as handle:
        code = next(n for n in handle.namelist()  # the class name is mangled when scripted twice in a process
                    if n.endswith(".py") and "stage3 = self.stage3" in handle.read(n).decode())
        text = handle.read(code).decode()
    text = text.replace("    stage3 = self.stage3", "    torch.save(x, \"/tmp/out\")\n    stage3 = self.stage3", 1)
    _rewrite(path, {code.split("/", 1)[1]: text.encode()})
    with pytest.raises(SourceError, match=r"writer.ts was refused: its TorchScript code reads or writes files "
                                          r"\(torch.save\)"):
        build_source(compiled(path, input_size=32))


def test_preset_checks_for_compiled_sources():
    base = "sources: [{kind: compiled, path: m.pt2, %s}]\nmethod: {name: sskt}\n"
    with pytest.raises(PresetError, match="pixel_offset: needs pixel_scale too"):
        loads_preset(base % "pixel_offset: 127")
    with pytest.raises(PresetError, match="give either mean/std or pixel_scale/pixel_offset, not both"):
        loads_preset(base % "pixel_scale: 128, mean: [0.5, 0.5, 0.5]")
    with pytest.raises(PresetError, match="pixel_scale: must be greater than 0.0"):
        loads_preset(base % "pixel_scale: 0")
    with pytest.raises(PresetError, match="a compiled source needs the model file's path"):
        loads_preset("sources: [{kind: compiled}]\nmethod: {name: sskt}\n")
    cfg = loads_preset(base % "pixel_scale: 128, pixel_offset: 127, class_names_file: names.txt")
    assert cfg.sources[0].pixel_scale == 128.0 and cfg.sources[0].class_names_file == "names.txt"
