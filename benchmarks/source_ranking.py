"""Is the transferability ranking worth anything? Candidate sources of clearly different
usefulness on the demo world, each scored before training (LEEP, LogME, NCE: ``sskt
rank-sources``) and then measured: SSKT with that one source for several seeds against
supervised on the same seeds, with the demo preset's recipe unchanged.

    python benchmarks/source_ranking.py [--work DIR] [--seeds 3] [--threads 1] [--report-only]

The candidates (the extra ones are trained here, with the engine itself, the way the shipped
source was made: resources/presets/demo-source.yaml, only the data differs):

    shapes-cnn        the shipped shapes network (builtin:demo_source.safetensors)
    shapes-subset4    the same recipe on 4 of the 12 shapes only (one look of 4 of the 6 signs)
    shapes-noisy70    the same recipe with 70 % of the training labels replaced by a random class
    brightness        an unrelated task: the same images labelled by their brightness quartile
                      (these two on 4,000 of the 12,000 shapes images, as many as the subset has)
    random-init       a small_cnn with random weights (never trained)
    shapes-cnn@8px    the shipped network fed 8-pixel images instead of its native 32

Everything is written under --work (default: a new temporary folder, printed): the candidates'
runs and model files, every SSKT and supervised run, and results.json, which is updated after
every run, so an interrupted benchmark resumes where it stopped and ``--report-only`` prints the
table from whatever has finished. Prints, per candidate: each score, the measured gain of SSKT
over supervised (final validation accuracy, mean ± sample std over the seeds), and Spearman's rank
correlation of each score with the mean gain.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

DEMO = "demo.yaml"
SOURCE_PRESET = "demo-source.yaml"
SUBSET_SHAPES = ("circle", "triangle", "ring", "star")
NOISE_FRACTION = 0.7
# The noisy and the unrelated candidates learn from this many of the 12,000 shapes training images
# (about as many as the 4-shape subset has) and are checked on this many test images: the same
# recipe at a third of the cost, so the benchmark fits a shared 2-core machine.
CANDIDATE_TRAIN_IMAGES = 4000
CANDIDATE_VAL_IMAGES = 1000
BRIGHTNESS_CLASSES = ("darkest quarter", "darker", "lighter", "lightest quarter")


# ----------------------------------------------------------------------------- the candidates' datasets

def _subset_splits(splits: Any) -> Any:
    from sskt_engine.data.sets import ImageSet

    keep = [splits.class_names.index(name) for name in SUBSET_SHAPES]
    remap = torch.full((len(splits.class_names),), -1, dtype=torch.long)
    remap[keep] = torch.arange(len(keep))

    def part(s: ImageSet) -> ImageSet:
        rows = torch.nonzero(remap[s.labels] >= 0).flatten()
        return ImageSet(s.images[rows], remap[s.labels[rows]])

    return dataclasses.replace(splits, train=part(splits.train), val=part(splits.val), class_names=SUBSET_SHAPES)


def _fewer(splits: Any) -> Any:
    keep_train = torch.arange(CANDIDATE_TRAIN_IMAGES)  # the splits are shuffled and balanced already
    keep_val = torch.arange(CANDIDATE_VAL_IMAGES)
    return dataclasses.replace(splits, train=splits.train.subset(keep_train), val=splits.val.subset(keep_val))


def _noisy_splits(splits: Any) -> Any:
    """Symmetric label noise on the training split only (the validation split stays clean, so the
    candidate's own training log shows how well it still learned the shapes)."""
    from sskt_engine.data.sets import ImageSet

    splits = _fewer(splits)
    generator = torch.Generator().manual_seed(7070)
    labels = splits.train.labels.clone()
    flip = torch.rand(len(labels), generator=generator) < NOISE_FRACTION
    labels[flip] = torch.randint(0, len(splits.class_names), (int(flip.sum()),), generator=generator)
    return dataclasses.replace(splits, train=ImageSet(splits.train.images, labels))


def _brightness_splits(splits: Any) -> Any:
    """The shapes images labelled by the quartile of their mean brightness (thresholds from the
    training images): a task about the picture, not about what is drawn in it."""
    from sskt_engine.data.sets import ImageSet

    splits = _fewer(splits)

    def brightness(s: ImageSet) -> torch.Tensor:
        return s.images.float().mean(dim=(1, 2, 3))

    edges = torch.quantile(brightness(splits.train), torch.tensor([0.25, 0.5, 0.75]))

    def part(s: ImageSet) -> ImageSet:
        return ImageSet(s.images, torch.bucketize(brightness(s), edges).long())

    return dataclasses.replace(splits, train=part(splits.train), val=part(splits.val),
                               class_names=BRIGHTNESS_CLASSES)


def register_datasets() -> None:
    from sskt_engine.data.demo_world import demo_splits
    from sskt_engine.registry import DATASETS, DatasetInfo

    made: dict[str, tuple[Callable[[Any], Any], int]] = {
        "bench-shapes-subset4": (_subset_splits, len(SUBSET_SHAPES)),
        "bench-shapes-noisy70": (_noisy_splits, 12),
        "bench-brightness": (_brightness_splits, len(BRIGHTNESS_CLASSES)),
    }
    for name, (make, classes) in made.items():
        if name not in DATASETS.keys():
            DATASETS.add(DatasetInfo(name=name, load=lambda cfg, make=make: make(demo_splits("shapes")),
                                     needs_root=False, image_size=32, num_classes=classes,
                                     description=f"benchmarks/source_ranking.py: {name}"))


# ----------------------------------------------------------------------------- training

def _train(config: Any, runs: Path) -> Any:
    from sskt_engine.trainer import Trainer

    folder = Trainer(config, runs).run()
    summary = folder.summary()
    if summary.status != "finished":
        raise SystemExit(f"{config.name}: {summary.status} {summary.message}")
    return folder


def _random_source(path: Path) -> None:
    """A never-trained small_cnn written as this app's safetensors export (same header keys)."""
    from safetensors.torch import save_file

    from sskt_engine.data.demo_world import SHAPES_CLASSES, demo_splits
    from sskt_engine.network_weights import build_any_architecture

    torch.manual_seed(1234)
    model = build_any_architecture("small_cnn", len(SHAPES_CLASSES))
    splits = demo_splits("shapes")
    meta = {"format": "sskt-studio-model", "arch": "small_cnn", "num_classes": len(SHAPES_CLASSES),
            "class_names": list(SHAPES_CLASSES), "input_size": 32, "mean": list(splits.mean),
            "std": list(splits.std), "method": "none (random initialisation)"}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={k: json.dumps(v) for k, v in meta.items()})


