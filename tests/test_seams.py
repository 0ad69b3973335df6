"""The engine's seams: a preset schema that imports without torch, leaf registries with typed
entries, per-method options (with the migration of version-1 presets), and no import cycle."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from sskt_engine import registry
from sskt_engine.config import MethodOptions, describe_fields, dumps_preset, loads_preset, method_options, option
from sskt_engine.errors import PresetError
from sskt_engine.registry import METHODS, MethodInfo

ENGINE = Path(__file__).resolve().parents[1] / "sskt_engine"

# What SSKT Studio up to preset version 1 wrote into every run folder: one method section
# holding every method's keys (a run of KD, here), e.g. .../runs/<run>/preset.yaml.
V1_KD_RUN_PRESET = """\
schema_version: 1
name: old-kd
target: {arch: tiny_cnn}
sources:
- {kind: checkpoint, arch: tiny_cnn, weights: '', path: teacher.safetensors, num_classes: 6, input_size: null,
   mean: null, std: null, pixel_scale: null, pixel_offset: null, class_names_file: '', checkpoint: best, name: ''}
data: {dataset: demo, root: '', labels_per_class: 5, val_split: 0.0, augment: true, image_size: null,
       download: false, device_resident: auto, num_workers: 0}
method: {name: kd, alpha: 0.1, temperature: 3.0, aux_loss: soft_ce, head: linear, focal_gamma: 2.0,
         transfer_width: 0, teacher: 0, kd_lambda: 0.5, kd_temperature: 6.0, peers: 2, peer_archs: [], psi: 5,
         maxl_generator_arch: '', maxl_generator_lr: 0.001, maxl_entropy_weight: 0.2}
train: {epochs: 1}
"""


def test_the_preset_schema_imports_without_torch():
    code = "import sys, sskt_engine.config, sskt_engine.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _engine_imports() -> dict[str, set[str]]:
    """Module -> engine modules it imports (anywhere in it, functions included; not under
    TYPE_CHECKING), by reading the source like ../shared/tools/import_cycles.py does."""
    modules = {}
    for file in ENGINE.rglob("*.py"):
        parts = list(file.relative_to(ENGINE.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if package else parts)] = (file, package)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (file, package) in modules.items():
        out: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
            if isinstance(node, ast.Import):
                out |= {resolve(a.name) for a in node.names if a.name.startswith("sskt_engine")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                if not stem.startswith("sskt_engine"):
                    continue
                targets = {resolve(f"{stem}.{a.name}") for a in node.names}
                out |= {t if t and t != stem.rpartition(".")[0] else resolve(stem) for t in targets}
        graph[name] = {m for m in out if m and m != name}
    return graph


def test_no_import_cycle_among_the_engines_modules():
    graph = _engine_imports()
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for module in graph:
        if module not in index:
            visit(module)
    assert len(graph) > 30 and "sskt_engine.registry" in graph  # the reader found the engine
    assert cycles == []


def test_the_registry_imports_nothing_of_the_engine_but_its_errors():
    assert _engine_imports()["sskt_engine.registry"] == {"sskt_engine.errors"}
    # config reads only leaves (user_folders: where the user models folder is, for one error message)
    assert not (_engine_imports()["sskt_engine.config"] - {"sskt_engine.registry", "sskt_engine.errors",
                                                         "sskt_engine.atomic", "sskt_engine.key_paths",
                                                         "sskt_engine.user_folders"})
    assert _engine_imports()["sskt_engine.user_folders"] == set()


def test_registries_hold_typed_entries():
    assert {"supervised", "sskt", "kd", "dml", "maxl"} <= set(METHODS.keys())
    for info in METHODS.entries():
        assert isinstance(info, MethodInfo) and issubclass(info.options, MethodOptions)
        assert info.options().name == info.name  # each options class names its own method
    assert registry.ARCHITECTURES.get("resnet20").input_size == 32
    assert registry.DATASETS.get("demo").needs_root is False
    assert set(registry.SOURCE_KINDS.keys()) >= {"torchvision", "checkpoint", "run", "compiled"}


def test_each_method_reads_only_its_own_keys():
    kd = loads_preset("sources: [{kind: run, path: x}]\nmethod: {name: kd, distill_weight: 0.3, temperature: 2}\n")
    assert (kd.method.distill_weight, kd.method.temperature) == (0.3, 2.0)
    assert not hasattr(kd.method, "alpha")
    sskt = loads_preset("sources: [{kind: run, path: x}]\nmethod: {name: sskt}\n")
    assert sskt.method.temperature == 3.0  # SSKT's own default, not KD's 4
    with pytest.raises(PresetError, match="method kd reads it, not sskt"):
        loads_preset("sources: [{kind: run, path: x}]\nmethod: {name: sskt, distill_weight: 0.3}\n")
    with pytest.raises(PresetError, match="method.name: 'sskd' is not one of .*did you mean 'sskt'"):
        loads_preset("method: {name: sskd}\n")


def test_version_1_run_presets_still_load_with_their_values():
    cfg = loads_preset(V1_KD_RUN_PRESET)
    assert cfg.schema_version == 2 and cfg.method.name == "kd"
    assert (cfg.method.distill_weight, cfg.method.temperature, cfg.method.teacher) == (0.5, 6.0, 0)
    again = loads_preset(dumps_preset(cfg))  # written as version 2, read back unchanged
    assert again == cfg
    maxl = loads_preset(V1_KD_RUN_PRESET.replace("name: kd,", "name: maxl,").replace("maxl_generator_lr: 0.001",
                                                                                     "maxl_generator_lr: 0.01"))
    assert (maxl.method.generator_lr, maxl.method.entropy_weight, maxl.method.psi) == (0.01, 0.2, 5)
    sskt = loads_preset(V1_KD_RUN_PRESET.replace("name: kd,", "name: sskt,").replace("alpha: 0.1", "alpha: 0.7"))
    assert (sskt.method.alpha, sskt.method.temperature) == (0.7, 3.0)  # SSKT's temperature, not kd_temperature


def test_every_shipped_preset_loads(tmp_path):
    presets = sorted((ENGINE.parent / "resources" / "presets").rglob("*.yaml"))
    assert presets
    for path in presets:
        cfg = loads_preset(path.read_text(encoding="utf-8"), source=path.name)
        assert isinstance(cfg.method, METHODS.get(cfg.method.name).options)


def test_a_method_registered_with_its_own_options_is_parsed_and_described(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class KnobOptions(MethodOptions):
        name: str = option("knob_method", "Training method.")
        knob: float = option(1.0, "A knob of the test method.", min=0.0)

    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    METHODS.add(MethodInfo(name="knob_method", build=object, options=KnobOptions))
    cfg = loads_preset("method: {name: knob_method, knob: 2.5}\n")
    assert cfg.method == KnobOptions(knob=2.5)
    assert method_options("knob_method") == KnobOptions()
    assert [d["name"] for d in describe_fields(KnobOptions)] == ["name", "knob"]
    with pytest.raises(PresetError, match="must be at least 0.0"):
        loads_preset("method: {name: knob_method, knob: -1}\n")
