"""What the sources cost: training-epoch time of SSKT against supervised training, per source view.

    python benchmarks/source_cost.py --threads 1 [--source-arch resnet18 --source-size 96] [--epochs 3]
                                     [--rounds 1] [--levers] [--device cpu]

The target is a ResNet-20 at 32 px on the built-in demo data; the source a torchvision network with
random weights (timing does not depend on them) at ``--source-size`` px, loaded as a checkpoint
file like any user's. Every scenario is a real ``Trainer`` run; the time of each training epoch
is measured around the trainer's own epoch (validation excluded, equal for all), and the
soft-label pass before the first epoch of a cached run is added to its first epoch:

* supervised, and SSKT with ``train.source_view: augmented`` (the sources run every step);
* SSKT with ``source_view: clean``: first epoch (the cache is filled) and later epochs (read);
* augmentation off: supervised and SSKT (cached, whatever the view).

Prints SSKT ÷ supervised for each (goals: cached later epochs <= 1.15, uncached <= 1.5 on CPU),
in the process's CPU time (with one thread: the work done, which other processes sharing the
machine distort far less) and in wall-clock time, the load average, the source's compute
against the target's, and with ``--levers`` the source forward pass eager vs channels-last vs
``torch.compile``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import sskt_engine.catalog  # noqa: F401  registers the built-in methods, datasets and sources
from sskt_engine.config import loads_preset
from sskt_engine.trainer import Trainer

PRESET = """\
name: source-cost
target: {{arch: resnet20}}
sources: [{{kind: checkpoint, arch: {arch}, path: '{path}', input_size: {size}, name: source}}]
data: {{dataset: demo, labels_per_class: {per_class}, val_split: 0.05}}
method: {{name: sskt}}
train: {{epochs: {epochs}, batch_size: {batch}, lr: 0.05, schedule: constant, device: {device}, log_every: 1000,
        seed: 0}}
"""

SCENARIOS = (  # (name, method, source_view, augment)
    ("supervised", "supervised", "augmented", True),
    ("sskt augmented", "sskt", "augmented", True),
    ("sskt clean", "sskt", "clean", True),
    ("supervised, no augmentation", "supervised", "augmented", False),
    ("sskt, no augmentation", "sskt", "augmented", False),
)
BASELINE = {True: "supervised", False: "supervised, no augmentation"}


class TimedTrainer(Trainer):
    """Times each training epoch and the soft-label pass, nothing else (the trainer's own
    methods, so the loop measured is the one users run)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch_s: list[tuple[float, float]] = []  # (wall, process CPU) seconds
        self.fill_s = (0.0, 0.0)

    def _fill_soft_labels(self, setup):
        start = _now()
        try:
            return super()._fill_soft_labels(setup)
        finally:
            self.fill_s = _since(start)

    def _train_epoch(self, setup, epoch, global_step):
        start = _now()
        try:
            return super()._train_epoch(setup, epoch, global_step)
        finally:
            self.epoch_s.append(_since(start))


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds since ``start``. On a machine others share, wall time grows with
    their load; the process's CPU time (one thread: the work itself) much less."""
    wall, cpu = _now()
    return wall - start[0], cpu - start[1]


