"""``sskt rank-sources`` and ``sskt sources``: which candidate source will help, before training.

Both read a preset, take its sources and any ``--source`` given, and make one pass over the
target's labelled images (``source_ranking.rank_sources``). ``rank-sources`` prints the
transferability scores (LEEP, LogME, NCE), best first, and writes them as JSON under
``<runs root>/source-rankings/``; ``sources`` prints what each source sees (its soft labels'
confidence and spread at several input sides, its most frequent classes) and its warnings.

``--source`` names one more candidate: a model file (checkpoint or compiled), a run folder, or
``builtin:NAME``, optionally followed by preset keys of a source, comma-separated
(``--source resnet.pt,arch=resnet18,input_size=224``), or only keys
(``--source kind=torchvision,arch=resnet50``). Exit codes follow ``cli``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from .cli import EXIT_OK, add_threads_argument
from .config import SourceConfig, load_preset, parse_overrides, parse_section
from .errors import UserInputError

__all__ = ["parse_source_spec", "register_commands"]


def _kind_of_path(path: str) -> str:
    from .frozen_source import BUILTIN_PREFIX
    from .model_files.files import EXPORTED_PROGRAM, PT, SAFETENSORS, TORCHSCRIPT, detect_format
    from .runs import RunFolder

    if path.startswith(BUILTIN_PREFIX):
        return "checkpoint"
    local = Path(path).expanduser()
    if local.is_dir():
        if RunFolder(local).exists():
            return "run"
        raise UserInputError(f"--source {path}: a folder must be a run folder of SSKT Studio (it has no preset.yaml)")
    fmt = detect_format(local)  # a missing or unreadable file: its own sentence
    if fmt in (TORCHSCRIPT, EXPORTED_PROGRAM):
        return "compiled"
    if fmt in (PT, SAFETENSORS):
        return "checkpoint"
    raise UserInputError(f"--source {path}: not a model file this app reads as a source (a checkpoint, a TorchScript "
                         "or torch.export file)")


def parse_source_spec(text: str) -> SourceConfig:
    """One ``--source`` argument to a checked source entry (see the module doc)."""
    raw: dict[str, Any] = {}
    for position, item in enumerate(p.strip() for p in text.split(",")):
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals:
            if position:
                raise UserInputError(f"--source {text}: {item!r} is not KEY=VALUE (only the first item may be a path)")
            raw["path"] = item
            continue
        try:
            raw[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raw[key.strip()] = value
    if not raw:
        raise UserInputError("--source needs a model file, a run folder or KEY=VALUE items")
    if "kind" not in raw:
        if "path" not in raw:
            raise UserInputError(f"--source {text}: say which kind of source (kind=torchvision, ...) or give a path")
        raw["kind"] = _kind_of_path(str(raw["path"]))
    if isinstance(raw.get("path"), (int, float)):
        raw["path"] = str(raw["path"])
    return parse_section(SourceConfig, raw, "source")


def _ranking(args: argparse.Namespace):
    from . import catalog  # noqa: F401  every built-in source kind, architecture and dataset
    from .device import resolve_device
    from .source_ranking import rank_sources

    overrides = list(args.set or [])
    parse_overrides(overrides)  # a malformed item is named before the preset is read
    config = load_preset(args.preset, overrides)
    extra = [parse_source_spec(text) for text in args.source or []]
    device = resolve_device(args.device or config.train.device)

    def progress(text: str, fraction: float) -> None:
        if args.verbose:
            print(f"[{100 * fraction:3.0f}%] {text}", flush=True)

    ranking = rank_sources(config, extra, include_preset_sources=not args.no_preset_sources,
                           sort_key=getattr(args, "sort", "leep"), max_images=args.max_images, device=device,
                           on_progress=progress)
    return config, ranking


def cmd_rank_sources(args: argparse.Namespace) -> int:
    from .source_ranking import ranking_table, write_ranking

    config, ranking = _ranking(args)
    print(ranking_table(ranking), end="", flush=True)
    if not args.no_json:
        print(f"ranking: {write_ranking(ranking, args.runs_dir, config)}", flush=True)
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    from .source_ranking import inspection_text

    _, ranking = _ranking(args)
    print(inspection_text(ranking), end="", flush=True)
    return EXIT_OK


def _common(p: argparse.ArgumentParser) -> None:
    from .source_ranking import DEFAULT_MAX_IMAGES

    p.add_argument("preset", help="preset file: the target's data, its sources and the method's temperature")
    p.add_argument("--source", action="append", metavar="SPEC",
                   help="one more candidate: a model file, a run folder or builtin:NAME, optionally followed by "
                        "source keys (',arch=resnet18,input_size=224'); or keys alone ('kind=torchvision,"
                        "arch=resnet50'); repeat for several")
    p.add_argument("--no-preset-sources", action="store_true", help="only the --source candidates, not the preset's")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset key, e.g. train.seed=1")
    p.add_argument("--max-images", type=int, default=DEFAULT_MAX_IMAGES, metavar="N",
                   help=f"score at most N labelled images, a sample seeded by train.seed (default {DEFAULT_MAX_IMAGES})")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the preset's train.device)")
    p.add_argument("--verbose", action="store_true", help="print progress lines")
    add_threads_argument(p)


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    from .source_ranking import SORT_KEYS

    p = subparsers.add_parser(
        "rank-sources", help="score candidate sources for a preset's target before training (LEEP, LogME, NCE)",
        description="One pass over the target's labelled images: LEEP (the source's soft labels at the preset's "
                    "temperature), LogME (its penultimate features) and NCE (its arg-max labels) per source, at the "
                    "input side the preset feeds it; higher is better. Prints a table, best first, with warnings, "
                    "and writes it as JSON under <runs-dir>/source-rankings/ (last line: 'ranking: <file>').")
    _common(p)
    p.add_argument("--sort", default="leep", choices=SORT_KEYS, help="score to sort by (default: leep)")
    p.add_argument("--runs-dir", help="runs folder; the JSON goes to <runs-dir>/source-rankings/")
    p.add_argument("--no-json", action="store_true", help="print only, write no JSON file")
    p.set_defaults(func=cmd_rank_sources)

    p = subparsers.add_parser(
        "sources", help="inspect what each source sees on the target's images (soft labels, sizes, warnings)",
        description="For each source: its most frequent classes on the target's labelled images, and the mean max "
                    "probability and entropy of its soft labels at the preset's temperature, at the side the preset "
                    "feeds it, its native side, twice that, and the target's; with a warning when the soft labels "
                    "are close to uniform or the images are much smaller than its native side.")
    _common(p)
    p.set_defaults(func=cmd_sources)