CANDIDATE_NAMES = ("shapes-cnn", "shapes-subset4", "shapes-noisy70", "brightness", "random-init", "shapes-cnn@8px")
TRAINED = {"shapes-subset4": "bench-shapes-subset4", "shapes-noisy70": "bench-shapes-noisy70",
           "brightness": "bench-brightness"}


def candidates(work: Path) -> list[dict[str, Any]]:
    """Each candidate as the preset's source entry (the files may not exist yet)."""
    models = work / "models"
    builtin = "builtin:demo_source.safetensors"
    out = [{"kind": "checkpoint", "path": builtin, "name": "shapes-cnn"}]
    out += [{"kind": "checkpoint", "path": str(models / f"{name}.safetensors"), "name": name}
            for name in ("shapes-subset4", "shapes-noisy70", "brightness", "random-init")]
    out.append({"kind": "checkpoint", "path": builtin, "name": "shapes-cnn@8px", "input_size": 8})
    return out


def make_candidate(work: Path, name: str, log: Callable[[str], None]) -> None:
    """Train (or finish training) and export candidate ``name`` unless its file exists."""
    from sskt_engine.config import load_preset
    from sskt_engine.export import export_run
    from sskt_engine.resources import resource_path
    from sskt_engine.runs import RunFolder
    from sskt_engine.trainer import Trainer

    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / f"{name}.safetensors"
    if target.is_file():
        return
    if name == "random-init":
        _random_source(target)
        return
    if name not in TRAINED:
        return
    start = time.perf_counter()
    runs = work / "candidate-runs"
    earlier = sorted(p for p in runs.glob(f"*-{name}") if RunFolder(p).exists()) if runs.is_dir() else []
    if earlier and RunFolder(earlier[-1]).summary().status != "finished":  # interrupted: go on from its checkpoint
        folder = Trainer.resume(earlier[-1], runs).run()
    elif earlier:
        folder = RunFolder(earlier[-1])
    else:
        cfg = load_preset(resource_path("presets", SOURCE_PRESET), [f"data.dataset={TRAINED[name]}", f"name={name}"])
        folder = _train(cfg, runs)
    export_run(folder.path, "safetensors", target, checkpoint="last")
    summary = folder.summary()
    log(f"trained candidate {name}: val acc on its own task {100 * summary.final_score:.1f}% "
        f"({time.perf_counter() - start:.0f} s)")


def demo_config(sources: list[dict[str, Any]], method: str, seed: int, name: str, extra: list[str]) -> Any:
    from sskt_engine.config import from_dict, load_preset, to_dict
    from sskt_engine.resources import resource_path

    raw = to_dict(load_preset(resource_path("presets", DEMO), extra))
    raw["sources"] = sources
    raw["train"]["seed"] = seed
    raw["name"] = name
    if method != raw["method"]["name"]:
        raw["method"] = {"name": method}
    return from_dict(raw, source=name)


def _load_results(work: Path) -> dict[str, Any]:
    """Every finished run of every benchmark process (results*.json, one file per process)."""
    runs: dict[str, Any] = {}
    for path in sorted(work.glob("results*.json")):
        runs.update(json.loads(path.read_text())["runs"])
    return runs


def _save_results(path: Path, runs: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=2))
    tmp.replace(path)


def _warning_kind(warning: str) -> str:
    """A few words for the table from one of rank-sources' warning sentences."""
    if "uniform" in warning:
        return "close to uniform"
    if "almost nothing" in warning:
        return "near LEEP's floor"
    return "fed too small"