def forward_flops(module: torch.nn.Module, size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module.eval()(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def run_scenario(args, path: Path, runs: Path, method: str, view: str, augment: bool) -> dict[str, float]:
    """Seconds of the first epoch (with the soft-label pass) and the median later epoch, wall and CPU."""
    cfg = loads_preset(PRESET.format(arch=args.source_arch, path=path, size=args.source_size,
                                     per_class=args.images_per_class, epochs=args.epochs, batch=args.batch_size,
                                     device=args.device),
                       overrides=[f"method.name={method}", f"train.source_view={view}", f"data.augment={augment}"])
    trainer = TimedTrainer(cfg, runs)
    folder = trainer.run()
    if folder.summary().status != "finished":
        raise SystemExit(f"{method} {view}: {folder.summary().status} {folder.summary().message}")
    out = {}
    for i, kind in enumerate(("wall", "cpu")):
        out[f"first {kind}"] = trainer.fill_s[i] + trainer.epoch_s[0][i]
        later = [e[i] for e in trainer.epoch_s[1:]]
        out[f"later {kind}"] = statistics.median(later) if later else float("nan")
    return out


def levers(args, module: torch.nn.Module) -> None:
    """The source's forward pass on one batch, each way; interleaved repeats, best of each."""
    batch = torch.rand(args.batch_size, 3, args.source_size, args.source_size)
    module = module.eval().requires_grad_(False)
    ways = {"eager": (module, batch)}
    channels_last = copy.deepcopy(module).to(memory_format=torch.channels_last)
    ways["channels_last"] = (channels_last, batch.contiguous(memory_format=torch.channels_last))
    start = time.perf_counter()
    try:
        compiled = torch.compile(copy.deepcopy(module), dynamic=False)
        with torch.inference_mode():
            compiled(batch)
        ways["torch.compile"] = (compiled, batch)
        print(f"torch.compile: compiled in {time.perf_counter() - start:.0f} s")
    except Exception as exc:  # noqa: BLE001  no compiler here: the lever is unavailable, say why
        print(f"torch.compile: unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    best = {name: [float("inf"), float("inf")] for name in ways}
    with torch.inference_mode():
        for net, x in ways.values():
            net(x)  # warm up
        for _ in range(args.lever_repeats):
            for name, (net, x) in ways.items():
                start = _now()
                net(x)
                best[name] = [min(b, t) for b, t in zip(best[name], _since(start))]
    print(f"\nsource forward, batch {args.batch_size} at {args.source_size} px (best of {args.lever_repeats}):")
    for name, (wall, cpu) in best.items():
        print(f"  {name:<14} wall {wall * 1000:8.1f} ms ({wall / best['eager'][0]:.2f}x eager)   "
              f"CPU {cpu * 1000:8.1f} ms ({cpu / best['eager'][1]:.2f}x eager)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: PyTorch's default)")
    parser.add_argument("--source-arch", default="resnet18")
    parser.add_argument("--source-size", type=int, default=96)
    parser.add_argument("--images-per-class", type=int, default=100, help="demo training images per class (6 classes)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every scenario, interleaved; medians reported")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--levers", action="store_true", help="also time channels-last and torch.compile")
    parser.add_argument("--lever-repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated scenario names to run (default: all; 'none' "
                        "with --levers: only the levers)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import torchvision
    from safetensors.torch import save_file

    from sskt_engine.models import build_architecture

    torch.manual_seed(0)
    source = torchvision.models.get_model(args.source_arch, weights=None)
    ratio = forward_flops(source, args.source_size) / forward_flops(build_architecture("resnet20", 6), 32)
    print(f"source {args.source_arch} at {args.source_size} px: {ratio:.1f}x the forward compute of resnet20 at 32 px; "
          f"threads {torch.get_num_threads()}; load average before {os.getloadavg()[0]:.1f}")
    wanted = [s for s in SCENARIOS if not args.only or s[0] in args.only.split(",")]
    times: dict[str, list[dict[str, float]]] = {s[0]: [] for s in wanted}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "source.safetensors"
        save_file(source.state_dict(), str(path))
        for _ in range(args.rounds):
            for name, method, view, augment in wanted:
                row = run_scenario(args, path, Path(tmp) / "runs", method, view, augment)
                times[name].append(row)
                print(f"  {name:<28} first epoch {row['first wall']:7.2f} s wall {row['first cpu']:7.2f} s CPU   "
                      f"later epochs {row['later wall']:7.2f} s wall {row['later cpu']:7.2f} s CPU   "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    medians = {name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
               for name, rows in times.items() if rows}
    for kind in ("cpu", "wall"):
        print(f"\n{'process CPU' if kind == 'cpu' else 'wall-clock'} seconds per training epoch "
              f"(median of {args.rounds} round(s)):\n")
        print("| scenario | first epoch s | later epochs s | ÷ supervised, first | ÷ supervised, later |")
        print("|---|---|---|---|---|")
        for name, method, view, augment in wanted:
            first, later = medians[name][f"first {kind}"], medians[name][f"later {kind}"]
            base = medians.get(BASELINE[augment], {}).get(f"later {kind}")
            ratios = f"{first / base:.2f} | {later / base:.2f}" if base else " | "
            print(f"| {name} | {first:.2f} | {later:.2f} | {ratios} |")
    if wanted:
        print(f"\nratios are against the supervised run's later epochs with the same augmentation; "
              f"load average after {os.getloadavg()[0]:.1f}")
    if args.levers:
        levers(args, source)


if __name__ == "__main__":
    main()
