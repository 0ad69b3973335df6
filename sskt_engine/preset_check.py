"""Check a preset and everything it points at without training (``sskt check``, the GUI before Start).

``check_experiment(cfg)`` reads the dataset's files (present, of the right format), builds every
source (files readable through the safe loader, class counts as declared), resolves the device,
and builds the method's networks on the CPU (architectures known, KD's teacher of the target's
classes, the target's initial weights loadable) exactly as a run would, then stops. It returns
every problem as one sentence (not just the first) and what a run would cost: images per epoch,
steps, parameters of the target and of each source, the side each source sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .config import ExperimentConfig
from .errors import UserInputError


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)  # one sentence each; empty: the preset can run
    lines: list[str] = field(default_factory=list)  # the resolved experiment and its cost, for people
    facts: dict[str, Any] = field(default_factory=dict)  # the same numbers for programs and tests

    @property
    def ok(self) -> bool:
        return not self.problems


def _sentence(exc: BaseException) -> str:
    """The first line of an error's message (the engine's errors are one sentence)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f} M" if count >= 10_000 else f"{count:,}"


def check_experiment(cfg: ExperimentConfig) -> CheckReport:
    from .data import load_dataset
    from .device import device_description, resolve_device
    from .models import parameter_count
    from .sources import build_source
    from .target_init import describe_init

    report = CheckReport()
    out = report.lines
    out.append(f"experiment {cfg.name}: method {cfg.method.name}, target {cfg.target.arch} "
               f"({describe_init(cfg.target)})")

    try:
        device = resolve_device(cfg.train.device)
        out.append(f"device: {device_description(device)}")
        report.facts["device"] = str(device)
    except UserInputError as exc:
        report.problems.append(_sentence(exc))

    data = None
    try:
        data = load_dataset(cfg.data, cfg.train.seed)
    except UserInputError as exc:
        report.problems.append(_sentence(exc))
    if data is not None:
        # the trainer drops the last partial batch when there is more than one batch
        steps = len(data.train) // cfg.train.batch_size if len(data.train) > cfg.train.batch_size else 1
        report.facts.update(train_images=len(data.train), val_images=len(data.val), classes=data.num_classes,
                            image_size=data.image_size, steps_per_epoch=steps,
                            test_images=len(data.test) if data.test is not None else 0)
        split = ("held out of train (the best epoch is chosen on it; the test split is scored beside it)"
                 if data.val_held_out else "the dataset's own test split (the final epoch is reported)")
        out.append(f"data: {cfg.data.dataset} at {cfg.data.root or '(built in)'}: {len(data.train):,} training "
                   f"images, {data.num_classes} classes, {data.image_size} px; validation: {len(data.val):,} images, "
                   f"{split}")
        out.append(f"cost: {len(data.train):,} images per epoch = {steps:,} steps of {cfg.train.batch_size}; "
                   f"{cfg.train.epochs} epochs = {steps * cfg.train.epochs:,} steps, "
                   f"{len(data.train) * cfg.train.epochs:,} images")
        for note in data.notes:
            out.append(f"note: {note}")

    sources = []
    for index, source_cfg in enumerate(cfg.sources):
        try:
            source = build_source(source_cfg, "cpu")
        except UserInputError as exc:
            report.problems.append(f"sources[{index}] ({source_cfg.display_name()}): {_sentence(exc)}")
            continue
        sources.append(source)
        params = parameter_count(source.module)
        report.facts.setdefault("sources", []).append(
            {"name": source.name, "classes": source.num_classes, "input_size": source.input_size,
             "parameters": params})
        out.append(f"source {source.name}: {source.num_classes} classes, sees {source.input_size} px, "
                   f"{_millions(params)} parameters ({source.origin})")

    if data is not None and len(sources) == len(cfg.sources):
        _check_method(cfg, data, sources, report)
    if cfg.paper.mean is not None:
        out.append(f"paper: {cfg.paper.row or cfg.paper.reference}: {cfg.paper.mean:g}"
                   + (f" ± {cfg.paper.std:g}" if cfg.paper.std is not None else "")
                   + (f" ({cfg.paper.metric})" if cfg.paper.metric else ""))
    return report


def _check_method(cfg: ExperimentConfig, data, sources, report: CheckReport) -> None:
    """Build the method's networks on the CPU as the trainer would (its own refusals, the target's
    initial weights) and count their parameters."""
    from .methods import METHODS
    from .methods.base import MethodContext
    from .sources import SourceEnsemble

    ensemble = SourceEnsemble(sources) if sources else None
    ctx = MethodContext(cfg, data.num_classes, data.class_names, data.image_size, torch.device("cpu"), ensemble,
                        data.multi_label, clip_len=getattr(data, "clip_len", 0))
    try:
        method = METHODS.get(cfg.method.name).build(ctx)
    except UserInputError as exc:
        report.problems.append(_sentence(exc))
        return
    except (RuntimeError, ValueError) as exc:  # an architecture that cannot take this data
        report.problems.append(f"the {cfg.method.name} networks cannot be built for this data: {_sentence(exc)}")
        return
    try:
        for name, net in method.networks.items():
            total = sum(p.numel() for p in net.parameters())
            trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
            backbone = sum(p.numel() for p in net.backbone.parameters())
            report.facts.setdefault("networks", {})[name] = {"parameters": total, "trainable": trainable}
            frozen = f", {_millions(total - trainable)} frozen" if trainable < total else ""
            report.lines.append(f"network {name}: {_millions(backbone)} parameters in the backbone, "
                                f"{_millions(total - backbone)} in auxiliary heads{frozen}")
        for note in ctx.notes:
            report.lines.append(f"note: {note}")
    finally:
        method.close()
