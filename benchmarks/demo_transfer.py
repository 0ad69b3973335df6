"""Does SSKT beat supervised training on the built-in demo? Same preset, same data split,
same recipe; only method.name differs. Three seeds each; prints mean ± std.

    python benchmarks/demo_transfer.py [--seeds 3] [--preset resources/presets/demo.yaml] [--set k=v]...

SSKT counts as ahead only when its mean exceeds supervised's by more than the two
standard deviations added together.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sskt_engine.config import load_preset
from sskt_engine.resources import resource_path
from sskt_engine.trainer import Trainer

from seed_stats import best_cell, best_or_nan, mean_std as stats, percent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=str(resource_path("presets", "demo.yaml")))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    results: dict[str, list[tuple[float, float, float]]] = {"supervised": [], "sskt": []}
    with tempfile.TemporaryDirectory() as runs:
        for seed in range(args.seeds):
            for method in results:
                cfg = load_preset(args.preset, [*args.set, f"method.name={method}", f"train.seed={seed}"])
                start = time.perf_counter()
                summary = Trainer(cfg, Path(runs)).run().summary()
                if summary.status != "finished":
                    raise SystemExit(f"{method} seed {seed}: {summary.status} {summary.message}")
                best = best_or_nan(summary)
                results[method].append((best, summary.final_score, time.perf_counter() - start))
                print(f"seed {seed} {method:<10} best {percent(best)}  "
                      f"final {100 * summary.final_score:.2f}%  {time.perf_counter() - start:.0f}s", flush=True)

    print()
    print("| method | final val acc % (mean ± std) | best val acc % | wall s / run |")
    print("|---|---|---|---|")
    final = {}
    for method, rows in results.items():
        fm, fs = stats([100 * r[1] for r in rows])
        final[method] = (fm, fs)
        print(f"| {method} | {fm:.2f} ± {fs:.2f} | {best_cell([r[0] for r in rows])} | "
              f"{statistics.mean(r[2] for r in rows):.0f} |")
    gap = final["sskt"][0] - final["supervised"][0]
    margin = final["sskt"][1] + final["supervised"][1]
    verdict = "SSKT ahead" if gap > margin else "NOT separated"
    print(f"\nSSKT - supervised = {gap:+.2f} points; sum of stds = {margin:.2f}: {verdict} ({args.seeds} seeds)")


if __name__ == "__main__":
    main()
