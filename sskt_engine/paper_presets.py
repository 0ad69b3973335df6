"""The SSKT paper's image rows as presets: one per table row and method, with the published figure.

Hong, Yoon, Choi, Kim, "Self-Supervised Knowledge Transfer via Loosely Supervised Auxiliary
Tasks", WACV 2022 (arXiv 2110.12696). ``PAPER_ROWS`` holds every image row of its results
(``docs/METHOD.md``: CIFAR-10/100 and STL-10 with ResNet-20/32, VOC 2007 with ResNet-18/50, the
MAXL comparison on CIFAR-10) and ``paper_presets()`` turns each (row, method) into the text of a
preset under ``resources/presets/paper/``; ``benchmarks/make_paper_presets.py`` writes them and a
test checks that the shipped files are exactly what this module generates.

The authors' recipe throughout: SGD momentum 0.9, lr 0.1, weight decay 5e-4, batch 128, 200
epochs, lr x0.2 at epochs 60/120/160. Sources: torchvision's ImageNet ResNet-50 (I; the
IMAGENET1K_V1 weights torchvision served in 2021) and the CSAIL Places365 ResNet-50 (P), fed the
target's augmented images upsampled by 7/3 (CIFAR, 32 -> 74 px) or to 224 px (STL-10's 96 px; VOC
is read at 224 px). Scores are read on the dataset's test split at the final epoch (data.val_split
0: no best epoch is chosen on the test split; see run_summary.NO_SELECTION_REASON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

REFERENCE = "Hong et al., Self-Supervised Knowledge Transfer via Loosely Supervised Auxiliary Tasks, WACV 2022"
PRESET_FOLDER = ("presets", "paper")  # under the app's resources
DATA_ROOT = "~/datasets"  # holds cifar-10-batches-py/, cifar-100-python/, stl10_binary/, VOCdevkit/
TEACHER_ROOT = "~/sskt-paper/teachers"  # KD teachers: supervised runs on the target data (replicate_paper trains them)
CIFAR_SOURCE_SIZE = 74  # 32 px x 7/3, as the authors upsampled CIFAR for the sources
LARGE_SOURCE_SIZE = 224

RECIPE = {"epochs": 200, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005,
          "schedule": "multistep", "milestones": [60, 120, 160], "gamma": 0.2, "device": "auto", "seed": 0}

METHOD_SECTIONS: dict[str, dict[str, Any]] = {
    "supervised": {"name": "supervised"},
    "kd": {"name": "kd", "teacher": 0, "distill_weight": 0.9, "temperature": 4.0},
    "dml": {"name": "dml", "peers": 2},
    "sskt": {"name": "sskt", "alpha": 0.1, "temperature": 3.0, "aux_loss": "soft_ce", "head": "transfer_module"},
    "maxl": {"name": "maxl", "psi": 5},
}
METHOD_TITLES = {"supervised": "scratch", "kd": "KD", "dml": "DML", "sskt": "SSKT", "maxl": "MAXL"}


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's tables: a target dataset and network, and the figure per method."""

    key: str  # file name stem: <key>-<method>.yaml
    title: str  # "CIFAR-10, ResNet-20"
    table: str  # which table of the paper
    dataset: str
    arch: str
    figures: dict[str, float | None]  # method -> published mean (percent); None: run, but no figure
    sskt_sources: str = "P+I"  # the sources of the row's SSKT figure: I, P or P+I
    teacher_arch: str = "resnet110"  # KD's teacher (trained supervised on the target data first)
    image_size: int | None = None
    amp: bool = False
    note: str = ""
    extra_data: dict[str, Any] = field(default_factory=dict)

    @property
    def source_size(self) -> int:
        return CIFAR_SOURCE_SIZE if self.dataset.startswith("cifar") else LARGE_SOURCE_SIZE

    @property
    def metric(self) -> str:
        return "map_samples" if self.dataset.startswith("voc") else "acc"


_MAIN = "results table (top-1 %, mean of 3 runs)"
_VOC = "Pascal VOC 2007 table (mAP, the authors' sample-averaged mAP, mean of 3 runs)"
_MAXL = "MAXL comparison on CIFAR-10 (top-1 %)"

PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("cifar10-resnet20", "CIFAR-10, ResNet-20", _MAIN, "cifar10", "resnet20",
             {"supervised": 92.19, "kd": 91.75, "dml": 92.37, "sskt": 92.46}, "P+I"),
    PaperRow("cifar10-resnet32", "CIFAR-10, ResNet-32", _MAIN, "cifar10", "resnet32",
             {"supervised": 93.21, "kd": 92.61, "dml": 93.26, "sskt": 93.38}, "P+I"),
    PaperRow("cifar100-resnet20", "CIFAR-100, ResNet-20", _MAIN, "cifar100", "resnet20",
             {"supervised": 68.26, "kd": 68.66, "dml": 69.48, "sskt": 68.63}, "I"),
    PaperRow("cifar100-resnet32", "CIFAR-100, ResNet-32", _MAIN, "cifar100", "resnet32",
             {"supervised": 70.33, "kd": 70.5, "dml": 71.9, "sskt": 70.94}, "P+I"),
    PaperRow("stl10-resnet20", "STL-10, ResNet-20", _MAIN, "stl10", "resnet20",
             {"supervised": 81.15, "kd": 77.67, "dml": 78.23, "sskt": 84.56}, "P+I"),
    PaperRow("stl10-resnet32", "STL-10, ResNet-32", _MAIN, "stl10", "resnet32",
             {"supervised": 81.19, "kd": 76.07, "dml": 77.14, "sskt": 83.68}, "I"),
    PaperRow("voc2007-resnet18", "VOC 2007, ResNet-18", _VOC, "voc2007", "resnet18",
             {"supervised": 67.28, "kd": 64.11, "dml": 39.89, "sskt": 76.42}, "P+I", teacher_arch="resnet50",
             image_size=224, amp=True),
    PaperRow("voc2007-resnet34", "VOC 2007, ResNet-34", _VOC, "voc2007", "resnet34",
             {"supervised": None, "kd": None, "dml": None, "sskt": None}, "P+I", teacher_arch="resnet50",
             image_size=224, amp=True, note="the ResNet-34 figures are not recorded in docs/METHOD.md; run for "
             "completeness, no published number to compare"),
    PaperRow("voc2007-resnet50", "VOC 2007, ResNet-50", _VOC, "voc2007", "resnet50",
             {"supervised": 61.16, "kd": 62.39, "dml": 39.65, "sskt": 77.1}, "P+I", teacher_arch="resnet50",
             image_size=224, amp=True),
    PaperRow("maxl-cifar10-vgg16", "CIFAR-10, VGG-16 (MAXL comparison)", _MAXL, "cifar10", "vgg16_bn_cifar",
             {"maxl": 93.49, "sskt": 94.22}, "P+I",
             note="the sources of this SSKT figure are not stated in docs/METHOD.md; P+I is assumed"),
    # The ResNet-20 SSKT figure of the MAXL comparison (92.46) is cifar10-resnet20-sskt's.
    PaperRow("maxl-cifar10-resnet20", "CIFAR-10, ResNet-20 (MAXL comparison)", _MAXL, "cifar10", "resnet20",
             {"maxl": 91.56}),
)


