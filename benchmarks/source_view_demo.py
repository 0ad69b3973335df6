"""What the sources should see, with evidence: SSKT on the built-in demo with
``train.source_view`` augmented (the paper's way, sources run every step) against clean
(un-augmented images, the sources' outputs computed once and cached). Same preset, seeds and
recipe; only the view differs. Prints each run and mean ± std per view.

    python benchmarks/source_view_demo.py [--seeds 3] [--views augmented,clean] [--threads 1] [--set k=v]...

The views can be run as separate processes (``--views clean``) and their printed rows
put side by side; every run is independent.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import sskt_engine.catalog  # noqa: F401  registers the built-in methods, datasets and sources
from sskt_engine.config import load_preset
from sskt_engine.resources import resource_path
from sskt_engine.trainer import Trainer

from seed_stats import mean_std as stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=str(resource_path("presets", "demo.yaml")))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--views", default="augmented,clean")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: PyTorch's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    views = [v.strip() for v in args.views.split(",") if v.strip()]
    results: dict[str, list[tuple[float, float]]] = {view: [] for view in views}
    with tempfile.TemporaryDirectory() as runs:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for view in views:
                cfg = load_preset(args.preset, [*args.set, f"train.source_view={view}", f"train.seed={seed}"])
                start = time.perf_counter()
                summary = Trainer(cfg, Path(runs)).run().summary()
                wall = time.perf_counter() - start
                if summary.status != "finished":
                    raise SystemExit(f"{view} seed {seed}: {summary.status} {summary.message}")
                # the final epoch's score: without a held-out split the trainer chooses no best epoch
                results[view].append((summary.final_score, wall))
                print(f"seed {seed} {view:<10} final {100 * summary.final_score:.2f}%  {wall:.0f}s", flush=True)

    print()
    print("| source_view | final val acc % (mean ± std) | wall s / run |")
    print("|---|---|---|")
    for view, rows in results.items():
        fm, fs = stats([100 * r[0] for r in rows])
        print(f"| {view} | {fm:.2f} ± {fs:.2f} | {statistics.mean(r[1] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
