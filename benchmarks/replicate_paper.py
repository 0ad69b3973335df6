"""Replicate the SSKT paper's image rows with the shipped paper presets, and tabulate paper vs measured.

On a machine with the data and the weights (see README, "Replicating the paper"):

    .venv/bin/python benchmarks/replicate_paper.py --rows cifar10-resnet20,stl10-resnet20 --seeds 3 --out ~/sskt-paper

runs, for every chosen row and method, ``sskt compare <preset> --methods <method> --seeds N`` (KD after a
supervised teacher run of the row's ``teacher_arch``), one job per GPU at a time when there are several
(``--gpus 0,1,2,3``; default: every visible GPU, or one job on the CPU), and writes ``paper_vs_measured.md``
and ``.csv`` into ``--out``: the published figure, the measured mean ± std over the seeds, the difference
in points and in standard deviations. ``--rows all`` is every row; ``--list`` prints them.

    .venv/bin/python benchmarks/replicate_paper.py --check-on-cpu [--rows ...]

proves every chosen preset on this machine instead: it writes tiny stand-in files in the real formats
(``paper_standins``), runs ``sskt check`` on each preset (must pass) and trains one epoch of two steps
on the CPU (must finish), printing one line per preset and the seconds it took.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import io
import math
import os
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sskt_engine.paper_presets import PAPER_ROWS, PRESET_FOLDER, TEACHER_ROOT, PaperRow  # noqa: E402

PRESETS = ROOT / "resources" / Path(*PRESET_FOLDER)


def chosen_rows(text: str) -> list[PaperRow]:
    if text in ("", "all"):
        return list(PAPER_ROWS)
    known = {row.key: row for row in PAPER_ROWS}
    rows = []
    for key in (k.strip() for k in text.split(",") if k.strip()):
        if key not in known:
            raise SystemExit(f"unknown row {key!r}; rows: {', '.join(known)}")
        rows.append(known[key])
    return rows


def preset_path(row: PaperRow, method: str) -> Path:
    return PRESETS / f"{row.key}-{method}.yaml"


# ----------------------------------------------------------------------------- on a GPU machine

def _sskt(*args: str, env: dict[str, str], log: Path) -> str:
    """Run the CLI; returns the path on its last 'run: ' or 'study: ' line."""
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ sskt {' '.join(args)}\n")
        handle.flush()
        result = subprocess.run([sys.executable, "-m", "sskt_engine.cli", *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        handle.write(result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("run: ", "study: "))]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"sskt {args[0]} failed (exit {result.returncode}); see {log}")
    return lines[-1].split(": ", 1)[1]


def _job(row: PaperRow, method: str, args: argparse.Namespace, gpu: str | None) -> tuple[str, str, str]:
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    out = Path(args.out).expanduser()
    log = out / "logs" / f"{row.key}-{method}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    common = ["--runs-dir", str(out / "runs")] + [item for pair in (("--set", s) for s in args.set or [])
                                                  for item in pair]
    extra: list[str] = []
    if method == "kd":  # the teacher: the row's supervised preset with the teacher's architecture
        teacher = _sskt("train", str(preset_path(row, "supervised")), "--set", f"target.arch={row.teacher_arch}",
                        "--set", f"name=teacher-{row.dataset}-{row.teacher_arch}", *common, env=env, log=log)
        extra = ["--teacher", teacher]
    study = _sskt("compare", str(preset_path(row, method)), "--methods", method, "--seeds", str(args.seeds),
                  *extra, *common, env=env, log=log)
    return row.key, method, study


def run_on_gpus(args: argparse.Namespace) -> int:
    import torch

    from sskt_engine.paper_compare import paper_comparison
    from sskt_engine.study import load_study

    rows = chosen_rows(args.rows)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    jobs = [(row, m) for row in rows for m in row.figures if methods is None or m in methods]
    gpus = ([g.strip() for g in args.gpus.split(",")] if args.gpus else
            [str(i) for i in range(torch.cuda.device_count())]) or [None]
    free: queue.Queue = queue.Queue()
    for gpu in gpus:
        free.put(gpu)

    def on_free_gpu(row, method):
        gpu = free.get()
        try:
            return _job(row, method, args, gpu)
        finally:
            free.put(gpu)

    started = time.perf_counter()
    results, failures = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(gpus)) as pool:
        futures = {pool.submit(on_free_gpu, row, m): (row, m) for row, m in jobs}
        for future in concurrent.futures.as_completed(futures):
            row, method = futures[future]
            try:
                key, method, study = future.result()
                comparison = paper_comparison(load_study(Path(study))) or {}
                results.append((row, method, comparison, study))
                print(f"{key} {method}: done ({study})", flush=True)
            except Exception as exc:  # noqa: BLE001 - one failed job must not stop the others
                failures.append(f"{row.key} {method}: {exc}")
                print(f"{row.key} {method}: FAILED: {exc}", flush=True)
    write_tables(Path(args.out).expanduser(), results, time.perf_counter() - started)
    for failure in failures:
        print(f"failed: {failure}")
    return 1 if failures else 0


def _cell(mean, std) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def write_tables(out: Path, results, seconds: float) -> None:
    order = {(row.key, m): i for i, (row, m) in enumerate((r, m) for r in PAPER_ROWS for m in r.figures)}
    results = sorted(results, key=lambda r: order.get((r[0].key, r[1]), 0))
    lines = ["# SSKT paper vs this app", "", f"{len(results)} preset(s), {seconds / 3600:.1f} h in all. Measured: "
             "mean ± sample std over the seeds, on the test split at the final epoch.", "",
             "| row | method | paper | measured | difference | in std | study |", "|---|---|---:|---:|---:|---:|---|"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "method", "metric", "paper_mean", "paper_std", "runs", "measured_mean", "measured_std",
                     "difference", "difference_in_std", "study"])
    for row, method, c, study in results:
        diff = f"{c['difference']:+.2f}" if c.get("difference") is not None else "–"
        in_std = f"{c['difference_in_std']:+.1f}" if c.get("difference_in_std") is not None else "–"
        lines.append(f"| {row.title} | {method} | {_cell(c.get('paper_mean'), c.get('paper_std'))} | "
                     f"{_cell(c.get('measured_mean'), c.get('measured_std'))} | {diff} | {in_std} | {study} |")
        writer.writerow([row.key, method, c.get("metric", ""), c.get("paper_mean"), c.get("paper_std"),
                         c.get("runs"), c.get("measured_mean"), c.get("measured_std"), c.get("difference"),
                         c.get("difference_in_std"), study])
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_vs_measured.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "paper_vs_measured.csv").write_text(buffer.getvalue(), encoding="utf-8")
    print((out / "paper_vs_measured.md").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- proof on the CPU

def check_on_cpu(rows: list[PaperRow], methods: list[str] | None = None, workdir: Path | None = None,
                 verbose: bool = True) -> list[str]:
    """Every chosen preset on stand-in files: ``sskt check`` passes and one epoch of two steps trains.
    Returns the problems (empty: all proven)."""
    import torch

    import sskt_engine.catalog  # noqa: F401
    from paper_standins import write_standins
    from sskt_engine.config import load_preset
    from sskt_engine.data import load_dataset
    from sskt_engine.preset_check import check_experiment
    from sskt_engine.trainer import Trainer

    torch.set_num_threads(1)
    temporary = tempfile.TemporaryDirectory(prefix="sskt-paper-check-") if workdir is None else None
    root = Path(temporary.name) if temporary else workdir
    problems: list[str] = []
    saved = {key: os.environ.get(key) for key in ("TORCH_HOME", "SSKT_PLACES365_DIR")}
    try:
        needs_sources = any(row.figures.get("sskt") is not None or "sskt" in row.figures for row in rows)
        standins = write_standins(root, {row.dataset for row in rows}, imagenet=needs_sources, places=needs_sources)
        os.environ.update(standins.environ)
        teachers: dict[str, str] = {}
        for row in rows:
            for method in row.figures:
                if methods is not None and method not in methods:
                    continue
                started = time.perf_counter()
                overrides = [f"data.root={standins.data_root}", "train.device=cpu", "train.epochs=1",
                             "train.log_every=1", "data.device_resident=off"]
                base = load_preset(preset_path(row, method), overrides)
                train_size = len(load_dataset(base.data, base.train.seed).train)
                overrides.append(f"train.batch_size={math.ceil(train_size / 2)}")  # one epoch = two steps
                if method == "kd":
                    key = f"{row.dataset}-{row.teacher_arch}"
                    if key not in teachers:  # the teacher run the preset names, trained on the stand-ins
                        teacher_cfg = load_preset(preset_path(row, "supervised"), overrides + [
                            f"target.arch={row.teacher_arch}", f"name=teacher-{key}"])
                        teachers[key] = str(Trainer(teacher_cfg, root / "teachers").run().path)
                    overrides.append(f"sources[0].path={teachers[key]}")
                cfg = load_preset(preset_path(row, method), overrides)
                report = check_experiment(cfg)
                if not report.ok:
                    problems += [f"{row.key}-{method}: check: {p}" for p in report.problems]
                    continue
                steps: list[int] = []
                folder = Trainer(cfg, root / "runs", lambda e: steps.append(1) if type(e).__name__ == "Progress"
                                 else None).run()
                summary = folder.summary()
                if summary.status != "finished" or summary.epochs_completed != 1:
                    problems.append(f"{row.key}-{method}: training ended {summary.status}: {summary.message}")
                elif verbose:
                    print(f"{row.key}-{method}: check ok, trained {len(steps)} step(s) on the CPU "
                          f"[{time.perf_counter() - started:.1f} s]", flush=True)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if temporary:
            temporary.cleanup()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="all", help="comma-separated row keys, or all (default)")
    parser.add_argument("--methods", help="only these methods of each row (default: every method of the row)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="~/sskt-paper", help="folder for runs, logs and paper_vs_measured.md")
    parser.add_argument("--gpus", help="GPU indices to run on in parallel, e.g. 0,1 (default: all visible)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key of every preset")
    parser.add_argument("--check-on-cpu", action="store_true",
                        help="prove every chosen preset on tiny stand-in files instead of replicating")
    parser.add_argument("--list", action="store_true", help="list the rows and their presets")
    args = parser.parse_args()
    if args.list:
        for row in PAPER_ROWS:
            figures = ", ".join(f"{m} {v if v is not None else '-'}" for m, v in row.figures.items())
            print(f"{row.key:<24} {row.title} ({figures})")
        return 0
    if args.check_on_cpu:
        methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
        started = time.perf_counter()
        problems = check_on_cpu(chosen_rows(args.rows), methods)
        for problem in problems:
            print(f"problem: {problem}")
        print(f"{'all presets proven' if not problems else f'{len(problems)} problem(s)'} in "
              f"{time.perf_counter() - started:.0f} s")
        return 1 if problems else 0
    print(f"KD teachers go to {args.out}/runs (the presets' default {TEACHER_ROOT} is used by plain `sskt compare`)")
    return run_on_gpus(args)


if __name__ == "__main__":
    sys.exit(main())