def _sources(row: PaperRow, method: str) -> list[dict[str, Any]]:
    size = row.source_size
    if method == "kd":
        return [{"kind": "run", "path": f"{TEACHER_ROOT}/{row.dataset}-{row.teacher_arch}", "name": "teacher"}]
    if method != "sskt":
        return []
    sources = []
    if "P" in row.sskt_sources:
        sources.append({"kind": "places365", "arch": "resnet50", "input_size": size, "name": "places365"})
    if "I" in row.sskt_sources:
        sources.append({"kind": "torchvision", "arch": "resnet50", "weights": "IMAGENET1K_V1", "input_size": size,
                        "name": "imagenet"})
    return sources


def preset_name(row: PaperRow, method: str) -> str:
    return f"paper-{row.key}-{method}"


def preset_dict(row: PaperRow, method: str) -> dict[str, Any]:
    """The preset of ``row`` trained with ``method``, as the plain dict a YAML file holds."""
    data: dict[str, Any] = {"dataset": row.dataset, "root": DATA_ROOT, "val_split": 0.0, "augment": True}
    if row.image_size:
        data["image_size"] = row.image_size
    data.update(row.extra_data)
    title = METHOD_TITLES[method] + (f" ({row.sskt_sources})" if method == "sskt" else "")
    notes = [row.note] if row.note else []
    if method == "kd":
        notes.append(f"the teacher is a supervised {row.teacher_arch} trained on the target data with the same recipe "
                     f"(our choice: docs/METHOD.md does not name the authors' teacher); replicate_paper.py trains it "
                     f"into {TEACHER_ROOT}/")
    paper: dict[str, Any] = {"reference": REFERENCE, "row": f"{row.table}: {row.title}, {title}",
                             "metric": row.metric, "runs": 3}
    if row.figures.get(method) is not None:
        paper["mean"] = row.figures[method]
    if notes:
        paper["note"] = "; ".join(notes)
    return {
        "schema_version": 2,
        "name": preset_name(row, method),
        "target": {"arch": row.arch},
        "sources": _sources(row, method),
        "data": data,
        "method": dict(METHOD_SECTIONS[method]),
        "train": {**RECIPE, "amp": row.amp},
        "paper": paper,
    }


def _header(row: PaperRow, method: str) -> str:
    figure = row.figures.get(method)
    published = f"published {figure:g}" if figure is not None else "no published figure"
    used = row.sskt_sources if method == "sskt" else ""
    lines = [
        f"The SSKT paper's {row.title} row, {METHOD_TITLES[method]}: {published} ({row.table}).",
        "Generated by benchmarks/make_paper_presets.py from sskt_engine/paper_presets.py; edit those, not this file.",
        "Needs files this app never downloads:",
        f"  - the {row.dataset} files under {DATA_ROOT} (data.root)",
    ]
    if "I" in used:
        lines.append("  - torchvision's resnet50 IMAGENET1K_V1 weights (resnet50-0676ba61.pth) in "
                     "$TORCH_HOME/hub/checkpoints")
    if "P" in used:
        lines.append("  - resnet50_places365.pth.tar (places2.csail.mit.edu) in the Places365 folder "
                     "($SSKT_PLACES365_DIR)")
    if method == "kd":
        lines.append(f"  - the KD teacher run {TEACHER_ROOT}/{row.dataset}-{row.teacher_arch}")
    lines.append("Check it with `sskt check <this file>`; run a whole row with benchmarks/replicate_paper.py.")
    return "".join(f"# {line}\n" for line in lines)


def paper_presets() -> dict[str, str]:
    """File name -> preset text, for every (row, method) with a figure or a place in the row."""
    out = {}
    for row in PAPER_ROWS:
        for method in row.figures:
            body = preset_dict(row, method)
            paper = {"paper": body.pop("paper")}  # block style: it is read by people
            text = (yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120)
                    + yaml.safe_dump(paper, sort_keys=False, default_flow_style=False, width=120))
            out[f"{row.key}-{method}.yaml"] = _header(row, method) + text
    return out


def paper_preset_files() -> list:
    """The shipped paper presets (paths), sorted."""
    from .resources import resource_path

    return sorted(resource_path(*PRESET_FOLDER).glob("*.yaml"))
