"""Does SSKT beat supervised training on the built-in multi-label demo? Same preset, same data
subset, same recipe; only the method differs (supervised gets the preset's method section
replaced by its own defaults). Several seeds each; prints mean ± std of the headline metric
(mAP, area under the PR curve) and of the VOC07 11-point mAP.

    python benchmarks/demo_multilabel_transfer.py [--seeds 3] [--first-seed 0] [--preset ...demo-multilabel.yaml]
        [--set k=v]...

SSKT counts as ahead only when its mean exceeds supervised's by more than the two standard
deviations added together.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from sskt_engine.config import loads_preset
from sskt_engine.resources import resource_path
from sskt_engine.trainer import Trainer

from seed_stats import best_cell, best_or_nan, mean_std as stats, percent


def _config(preset_text: str, method: str, overrides: list[str]):
    preset = yaml.safe_load(preset_text)
    if preset["method"]["name"] != method:
        preset["method"] = {"name": method}
    return loads_preset(yaml.safe_dump(preset), overrides=overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=str(resource_path("presets", "demo-multilabel.yaml")))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here (to add seeds to a table)")
    parser.add_argument("--methods", default="supervised,sskt")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    text = Path(args.preset).read_text()

    results: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in args.methods.split(",")}
    with tempfile.TemporaryDirectory() as runs:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for method in results:
                cfg = _config(text, method, [*args.set, f"train.seed={seed}"])
                start = time.perf_counter()
                summary = Trainer(cfg, Path(runs)).run().summary()
                wall = time.perf_counter() - start
                if summary.status != "finished":
                    raise SystemExit(f"{method} seed {seed}: {summary.status} {summary.message}")
                voc07 = summary.final_val.get("map_voc07", float("nan"))
                best = best_or_nan(summary)
                results[method].append((best, summary.final_score, voc07, wall))
                print(f"seed {seed} {method:<10} best {percent(best)}  final "
                      f"{100 * summary.final_score:.2f}  final 11-pt {100 * voc07:.2f}  {wall:.0f}s", flush=True)

    print()
    print("| method | final mAP % (mean ± std) | best mAP % | final VOC07 11-pt mAP % | wall s / run |")
    print("|---|---|---|---|---|")
    final = {}
    for method, rows in results.items():
        fm, fs = stats([100 * r[1] for r in rows])
        best = best_cell([r[0] for r in rows])
        vm, vs = stats([100 * r[2] for r in rows])
        final[method] = (fm, fs)
        print(f"| {method} | {fm:.2f} ± {fs:.2f} | {best} | {vm:.2f} ± {vs:.2f} | "
              f"{statistics.mean(r[3] for r in rows):.0f} |")
    if {"sskt", "supervised"} <= set(final):
        gap = final["sskt"][0] - final["supervised"][0]
        margin = final["sskt"][1] + final["supervised"][1]
        verdict = "SSKT ahead" if gap > margin else "NOT separated"
        print(f"\nSSKT - supervised = {gap:+.2f} mAP points; sum of stds = {margin:.2f}: {verdict} ({args.seeds} seeds)")


if __name__ == "__main__":
    main()
