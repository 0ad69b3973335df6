"""Peak resident memory of the demo run on CPU (goal <= 1.5 GB).

    python benchmarks/memory_demo.py [--set k=v]...

Runs `sskt train resources/presets/demo.yaml` in a child process and reads the child's
peak RSS from the kernel (getrusage), so the figure includes Python, torch and the data.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile

from sskt_engine.resources import resource_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "sskt_engine.cli", "train", str(resource_path("presets", "demo.yaml")),
                   "--runs-dir", runs, "--set", "train.device=cpu"]
        for item in args.set:
            command += ["--set", item]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(result.stderr[-2000:])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(result.stdout.strip().splitlines()[-1])
    print(f"peak resident memory of the demo run: {peak_kib / 1024:.0f} MiB (goal <= 1536 MiB)")


if __name__ == "__main__":
    main()
