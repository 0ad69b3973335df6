"""GPU throughput: SSKT (ResNet20 target at 32 px, ResNet50 source fed at 74 px) against
supervised ResNet20, with AMP, with and without torch.compile (goal: SSKT step <= 1.3x
the supervised step).

    python benchmarks/gpu_sskt.py [--steps 100] [--batch 128] [--write-readme]
    python benchmarks/gpu_sskt.py --check-on-cpu     # the same code path, a few CPU steps, no figures

Without a CUDA GPU it prints why and exits 0 (``--check-on-cpu`` proves the wiring there). The source has random weights: throughput
does not depend on what the weights are, and nothing can be downloaded here.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import torch
import torchvision

from sskt_engine.config import loads_preset
from sskt_engine.data.batches import Batch
from sskt_engine.methods import METHODS
from sskt_engine.methods.base import MethodContext
from sskt_engine.sources import IMAGENET_MEAN, IMAGENET_STD, FrozenSource, SourceEnsemble

PRESET = "name: gpu\ntarget: {arch: resnet20}\nmethod: {name: supervised}\n" \
         "train: {epochs: 1, batch_size: 128, lr: 0.1, device: cuda, amp: true}\n"


def images_per_second(method_name: str, compile_model: bool, steps: int, batch: int,
                      device: torch.device = torch.device("cuda")) -> float:
    cuda = device.type == "cuda"
    overrides = [f"method.name={method_name}", f"train.batch_size={batch}"]
    if not cuda:
        overrides += ["train.device=cpu", "train.amp=false"]
    # SSKT's preset must name its source to validate; the network itself is built below
    text = PRESET + ("sources: [{kind: torchvision, arch: resnet50}]\n" if method_name == "sskt" else "")
    cfg = loads_preset(text, overrides=overrides)
    ensemble = None
    if method_name == "sskt":
        source = torchvision.models.resnet50().eval().requires_grad_(False)
        ensemble = SourceEnsemble([FrozenSource("resnet50", source, 1000, 74, IMAGENET_MEAN, IMAGENET_STD, None,
                                                "random weights")]).to(device)
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    ctx = MethodContext(cfg, 10, tuple(map(str, range(10))), 32, device, ensemble, scaler=scaler)
    method = METHODS.get(method_name).build(ctx)
    if compile_model:
        for net in method.networks.values():
            net.backbone.compile()
    pixels = torch.rand(batch, 3, 32, 32, device=device)
    images = (pixels - 0.5) / 0.25
    labels = torch.randint(0, 10, (batch,), device=device)
    fixed = Batch(pixels, images, labels, torch.arange(batch, device=device))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(10 if cuda else 1):  # warm-up (and compilation)
        method.train_step(fixed, 0)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        method.train_step(fixed, 0)
    sync()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--check-on-cpu", action="store_true",
                        help="run the benchmark's code for a few steps on the CPU (no AMP, no compile) to check it")
    args = parser.parse_args()
    if args.check_on_cpu:
        cpu = torch.device("cpu")
        rates = {m: images_per_second(m, False, 2, 8, cpu) for m in ("supervised", "sskt")}
        print("code path OK on CPU (not a GPU figure): " + ", ".join(f"{m} {r:.0f} img/s" for m, r in rates.items()))
        return
    if not torch.cuda.is_available():
        print("skipped: no CUDA GPU on this machine (this benchmark measures GPU throughput only)")
        return
    name = torch.cuda.get_device_name()
    rows = []
    for compile_model in (False, True):
        sup = images_per_second("supervised", compile_model, args.steps, args.batch)
        sskt = images_per_second("sskt", compile_model, args.steps, args.batch)
        rows.append(f"| {name} | {'yes' if compile_model else 'no'} | {sup:,.0f} | {sskt:,.0f} | {sup / sskt:.2f} |")
    table = "\n".join(["| GPU | torch.compile | supervised img/s | SSKT img/s | SSKT step / supervised step |",
                       "|---|---|---|---|---|", *rows])
    print(table)
    if args.write_readme:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        text = readme.read_text(encoding="utf-8")
        block = f"<!-- gpu-benchmark -->\n{table}\n<!-- /gpu-benchmark -->"
        text = re.sub(r"<!-- gpu-benchmark -->.*?<!-- /gpu-benchmark -->", block, text, flags=re.S)
        readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
