"""Model files a person might be sent (issue 6, item 10): truncated and damaged files, wrong
tensor shapes, wrong class counts, safetensors headers that lie, and malicious pickles.

Every file goes through the code paths that open model files: a checkpoint source
(``build_source``), ``sources.read_tensor_file``, ``export.read_model_file`` (the exported
model reader) and, for run checkpoints, resume and export. The only acceptable outcomes are
a loaded model or a ``UserInputError`` with one sentence naming the file; for a malicious
pickle the sentence says the file was refused and why, and the marker file its unpickling
would create never appears. tests/test_sources.py already covers a source's class-count
mismatch, missing/unexpected keys, the wrong architecture and a first malicious pickle.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import random
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sskt_engine.config import SourceConfig, loads_preset
from sskt_engine.errors import SourceError, UserInputError
from sskt_engine.export import export_run, load_exported, read_model_file
from sskt_engine.models import build_architecture
from sskt_engine.sources import build_source, read_tensor_file
from sskt_engine.trainer import Trainer

TINY = """\
name: files
target: {arch: tiny_cnn}
data: {dataset: demo, labels_per_class: 4}
method: {name: supervised}
train: {epochs: 1, batch_size: 16, device: cpu, seed: 1}
"""


def _source(path: Path, **kw) -> SourceConfig:
    return SourceConfig(kind="checkpoint", path=str(path), arch=kw.pop("arch", "tiny_cnn"), **kw)


def _refuses(path: Path, *, source_kw: dict | None = None) -> list[str]:
    """Open ``path`` every way the app does; each must refuse with a UserInputError naming the
    file. Returns the messages."""
    messages = []
    with pytest.raises(SourceError) as info:
        build_source(_source(path, **(source_kw or {"num_classes": 6})))
    messages.append(str(info.value))
    with pytest.raises(UserInputError) as info:
        read_model_file(path)
    messages.append(str(info.value))
    for message in messages:
        assert path.name in message and "\n" not in message, message
    return messages


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A trained run, its pt and safetensors exports, and plain state_dict files of tiny_cnn."""
    tmp = tmp_path_factory.mktemp("model-files")
    run = Trainer(loads_preset(TINY), tmp / "runs").run()
    out = {"run": run.path, "export_pt": tmp / "export.pt", "export_st": tmp / "export.safetensors"}
    export_run(run.path, "pt", out["export_pt"])
    export_run(run.path, "safetensors", out["export_st"])
    torch.manual_seed(0)
    state = build_architecture("tiny_cnn", 6).state_dict()
    out["zip"] = tmp / "tiny.pt"
    torch.save(state, out["zip"])
    out["legacy"] = tmp / "tiny.pth.tar"
    torch.save(state, out["legacy"], _use_new_zipfile_serialization=False)
    out["st"] = tmp / "tiny.safetensors"
    save_file(state, out["st"])
    return out


def test_the_reference_files_load(files):
    for key in ("zip", "legacy", "st"):
        assert build_source(_source(files[key], num_classes=6)).num_classes == 6
    for key in ("export_pt", "export_st"):
        model, meta = read_model_file(files[key])
        assert meta["num_classes"] == 6 and model(torch.rand(1, 3, 32, 32)).shape == (1, 6)


# ----------------------------------------------------------------------------- truncated and damaged

