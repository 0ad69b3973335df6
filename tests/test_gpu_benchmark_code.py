"""benchmarks/gpu_sskt.py can only measure on a CUDA GPU, which CI never has; its code path
(presets, source ensemble, both methods' steps) still runs here, so it cannot rot unseen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_code_path_runs_on_the_cpu():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_sskt.py"), "--check-on-cpu"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("code path OK on CPU (not a GPU figure): supervised ")
    assert " sskt " in result.stdout
