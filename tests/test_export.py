"""Export and predict: every format round-trips and verifies, files are published atomically,
`sskt predict` agrees with the app, and an exported file serves as the next experiment's source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sskt_engine import export as export_module
from sskt_engine.cli import main as cli_main
from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.errors import UserInputError
from sskt_engine.export import (TOLERANCE, ExportFailed, ExportResult, detect_format, export_run,
                                load_exported, load_run_network, read_model_file)
from sskt_engine.predict import Predictor
from sskt_engine.runs import RunFolder
from sskt_engine.sources import build_source
from sskt_engine.trainer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated")
REPO = Path(__file__).resolve().parents[1]
TINY = """\
name: tiny
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 8}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, lr: 0.05, schedule: constant, seed: 3, log_every: 4, device: cpu}
"""
ODD_FOLDER = "exports für Modelle – ü ß"  # spaces and non-ASCII letters
SUFFIX = {"pt": ".pt", "safetensors": ".safetensors", "torchscript": ".torchscript.pt", "onnx": ".onnx"}


def _needs(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="ONNX export needs the optional onnx extra")


@pytest.fixture(scope="module")
def supervised_run(tmp_path_factory) -> RunFolder:
    """One epoch of tiny_cnn on the demo data: the model every test exports."""
    return Trainer(loads_preset(TINY), tmp_path_factory.mktemp("runs")).run()


@pytest.fixture(scope="module")
def sskt_run(supervised_run, tmp_path_factory) -> tuple[RunFolder, Path]:
    """The chained experiment: export the supervised run to safetensors, then train SSKT one
    epoch with that file as a checkpoint source that names neither arch nor class count."""
    exported = tmp_path_factory.mktemp("chain") / "source model.safetensors"
    export_run(supervised_run.path, "safetensors", exported)
    config = loads_preset(TINY, overrides=[
        "name=chain", "method.name=sskt", "method.head=transfer_module",
        f"sources=[{{kind: checkpoint, path: '{exported}', name: exported}}]"])
    assert config.sources[0].arch == "" and config.sources[0].num_classes is None
    return Trainer(config, tmp_path_factory.mktemp("runs2")).run(), exported


def _app_outputs(folder: RunFolder, x: torch.Tensor) -> torch.Tensor:
    backbone, _, _ = load_run_network(folder)
    with torch.no_grad():
        return backbone(x)


def _no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".partial")]


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript", "onnx"])
def test_round_trip_into_a_path_with_spaces_and_non_ascii_letters(fmt, supervised_run, tmp_path):
    _needs(fmt)
    folder = tmp_path / ODD_FOLDER
    folder.mkdir()
    result = export_run(supervised_run.path, fmt, folder / f"modèle final{SUFFIX[fmt]}")
    assert isinstance(result, ExportResult) and result.path.is_file() and result.size_bytes > 0
    assert result.path.parent.name == ODD_FOLDER and _no_partial_files(folder)
    meta = result.metadata
    assert meta["format"] == "sskt-studio-model" and meta["export_format"] == fmt
    assert meta["arch"] == "tiny_cnn" and meta["num_classes"] == 6 and len(meta["class_names"]) == 6
    assert meta["input_size"] == 32 and len(meta["mean"]) == 3 and meta["method"] == "supervised"
    assert "acc" in meta["val"] and meta["app_version"] and meta["outputs"] == ["logits"]

    # load it as another tool would, without this app's loader, on a batch size it was not traced with
    x = torch.randn(5, 3, 32, 32)
    expected = _app_outputs(supervised_run, x)
    if fmt == "pt":
        body = torch.load(result.path, weights_only=True)
        model = _tiny(6)
        model.load_state_dict(body["state_dict"])
        got = model(x)
        stored = body["meta"]
    elif fmt == "safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        model = _tiny(6)
        model.load_state_dict(load_file(str(result.path)))
        got = model(x)
        with safe_open(str(result.path), framework="pt") as handle:
            stored = {k: json.loads(v) for k, v in handle.metadata().items()}
    elif fmt == "torchscript":
        extra = {"sskt_meta.json": ""}
        got = torch.jit.load(str(result.path), _extra_files=extra)(x)
        stored = json.loads(extra["sskt_meta.json"])
    else:
        import onnx

        model = onnx.load(str(result.path))
        onnx.checker.check_model(model)
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
        stored = json.loads({p.key: p.value for p in model.metadata_props}["sskt_meta"])
        ort = pytest.importorskip("onnxruntime", reason="running the ONNX file needs onnxruntime")
        session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    assert stored["class_names"] == meta["class_names"] and stored["arch"] == "tiny_cnn"
    assert (got.detach() - expected).abs().max().item() <= TOLERANCE
    if fmt != "onnx" or export_module.onnxruntime_available():
        assert result.max_abs_diff is not None and result.max_abs_diff <= TOLERANCE and result.verified
    assert detect_format(result.path) == fmt and load_exported(result.path).metadata["run"] == supervised_run.path.name


def _tiny(classes: int) -> torch.nn.Module:
    from sskt_engine.models import build_architecture

    return build_architecture("tiny_cnn", classes).eval()


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript", "onnx"])
def test_kept_auxiliary_heads_round_trip(fmt, sskt_run, tmp_path):
    _needs(fmt)
    folder, _ = sskt_run
    result = export_run(folder.path, fmt, tmp_path, keep_aux_heads=True)
    assert result.path.name == f"{folder.path.name}{SUFFIX[fmt]}"
    spec = result.metadata["aux_heads"]
    assert spec == {"kind": "transfer_module", "width": 64, "classes": [6], "names": ["exported"]}
    assert result.metadata["outputs"] == ["logits", "aux_0"]
    if fmt == "onnx" and not export_module.onnxruntime_available():
        pytest.skip("onnxruntime is not installed: the ONNX file cannot be run")
    loaded = load_exported(result.path, with_aux_heads=True)
    x = torch.randn(3, 3, 32, 32)
    backbone, meta, aux = load_run_network(folder, keep_aux_heads=True)
    reference = export_module.aux_head_network(backbone, meta["aux_heads"], aux, 32)
    with torch.no_grad():
        expected = reference(x)
    got = loaded.run(x)
    assert len(got) == 2 and all((g - e).abs().max() <= TOLERANCE for g, e in zip(got, expected))
    assert result.max_abs_diff <= TOLERANCE
    # the heads are stripped by default: the file then gives logits only
    stripped = load_exported(export_run(folder.path, fmt, tmp_path / f"plain{SUFFIX[fmt]}").path)
    assert len(stripped.run(x)) == 1 and "aux_heads" not in stripped.metadata


def test_last_checkpoint_and_dml_peer_choice(supervised_run, tmp_path):
    # a two-network run (as DML writes it): peer2 holds other weights than peer1
    run = tmp_path / "dml-run"
    shutil.copytree(supervised_run.path, run)
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    target = state["models"].pop("target")
    state["models"] = {"peer1": target, "peer2": {k: v + 0.01 if v.is_floating_point() else v
                                                  for k, v in target.items()}}
    state["meta"].update(export_network="peer1", networks={"peer1": {"arch": "tiny_cnn"},
                                                           "peer2": {"arch": "tiny_cnn"}})
    torch.save(state, run / "checkpoints" / "best.pt")
    one = export_run(run, "pt", tmp_path / "one.pt")
    two = export_run(run, "pt", tmp_path / "two.pt", network="peer2")
    assert one.metadata["network"] == "peer1" and two.metadata["network"] == "peer2"
    w1, w2 = (torch.load(r.path, weights_only=True)["state_dict"]["fc.bias"] for r in (one, two))
    assert torch.allclose(w1 + 0.01, w2)
    with pytest.raises(UserInputError, match="no network 'peer3'; it has peer1, peer2"):
        export_run(run, "pt", tmp_path / "three.pt", network="peer3")
    last = export_run(supervised_run.path, "pt", tmp_path / "last.pt", checkpoint="last")
    assert last.metadata["checkpoint"] == "last" and last.metadata["epoch"] == 1


# ----------------------------------------------------------------------------- reuse as a source

def test_chained_experiment_uses_an_exported_file_as_source(sskt_run):
    folder, exported = sskt_run
    summary = folder.summary()
    assert summary.status == "finished" and summary.epochs_completed == 1
    source = summary.sources[0]
    assert source["num_classes"] == 6 and source["input_size"] == 32  # from the file's metadata
    from sskt_engine.data.demo_world import demo_splits

    demo = demo_splits("signs")  # the exported model was trained on it, so its metadata carries these
    assert source["mean"] == list(demo.mean) and source["std"] == list(demo.std)


def test_exported_pt_is_a_checkpoint_source_without_arch_or_class_count(supervised_run, tmp_path):
    result = export_run(supervised_run.path, "pt", tmp_path / "model.pt")
    source = build_source(SourceConfig(kind="checkpoint", path=str(result.path)))
    assert source.num_classes == 6 and source.input_size == 32
    assert source.class_names == tuple(result.metadata["class_names"])
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(source.module(x), _app_outputs(supervised_run, x), atol=1e-6)


def test_exported_torchscript_is_a_compiled_source(supervised_run, tmp_path):
    result = export_run(supervised_run.path, "torchscript", tmp_path / "model.torchscript.pt")
    source = build_source(SourceConfig(kind="compiled", path=str(result.path)))
    from sskt_engine.data.demo_world import demo_splits

    assert source.num_classes == 6 and source.input_size == 32
    assert list(source.mean) == list(demo_splits("signs").mean)  # from the file's embedded metadata
    assert source.class_names == tuple(result.metadata["class_names"])


# ----------------------------------------------------------------------------- predict

def _demo_pngs(folder: Path, count: int = 4) -> tuple[list[Path], torch.Tensor]:
    from PIL import Image

    from sskt_engine.data.demo_world import demo_splits

    data = demo_splits("signs")
    paths = []
    for i in range(count):
        path = folder / f"démo image {i}.png"
        Image.fromarray(data.val.images[i].permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    pixels = data.val.images[:count].float() / 255
    mean, std = torch.tensor(data.mean).view(1, 3, 1, 1), torch.tensor(data.std).view(1, 3, 1, 1)
    return paths, (pixels - mean) / std


def _parse_predict(stdout: str) -> dict[str, list[tuple[str, float]]]:
    result: dict[str, list[tuple[str, float]]] = {}
    current = None
    for line in stdout.splitlines():
        if not line.startswith("  "):
            current = line
            result[current] = []
        else:
            name, probability = line.strip().rsplit(maxsplit=1)
            result[current].append((name, float(probability)))
    return result


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript", "onnx"])
def test_predict_gives_the_class_the_app_predicts(fmt, supervised_run, tmp_path, capsys):
    _needs(fmt)
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="predicting with an ONNX file needs onnxruntime")
    model_file = export_run(supervised_run.path, fmt, tmp_path / f"m{SUFFIX[fmt]}").path
    images, normalized = _demo_pngs(tmp_path)
    app_probs = torch.softmax(_app_outputs(supervised_run, normalized), dim=1)
    names = json.loads(json.dumps(torch.load(supervised_run.checkpoint_path("best"), weights_only=True)
                                  ["meta"]["class_names"]))
    capsys.readouterr()
    assert cli_main(["predict", str(model_file), *map(str, images), "--top-k", "3"]) == 0
    printed = _parse_predict(capsys.readouterr().out)
    assert list(printed) == [str(p) for p in images]
    for row, path in enumerate(images):
        top = printed[str(path)]
        assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
        assert top[0][0] == names[int(app_probs[row].argmax())]
        assert top[0][1] == pytest.approx(float(app_probs[row].max()), abs=1e-4)


def test_predict_top_k_is_capped_and_checked(supervised_run, tmp_path):
    model_file = export_run(supervised_run.path, "safetensors", tmp_path / "m.safetensors").path
    images, _ = _demo_pngs(tmp_path, 1)
    predictor = Predictor(model_file)
    [prediction] = predictor.predict(images, top_k=50)
    assert len(prediction.top) == 6 and sum(p for _, p in prediction.top) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(UserInputError, match="at least 1"):
        predictor.predict(images, top_k=0)


def test_predict_refuses_what_is_not_an_exported_model_or_an_image(supervised_run, tmp_path, capsys):
    model_file = export_run(supervised_run.path, "pt", tmp_path / "m.pt").path
    images, _ = _demo_pngs(tmp_path, 1)
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    plain = tmp_path / "plain.pt"
    torch.save(_tiny(6).state_dict(), plain)
    broken_image = tmp_path / "broken.png"
    broken_image.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cases = [
        ([str(supervised_run.checkpoint_path("best")), str(images[0])], "training checkpoint"),
        ([str(plain), str(images[0])], "not exported by SSKT Studio"),
        ([str(text), str(images[0])], "not a model file exported by SSKT Studio"),
        ([str(tmp_path / "missing.pt"), str(images[0])], "does not exist"),
        ([str(model_file), str(broken_image)], "cannot be read as an image"),
        ([str(model_file), str(tmp_path / "nowhere.png")], "does not exist"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert cli_main(["predict", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


# ----------------------------------------------------------------------------- failures leave no trace

def _is_root_like(folder: Path) -> bool:
    """True when a read-only folder still takes files (root ignores permission bits)."""
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except PermissionError:
        return False
    probe.unlink()
    return True


def test_export_into_a_read_only_folder_is_a_clear_error(supervised_run, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if _is_root_like(locked):
            pytest.skip("running as root, which ignores permission bits; the read-only file system test "
                        "below covers the same error")
        with pytest.raises(UserInputError, match="is not writable"):
            export_run(supervised_run.path, "pt", locked / "m.pt")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_export_onto_a_read_only_file_system_is_a_clear_error(supervised_run, tmp_path, monkeypatch):
    # what a read-only mount answers, for root too: the folder looks writable, creating a file fails
    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(export_module, "_folder_writable", lambda folder: True)
    monkeypatch.setattr(export_module.tempfile, "mkstemp", refuse)
    with pytest.raises(UserInputError, match=r"folder .* is not writable \(read-only file system\)"):
        export_run(supervised_run.path, "pt", tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_export_to_impossible_paths_is_a_clear_error(supervised_run, tmp_path):
    a_file = tmp_path / "a file.txt"
    a_file.write_text("x")
    with pytest.raises(UserInputError, match="is a file, not a folder"):
        export_run(supervised_run.path, "pt", a_file / "m.pt")
    with pytest.raises(UserInputError, match="does not exist"):
        export_run(supervised_run.path, "pt", tmp_path / "no such folder" / "m.pt")
    with pytest.raises(UserInputError, match="does not exist"):
        export_run(tmp_path / "no such run", "pt", tmp_path / "m.pt")
    with pytest.raises(UserInputError, match="unknown export format"):
        export_run(supervised_run.path, "h5", tmp_path / "m.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file.txt"]


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "torchscript", "onnx"])
def test_failure_in_the_middle_of_writing_keeps_the_previous_file(fmt, supervised_run, tmp_path, monkeypatch):
    _needs(fmt)
    target = tmp_path / f"model{SUFFIX[fmt]}"
    export_run(supervised_run.path, fmt, target)
    before = target.read_bytes()
    real_writer = export_module.WRITERS[fmt]

    def crash_midway(tmp: Path, item) -> None:
        real_writer(tmp, item)  # the file is being written...
        with open(tmp, "r+b") as handle:  # ...half of it is on disk when the process dies
            handle.truncate(len(before) // 2)
        raise OSError(5, "Input/output error")

    monkeypatch.setitem(export_module.WRITERS, fmt, crash_midway)
    with pytest.raises(ExportFailed, match="Input/output error"):
        export_run(supervised_run.path, fmt, target, checkpoint="last")
    assert target.read_bytes() == before and _no_partial_files(tmp_path)
    with pytest.raises(ExportFailed):  # with no previous file, nothing is left at all
        export_run(supervised_run.path, fmt, tmp_path / f"fresh{SUFFIX[fmt]}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_serializer_dying_mid_write_keeps_the_previous_file(supervised_run, tmp_path, monkeypatch):
    target = tmp_path / "model.pt"
    export_run(supervised_run.path, "pt", target)
    before = target.read_bytes()

    def torch_save_dies(obj, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(before[: len(before) // 3])
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(export_module.torch, "save", torch_save_dies)
    with pytest.raises(ExportFailed, match="writing tiny_cnn as pt failed .killed while writing"):
        export_run(supervised_run.path, "pt", target)
    assert target.read_bytes() == before and _no_partial_files(tmp_path)

    def disk_fills_up(obj, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(before[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module.torch, "save", disk_fills_up)
    with pytest.raises(ExportFailed, match="no space left on the device holding"):
        export_run(supervised_run.path, "pt", target)
    assert target.read_bytes() == before and _no_partial_files(tmp_path)


def test_progress_is_reported_for_a_dialog(supervised_run, tmp_path):
    stages: list[tuple[str, float]] = []
    result = export_run(supervised_run.path, "safetensors", tmp_path, on_progress=lambda s, f: stages.append((s, f)))
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and stages[-1] == ("done", 1.0)
    assert result.diff_text() == f"{result.max_abs_diff:.1e}" and result.verified


def test_a_file_that_computes_something_else_fails_and_is_not_published(supervised_run, tmp_path, monkeypatch):
    target = tmp_path / "model.safetensors"
    export_run(supervised_run.path, "safetensors", target)
    before = target.read_bytes()
    real_load = export_module.load_exported

    def drifting(*args, **kwargs):
        model = real_load(*args, **kwargs)
        run = model.run
        model.run = lambda x: tuple(o + 3e-3 for o in run(x))
        return model

    monkeypatch.setattr(export_module, "load_exported", drifting)
    with pytest.raises(ExportFailed, match=r"up to 3\.00e-03 away .*limit 1e-04") as info:
        export_run(supervised_run.path, "safetensors", target)
    assert info.value.max_abs_diff == pytest.approx(3e-3, rel=1e-3)
    assert target.read_bytes() == before and _no_partial_files(tmp_path)
    with pytest.raises(ExportFailed):
        export_run(supervised_run.path, "safetensors", tmp_path / "new.safetensors")
    assert not (tmp_path / "new.safetensors").exists()


def test_onnx_without_the_onnx_package_is_a_clear_error(supervised_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(UserInputError, match=r"needs the onnx package.*sskt-studio\[onnx\]"):
        export_run(supervised_run.path, "onnx", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_onnxruntime_is_checked_structurally(supervised_run, tmp_path, monkeypatch):
    pytest.importorskip("onnx", reason="ONNX export needs the optional onnx extra")
    monkeypatch.setattr(export_module, "onnxruntime_available", lambda: False)
    result = export_run(supervised_run.path, "onnx", tmp_path / "m.onnx")
    assert result.max_abs_diff is None and not result.verified and "onnx.checker" in result.verification
    assert result.diff_text() == "not measured" and result.path.is_file()


def test_read_model_file_gives_the_backbone_and_metadata(supervised_run, tmp_path):
    for fmt in ("pt", "safetensors"):
        model, meta = read_model_file(export_run(supervised_run.path, fmt, tmp_path).path)
        x = torch.randn(2, 3, 32, 32)
        assert torch.allclose(model(x), _app_outputs(supervised_run, x), atol=1e-6) and meta["arch"] == "tiny_cnn"
    with pytest.raises(UserInputError, match="training checkpoint"):
        read_model_file(supervised_run.checkpoint_path("best"))


# ----------------------------------------------------------------------------- the command line

def _sskt(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "sskt_engine.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_cli_export_exit_codes(supervised_run, tmp_path):
    out = tmp_path / ODD_FOLDER / "cli model.pt"
    out.parent.mkdir()
    done = _sskt("export", str(supervised_run.path), "--format", "pt", "-o", str(out), "--checkpoint", "last")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(out) and out.is_file()
    assert lines[1].startswith("max abs diff: ") and float(lines[1].split()[3]) <= TOLERANCE

    missing = _sskt("export", str(tmp_path / "no-run"), "--format", "pt", "-o", str(tmp_path / "x.pt"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [f"error: run folder {tmp_path / 'no-run'} does not exist"]


def test_cli_export_bad_input_in_process(supervised_run, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    cases = [
        (["export", str(supervised_run.path), "--format", "pt", "-o", str(blocker / "m.pt")], "is a file"),
        (["export", str(tmp_path), "--format", "pt", "-o", str(tmp_path / "m.pt")], "not a run folder"),
        (["export", str(supervised_run.path), "--format", "pt", "-o", str(tmp_path / "m.pt"), "--network", "x"],
         "no network 'x'"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert cli_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as info:  # argparse refuses an unknown format
        cli_main(["export", str(supervised_run.path), "--format", "h5", "-o", str(tmp_path / "m")])
    assert info.value.code == 2