def _cuts(size: int) -> list[int]:
    return sorted(set(range(0, 80, 7)) | set(range(0, size, max(1, size // 40))) | {size - 1})


@pytest.mark.parametrize("key", ["zip", "st", "export_pt", "export_st"])
def test_truncated_files_are_refused_with_a_sentence(files, tmp_path, key):
    data = files[key].read_bytes()
    path = tmp_path / files[key].name
    for cut in _cuts(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(UserInputError) as info:
            read_model_file(path)
        assert path.name in str(info.value)
        if key in ("zip", "st"):
            with pytest.raises(SourceError):
                build_source(_source(path, num_classes=6))


def _damaged(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


@pytest.mark.parametrize("key", ["st", "export_st"])
def test_damaged_safetensors_never_raise_anything_but_a_sentence(files, tmp_path, key):
    """Random bytes overwritten: either the file still loads (the damage hit tensor data) or
    it is refused; never an uncaught exception."""
    data = files[key].read_bytes()
    path = tmp_path / files[key].name
    for seed in range(40):
        path.write_bytes(_damaged(data, seed))
        for opener in (read_tensor_file, read_model_file):
            try:
                opener(path)
            except UserInputError:
                pass


def _zip_with(path: Path, *, data_pkl: bytes | None = None, extra_name: str | None = None) -> Path:
    """A zip-format torch file of tiny_cnn, with data.pkl replaced and/or one more entry."""
    buffer = io.BytesIO()
    torch.save(build_architecture("tiny_cnn", 6).state_dict(), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data_pkl if data_pkl is not None and info.filename.endswith("/data.pkl") else data)
        if extra_name:
            target.writestr(extra_name, b"x")
    return path


def _damaged_torch_files(tmp: Path, case: str, files: dict[str, Path]) -> list[Path]:
    if case == "truncated legacy .pth.tar":
        data = files["legacy"].read_bytes()
        paths = []
        for cut in _cuts(len(data)):
            path = tmp / f"cut{cut}.pth.tar"
            path.write_bytes(data[:cut])
            paths.append(path)
        return paths
    if case == "data.pkl referring to a missing memo entry":
        return [_zip_with(tmp / "memo.pt", data_pkl=b"\x80\x02h\x07.")]
    path = _zip_with(tmp / "names.pt", extra_name="tiny/\u00e9.bin")  # flagged UTF-8, then made invalid
    path.write_bytes(path.read_bytes().replace("\u00e9".encode(), b"\xff\xfe"))
    return [path]


@pytest.mark.parametrize("case", ["truncated legacy .pth.tar", "data.pkl referring to a missing memo entry",
                                  "an archive entry name that is not UTF-8"])
def test_damaged_torch_files_are_refused_with_a_sentence(files, tmp_path, case):
    for path in _damaged_torch_files(tmp_path, case, files):
        for opener in (read_tensor_file, read_model_file):
            try:
                opener(path)
            except UserInputError:
                pass


# ----------------------------------------------------------------------------- shapes and class counts

def test_wrong_tensor_shapes_in_an_exported_file(files, tmp_path):
    obj = torch.load(files["export_pt"], weights_only=True)
    name = next(k for k, v in obj["state_dict"].items() if v.dim() == 4)
    obj["state_dict"][name] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "reshaped.pt"
    torch.save(obj, path)
    with pytest.raises(UserInputError, match="reshaped.pt does not match its own metadata"):
        read_model_file(path)

    tensors = {k: v.contiguous() for k, v in obj["state_dict"].items()}
    header = {k: json.dumps(v) for k, v in obj["meta"].items()}
    st = tmp_path / "reshaped.safetensors"
    save_file(tensors, st, metadata=header)
    with pytest.raises(UserInputError, match="reshaped.safetensors does not match its own metadata"):
        read_model_file(st)


def test_wrong_tensor_shapes_in_a_source_checkpoint_name_the_tensor(tmp_path):
    state = build_architecture("tiny_cnn", 6).state_dict()
    name = next(k for k, v in state.items() if v.dim() == 4)
    state[name] = torch.zeros(1, *state[name].shape[1:])
    path = tmp_path / "narrow.pt"
    torch.save(state, path)
    with pytest.raises(SourceError, match=rf"narrow.pt: tensor {name} has shape \(1, .*right architecture"):
        build_source(_source(path, num_classes=6))


def test_wrong_class_count_in_an_exported_file(files, tmp_path):
    obj = torch.load(files["export_pt"], weights_only=True)
    obj["meta"]["num_classes"] = 7  # the weights have 6
    path = tmp_path / "seven.pt"
    torch.save(obj, path)
    with pytest.raises(UserInputError, match="seven.pt does not match its own metadata"):
        read_model_file(path)


def test_a_source_whose_metadata_lies_about_its_class_count(files, tmp_path):
    state = {k: v for k, v in build_architecture("tiny_cnn", 6).state_dict().items()}
    path = tmp_path / "lying.safetensors"
    save_file(state, path, metadata={"arch": json.dumps("tiny_cnn"), "num_classes": "7"})
    with pytest.raises(SourceError, match="lying.safetensors has 6 output classes, but 7 were expected"):
        build_source(SourceConfig(kind="checkpoint", path=str(path)))


@pytest.mark.parametrize("bad", [-1, "abc", None, 10**30])
def test_impossible_class_counts_in_metadata_are_refused(files, tmp_path, bad):
    obj = torch.load(files["export_pt"], weights_only=True)
    obj["meta"]["num_classes"] = bad
    path = tmp_path / "impossible.pt"
    torch.save(obj, path)
    with pytest.raises(UserInputError):
        read_model_file(path)


# ----------------------------------------------------------------------------- lying safetensors headers

def _safetensors(path: Path, header: dict, data: bytes = b"\0" * 64, length: int | None = None) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


F32_2x2 = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
LYING_HEADERS = {
    "offsets past the end": ({"w": {**F32_2x2, "data_offsets": [0, 6400]}}, None),
    "shape larger than its bytes": ({"w": {**F32_2x2, "shape": [40, 40]}}, None),
    "dtype wider than its bytes": ({"w": {**F32_2x2, "dtype": "F64", "data_offsets": [0, 8]}}, None),
    "unknown dtype": ({"w": {**F32_2x2, "dtype": "Q99"}}, None),
    "negative shape": ({"w": {**F32_2x2, "shape": [-2, 2]}}, None),
    "shape overflowing": ({"w": {**F32_2x2, "shape": [2**40, 2**40]}}, None),
    "reversed offsets": ({"w": {**F32_2x2, "data_offsets": [16, 0]}}, None),
    "overlapping tensors": ({"a": F32_2x2, "b": F32_2x2}, None),
    "non-text metadata": ({"__metadata__": {"arch": 5}, "w": F32_2x2}, None),
    "header length past the end": ({"w": F32_2x2}, 10_000),
    "header length of exabytes": ({"w": F32_2x2}, 2**62),
}


@pytest.mark.parametrize("lie", list(LYING_HEADERS))
def test_a_safetensors_header_that_lies_is_refused(tmp_path, lie):
    header, length = LYING_HEADERS[lie]
    path = _safetensors(tmp_path / "lies.safetensors", header, length=length)
    with pytest.raises(SourceError, match=r"lies.safetensors is not a readable safetensors file \(.+\)"):
        build_source(_source(path, num_classes=6))
    with pytest.raises(UserInputError, match="lies.safetensors"):
        read_model_file(path)


def test_a_safetensors_export_whose_metadata_is_not_ours_is_refused(files, tmp_path):
    tensors = {k: v.contiguous() for k, v in torch.load(files["export_pt"], weights_only=True)["state_dict"].items()}
    path = tmp_path / "foreign.safetensors"
    save_file(tensors, path, metadata={"format": json.dumps("something-else")})
    with pytest.raises(UserInputError, match="foreign.safetensors was not exported by SSKT Studio"):
        read_model_file(path)


# ----------------------------------------------------------------------------- malicious pickles

class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


class _SystemPayload(_Payload):
    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _malicious_files(tmp: Path, marker: Path) -> dict[str, Path]:
    files = {}
    files["raw pickle .pth"] = tmp / "evil.pth"
    files["raw pickle .pth"].write_bytes(pickle.dumps({"state_dict": _Payload(marker)}, protocol=2))
    files["torch.save .pt"] = tmp / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _SystemPayload(marker)}, files["torch.save .pt"])
    files["legacy .pth.tar"] = tmp / "evil.pth.tar"
    torch.save({"state_dict": _Payload(marker)}, files["legacy .pth.tar"], _use_new_zipfile_serialization=False)
    files["crafted data.pkl in a zip .pt"] = tmp / "crafted.pt"
    _zip_with(files["crafted data.pkl in a zip .pt"], data_pkl=pickle.dumps({"w": _Payload(marker)}, protocol=2))
    return files


MALICIOUS = ["raw pickle .pth", "torch.save .pt", "legacy .pth.tar", "crafted data.pkl in a zip .pt"]


@pytest.mark.parametrize("name", MALICIOUS)
def test_the_payload_really_runs_code_when_unpickled_unsafely(tmp_path, name):
    """The control: without the app's protection each file would create its marker."""
    marker = tmp_path / "CONTROL"
    path = _malicious_files(tmp_path, marker)[name]
    if name == "raw pickle .pth":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("name", MALICIOUS)
def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path, name):
    marker = tmp_path / "MARKER"
    path = _malicious_files(tmp_path, marker)[name]
    messages = _refuses(path)
    with pytest.raises(SourceError) as info:
        read_tensor_file(path)
    messages.append(str(info.value))
    with pytest.raises(UserInputError) as info:
        load_exported(path)
    messages.append(str(info.value))
    for message in messages:
        assert f"{path.name} was refused" in message and "could run code on this machine" in message, message
    assert not marker.exists()


def test_the_refusal_names_the_forbidden_global_cleanly(tmp_path):
    path = tmp_path / "exec.pt"
    torch.save({"w": _Payload(tmp_path / "MARKER")}, path)
    with pytest.raises(SourceError) as info:
        read_tensor_file(path)
    message = str(info.value)
    assert "exec" in message and "(upported" not in message and "add_safe_globals" not in message


def test_a_malicious_run_checkpoint_is_refused_by_resume_export_and_sources(files, tmp_path):
    import shutil

    run = tmp_path / files["run"].name
    shutil.copytree(files["run"], run)
    marker = tmp_path / "MARKER"
    evil = _malicious_files(tmp_path, marker)["torch.save .pt"]
    for which in ("last", "best"):
        shutil.copyfile(evil, run / "checkpoints" / f"{which}.pt")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "stopped"}))

    with pytest.raises(UserInputError, match="last checkpoint of run .* was refused: .*could run code"):
        Trainer.resume(run).run()
    with pytest.raises(UserInputError, match="refused"):
        export_run(run, "pt", tmp_path / "out.pt")
    with pytest.raises(SourceError, match="refused"):
        build_source(SourceConfig(kind="run", path=str(run)))
    assert not marker.exists() and not (tmp_path / "out.pt").exists()
