"""How much the GUI costs a training run (not a timed test; prints its numbers).

1. Throughput: the demo run's training speed inside the app (MainWindow, live plots,
   events over a queued signal) divided by the same run headless (goal >= 0.97).
   Speed is measured the same way for both, from the trainer's own Progress events:
   images trained between the first and the last Progress event of the run, divided
   by the time between them (so data loading and model set-up are not counted).
2. Longest stall of the GUI thread during the run: a 10 ms QTimer measures its own
   lateness (goal: under 50 ms). Beside it, the CPU time the GUI thread itself spent in
   that longest gap and the most it spent in any gap (``time.thread_time``): on a machine
   busy with other work a stall is mostly waiting for a core, and these say how much of it
   was the window's own work. The load average is printed before and after.
3. The cost of one redraw of the live plots holding 100,000 points.

    python benchmarks/gui_overhead.py [--preset FILE] [--set train.epochs=3] [--repeats 2]

Runs offscreen unless a display is set. Headless and GUI runs alternate, so a machine
busy with something else affects both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FALLBACK_PRESET = {  # until resources/presets/demo.yaml ships
    "name": "gui-overhead",
    "target": {"arch": "resnet20"},
    "data": {"dataset": "demo"},
    "method": {"name": "supervised"},
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "schedule": "cosine", "log_every": 10},
}


def load_config(preset: Path | None, overrides: list[str]):
    import sskt_engine.catalog  # noqa: F401  (the schema reads the registries: fill them first)
    from sskt_engine.config import from_dict, load_preset

    if preset is None:
        demo = ROOT / "resources" / "presets" / "demo.yaml"
        preset = demo if demo.is_file() else None
    if preset is not None:
        return load_preset(preset, overrides=overrides)
    return from_dict(FALLBACK_PRESET, overrides=overrides)


def throughput(events: list, batch_size: int) -> float:
    """Images per second between the first and last Progress event."""
    from sskt_engine.events import Progress

    progress = [e for e in events if isinstance(e, Progress)]
    if len(progress) < 2:
        return float("nan")
    first, last = progress[0], progress[-1]
    elapsed = last.time - first.time
    return (last.global_step - first.global_step) * batch_size / elapsed if elapsed > 0 else float("nan")


def run_headless(cfg, runs_root: Path) -> float:
    from sskt_engine.trainer import Trainer

    events: list = []
    Trainer(cfg, runs_root=runs_root, on_event=events.append).run()
    return throughput(events, cfg.train.batch_size)


def run_in_app(cfg, runs_root: Path) -> tuple[float, float, float, float, float, int]:
    """(images/s, longest GUI-thread stall in ms, the GUI thread's CPU ms in that stall, its
    most CPU ms between two ticks, seconds after Start the stall began, live-plot redraws)."""
    from PySide6 import QtCore, QtWidgets

    from app.gc_guard import MainThreadGarbageCollector
    from app.main import configure_application
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.worker import running_workers
    from sskt_engine.trainer import Trainer

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    configure_application(app)
    collector = MainThreadGarbageCollector().start()
    with tempfile.TemporaryDirectory() as config_dir:
        os.environ["SSKT_STUDIO_CONFIG_DIR"] = config_dir
        window = MainWindow(AppSettings(), trainer_class=Trainer, runs_root=runs_root)
        window.resize(1480, 900)
        window.show()
        window.document.adopt(cfg, "benchmark")
        events: list = []
        window.controller.event.connect(events.append)

        interval_ms = 10
        worst = [0.0, 0.0, 0.0, 0.0]  # stall, CPU in that stall, most CPU in any gap, when (s after Start)
        last = [time.perf_counter(), time.thread_time()]
        started = [0.0]
        timer = QtCore.QTimer()
        timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        timer.setInterval(interval_ms)

        def tick() -> None:
            now, cpu = time.perf_counter(), time.thread_time()
            if window.controller.is_running():
                stall, busy = (now - last[0]) * 1000 - interval_ms, (cpu - last[1]) * 1000
                if stall > worst[0]:
                    worst[0], worst[1], worst[3] = stall, busy, last[0] - started[0]
                worst[2] = max(worst[2], busy)
            last[0], last[1] = now, cpu

        timer.timeout.connect(tick)
        loop = QtCore.QEventLoop()
        window.controller.busy_changed.connect(lambda busy: None if busy else loop.quit())
        # Let the window settle as a person would before pressing Start: first paint, and the
        # work it started in worker threads (runs list, parameter count) done and shown.
        settle_until = time.perf_counter() + 30
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        while running_workers() and time.perf_counter() < settle_until:
            app.processEvents()
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        timer.start()
        last[0], last[1] = time.perf_counter(), time.thread_time()
        started[0] = last[0]
        window.start_run()
        loop.exec()
        timer.stop()
        redraws = window.plots.redraws
        window.document._saved = window.document.raw
        window.close()
        window.deleteLater()
        app.processEvents()
        # processEvents() leaves deferred deletes alone: without this the window was destroyed
        # inside the next repeat's run (~70 ms of GUI-thread work right after its Start).
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    collector.stop()
    return throughput(events, cfg.train.batch_size), worst[0], worst[1], worst[2], worst[3], redraws


def redraw_cost_100k() -> float:
    """Milliseconds for one timer redraw + paint of a plot holding 100,000 points."""
    import numpy as np
    from PySide6 import QtWidgets

    from app.widgets.plots import LivePlots

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    plots = LivePlots()
    plots.resize(1100, 700)
    plots.show()
    plots._add_points([("loss", "train loss", 0.0, 1.0)])
    xs = np.linspace(0, 200, 100_000)[1:]
    plots.curves["train loss"].buffer.extend(xs, np.exp(-xs / 50) + np.random.default_rng(0).normal(0, 0.05, xs.size))
    times = []
    for _ in range(10):
        plots.curves["train loss"].dirty = True
        start = time.perf_counter()
        plots.redraw()
        plots.view.grab()
        app.processEvents()
        times.append((time.perf_counter() - start) * 1000)
    plots.close()
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", type=Path, help="preset to run (default: the demo)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=2, help="headless/GUI pairs to run (median reported)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for both runs (0: torch's default). On a busy machine 1 thread "
                             "gives steadier numbers: spinning thread pools suffer most from other load")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = load_config(args.preset, args.overrides)
    print(f"preset {cfg.name}: {cfg.method.name}, {cfg.target.arch} on {cfg.data.dataset}, "
          f"{cfg.train.epochs} epoch(s), batch {cfg.train.batch_size}, device {cfg.train.device}")
    print("load average at the start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    ratios, stalls = [], []
    with tempfile.TemporaryDirectory() as runs:
        for repeat in range(args.repeats):
            # Alternate which goes first, so warm-up and drifting machine load hit both alike.
            if repeat % 2 == 0:
                headless = run_headless(cfg, Path(runs))
                in_app, stall, stall_cpu, most_cpu, when, redraws = run_in_app(cfg, Path(runs))
            else:
                in_app, stall, stall_cpu, most_cpu, when, redraws = run_in_app(cfg, Path(runs))
                headless = run_headless(cfg, Path(runs))
            ratios.append(in_app / headless)
            stalls.append(stall)
            print(f"  pair {repeat + 1}: headless {headless:,.0f} img/s, in the app {in_app:,.0f} img/s "
                  f"(ratio {in_app / headless:.3f}), longest GUI stall {stall:.1f} ms {when:.1f} s after Start (GUI thread's own CPU in it "
                  f"{stall_cpu:.1f} ms; most CPU between two ticks {most_cpu:.1f} ms), {redraws} plot redraws, "
                  f"load {os.getloadavg()[0]:.2f}")
    ratio = statistics.median(ratios)
    stall = max(stalls)
    redraw = redraw_cost_100k()
    print(f"throughput in the app / headless: {ratio:.3f}  (goal >= 0.97) {'OK' if ratio >= 0.97 else 'BELOW GOAL'}")
    print(f"longest GUI-thread stall during the run: {stall:.1f} ms  (goal < 50 ms) "
          f"{'OK' if stall < 50 else 'ABOVE GOAL'}")
    print(f"one live-plot redraw at 100,000 points: {redraw:.1f} ms")
    print("load average at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