def train_all(work: Path, seeds: list[int], only: list[str], tag: str, extra: list[str],
              log: Callable[[str], None]) -> None:
    """Train the runs of ``only`` (default: all) that no results file holds yet, seed by seed."""
    results_path = work / f"results{'-' + tag if tag else ''}.json"
    mine = json.loads(results_path.read_text())["runs"] if results_path.is_file() else {}
    wanted = only or ["supervised", *CANDIDATE_NAMES]
    for name in wanted:
        if name != "supervised" and name not in CANDIDATE_NAMES:
            raise SystemExit(f"--only: unknown candidate {name!r}; choose from supervised, {', '.join(CANDIDATE_NAMES)}")
    by_name = {c["name"]: c for c in candidates(work)}
    for name in wanted:
        make_candidate(work, name, log)
    for seed in seeds:  # seed-major: a partial benchmark still covers every candidate
        for label in wanted:
            key = f"{label}/s{seed}"
            if key in _load_results(work):
                continue
            sources, method = ([], "supervised") if label == "supervised" else ([by_name[label]], "sskt")
            start = time.perf_counter()
            cfg = demo_config(sources, method, seed, f"rank-{label.replace('@', '-')}-s{seed}", extra)
            summary = _train(cfg, work / "runs").summary()
            mine[key] = {"label": label, "seed": seed, "final": summary.final_score,
                         "best": summary.best_score, "wall_s": time.perf_counter() - start}
            _save_results(results_path, mine)
            log(f"{key}: final {100 * summary.final_score:.2f}%  ({time.perf_counter() - start:.0f} s)")


# ----------------------------------------------------------------------------- report

def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when either side is constant."""
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.mean(rx), statistics.mean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def report(work: Path, extra: list[str]) -> None:
    from sskt_engine.source_ranking import rank_sources

    runs = _load_results(work)
    ready = [c for c in candidates(work) if c["path"].startswith("builtin:") or Path(c["path"]).is_file()]
    start = time.perf_counter()
    config = demo_config(ready, "sskt", 0, "rank-all", extra)
    ranking = rank_sources(config)
    score_seconds = time.perf_counter() - start
    scores = {entry.name: entry for entry in ranking.entries}

    def finals(label: str) -> dict[int, float]:
        return {r["seed"]: r["final"] for r in runs.values() if r["label"] == label and r["final"] is not None}

    supervised = finals("supervised")
    rows = []
    for c in ready:
        own = finals(c["name"])
        gains = [100 * (own[s] - supervised[s]) for s in sorted(own) if s in supervised]  # paired by seed
        accs = [100 * own[s] for s in sorted(own)]
        rows.append((c["name"], scores[c["name"]], accs, gains))
    sup = [100 * v for v in supervised.values()]

    def ms(values: list[float]) -> str:
        if not values:
            return "–"
        if len(values) == 1:
            return f"{values[0]:+.2f}"
        return f"{statistics.mean(values):+.2f} ± {statistics.stdev(values):.2f}"

    print(f"\nscores computed in {score_seconds:.1f} s for {len(ready)} sources on "
          f"{ranking.num_images} labelled images (seed 0's subset)")
    print(f"supervised: {ms(sup).lstrip('+')} % final val acc over {len(sup)} seed(s)\n")
    print("| source | LEEP | LogME | NCE | mean max prob | warning | SSKT final acc % | gain over supervised (points) "
          "| seeds |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for name, entry, accs, gains in sorted(rows, key=lambda r: -r[1].scores["leep"]):
        acc = ms(accs).lstrip("+")
        warn = "; ".join(_warning_kind(w) for w in entry.warnings)
        print(f"| {name} | {entry.scores['leep']:.3f} | {entry.scores['logme']:.3f} | {entry.scores['nce']:.3f} | "
              f"{entry.inspection.max_prob_mean:.3f} | {warn} | {acc} | {ms(gains)} | {len(gains)} |")
    done = [(entry, statistics.mean(gains)) for _, entry, _, gains in rows if gains]
    print()
    if len(done) < 3:
        print("Spearman: needs at least 3 candidates with a measured gain")
        return
    for key in ("leep", "logme", "nce"):
        rho = spearman([e.scores[key] for e, _ in done], [g for _, g in done])
        print(f"Spearman({key}, mean gain) over {len(done)} sources = "
              f"{'undefined (a constant column)' if rho is None else f'{rho:+.2f}'}")


# ----------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="folder for every run and results.json (default: a new temporary folder)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override of the demo preset for every run (the benchmark's own are none)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="train only these rows (supervised or a candidate's name; repeat): to share the work "
                             "between processes, each with its own --tag")
    parser.add_argument("--tag", default="", help="this process's results file: results-TAG.json")
    parser.add_argument("--report-only", action="store_true", help="print the table from results.json, train nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import sskt_engine.catalog  # noqa: F401  registers the built-in architectures, methods, datasets

    register_datasets()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sskt-source-ranking-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}", flush=True)

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    if not args.report_only:
        train_all(work, list(range(args.seeds)), args.only, args.tag, args.set, log)
    report(work, args.set)


if __name__ == "__main__":
    sys.exit(main())
