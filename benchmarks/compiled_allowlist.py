"""How many ordinary networks pass the compiled-file checks: every torchvision classification
model (or those named) scripted, traced and exported, each file read back through the same
checks a ``compiled`` source gets (``sskt_engine.model_files``). Prints one line per model and
the operators the allowlist lacks, if any. Slow (minutes per large model on a CPU):

    OMP_NUM_THREADS=1 python benchmarks/compiled_allowlist.py resnet18 mobilenet_v3_small
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sskt_engine.errors import SourceError  # noqa: E402
from sskt_engine.model_files import check_compiled, load_compiled  # noqa: E402


def _saved(model: torch.nn.Module, how: str, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if how == "script":
            torch.jit.save(torch.jit.script(model), buffer)
        elif how == "trace":
            torch.jit.save(torch.jit.trace(model, x, check_trace=False), buffer)
        else:
            torch.export.save(torch.export.export(model, (x,)), buffer)
    return buffer.getvalue()


def main() -> int:
    import torchvision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="torchvision model names (default: all classification models)")
    args = parser.parse_args()
    names = args.models or torchvision.models.list_models(module=torchvision.models)
    refused: dict[str, list[str]] = {}
    for name in names:
        model = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
        side = 299 if "inception" in name else 224 if any(k in name for k in ("vit", "swin", "maxvit")) else 64
        x = torch.zeros(1, 3, side, side)
        outcome = []
        for how in ("script", "trace", "export"):
            try:
                data = _saved(model, how, x)
            except Exception as exc:  # noqa: BLE001  torch cannot save this model this way: not ours to judge
                outcome.append(f"{how}: not saved ({type(exc).__name__})")
                continue
            try:
                load_compiled(check_compiled(data, Path(f"{name}.{how}")))
                outcome.append(f"{how}: passes")
            except SourceError as exc:
                outcome.append(f"{how}: REFUSED")
                refused.setdefault(name, []).append(str(exc))
        print(f"{name:28s} " + "; ".join(outcome), flush=True)
    for name, reasons in refused.items():
        for reason in reasons:
            print(f"refused {name}: {reason}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
