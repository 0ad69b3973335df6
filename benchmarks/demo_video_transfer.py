"""Does SSKT help a 3D target on the built-in video demo? The paper's largest effect is on video
(UCF101 from scratch: SSKT 52.2 % against DML 13.8 %); this is its offline stand-in.

    python benchmarks/demo_video_transfer.py [--seeds 3] [--threads 1] [--jobs 1] [--decode]
                                             [--preset resources/presets/demo-video.yaml] [--set key=value]...

A 3D target from scratch on ``demo-video`` (clips of a glyph that slides, turns or appears; the
class is both what the glyph is and how it moves), trained twice per seed from the same preset:
supervised (labels only), and SSKT with the shipped 2D shapes network as the source, which sees
each clip's centre frame. Same data, recipe and seed; only the method differs (the preset's
``method:`` section is replaced by ``{name: supervised}`` for the baseline, nothing else).

SSKT counts as ahead only when its mean final accuracy exceeds supervised's by more than the two
standard deviations added together. Prints every run, then mean ± std and wall time per run.
``--decode`` also prints clips/s of decoding from video files vs frame folders vs device-resident
clips (``video_decode.py``'s table, on synthetic 16-frame clips at 112 px).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from seed_stats import mean_std as stats


def _run(preset: str, overrides: list[str], runs: Path, threads: int | None = None) -> tuple[float, float]:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from sskt_engine import catalog
    from sskt_engine.config import load_preset
    from sskt_engine.trainer import Trainer

    catalog.load_builtins()

    cfg = load_preset(preset, overrides)
    start = time.perf_counter()
    summary = Trainer(cfg, runs).run().summary()
    if summary.status != "finished":
        raise SystemExit(f"{cfg.method.name} seed {cfg.train.seed}: {summary.status} {summary.message}")
    # the final epoch's accuracy: without a held-out split the trainer picks no best epoch (it would be
    # chosen on the test clips), so the final one is what both methods are compared on
    return summary.final_score, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="default: the shipped demo-video preset")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a shared machine)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preset override, both methods")
    parser.add_argument("--decode", action="store_true", help="also measure decoding throughput (video_decode.py)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in a process of its own (each with "
                        "--threads threads); wall times then include the competition for cores")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from sskt_engine import catalog
    from sskt_engine.resources import resource_path

    catalog.load_builtins()
    preset = args.preset or str(resource_path("presets", "demo-video.yaml"))
    # the baseline gets a method section of its own: the SSKT keys of the preset are not supervised's
    method_overrides = {"supervised": ["method={name: supervised}"], "sskt": ["method.name=sskt"]}
    results: dict[str, list[tuple[float, float]]] = {"supervised": [], "sskt": []}
    jobs = [(seed, method) for seed in range(args.seeds) for method in results]
    with tempfile.TemporaryDirectory() as runs:
        def report(seed: int, method: str, row: tuple[float, float]) -> None:
            results[method].append(row)
            print(f"seed {seed} {method:<10} final {100 * row[0]:.2f}%  {row[1]:.0f}s", flush=True)

        def overrides(seed: int, method: str) -> list[str]:
            return [*args.set, *method_overrides[method], f"train.seed={seed}"]

        if args.jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(_run, preset, overrides(seed, method), Path(runs), args.threads): (seed, method)
                           for seed, method in jobs}
                for future, (seed, method) in futures.items():
                    report(seed, method, future.result())
        else:
            for seed, method in jobs:
                report(seed, method, _run(preset, overrides(seed, method), Path(runs)))

    print()
    print(f"threads: {torch.get_num_threads()}; preset: {Path(preset).name}; overrides: {args.set or 'none'}")
    print("| method | final test acc % (mean ± std) | wall s / run (max) |")
    print("|---|---|---|")
    final = {}
    for method, rows in results.items():
        fm, fs = stats([100 * r[0] for r in rows])
        final[method] = (fm, fs)
        walls = [r[1] for r in rows]
        print(f"| {method} | {fm:.2f} ± {fs:.2f} | {statistics.mean(walls):.0f} ({max(walls):.0f}) |")
    gap = final["sskt"][0] - final["supervised"][0]
    margin = final["sskt"][1] + final["supervised"][1]
    verdict = "SSKT ahead" if gap > margin else "SSKT BEHIND" if -gap > margin else "NOT separated"
    print(f"\nSSKT - supervised = {gap:+.2f} points; sum of stds = {margin:.2f}: {verdict} ({args.seeds} seeds)")
    if args.decode:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from video_decode import decode_throughput, table  # benchmarks/ is not a package

        print()
        print(table(decode_throughput(clip_len=16, frame_side=112), 16, 112))


if __name__ == "__main__":
    main()
