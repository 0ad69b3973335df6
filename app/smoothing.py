"""Exponential moving average of a curve, as TensorBoard's smoothing slider draws it: each point is
``weight * previous + (1 - weight) * value``, debiased at the start (so the first points are not
pulled towards zero). numpy only, in blocks, so 100,000 points take milliseconds, not a Python loop."""

from __future__ import annotations

import numpy as np

BLOCK = 256  # weight**-BLOCK stays inside float64 (0.5**-256 is 1e77) for every weight offered (>= 0.5)


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """The debiased EMA of ``values``; ``weight`` 0 returns them unchanged."""
    values = np.asarray(values, dtype=np.float64)
    if weight <= 0 or len(values) == 0:
        return values
    if not 0 < weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
    out = np.empty_like(values)
    carry = 0.0
    powers = weight ** np.arange(BLOCK + 1)
    inverse = weight ** -np.arange(BLOCK, dtype=np.float64)
    for start in range(0, len(values), BLOCK):
        chunk = values[start:start + BLOCK]
        n = len(chunk)
        # y[k] = w^(k+1) * carry + (1 - w) * sum_j<=k w^(k-j) x[j]
        sums = np.cumsum(chunk * inverse[:n])
        block = powers[1:n + 1] * carry + (1 - weight) * powers[:n] * sums
        out[start:start + n] = block
        carry = block[-1]
    debias = 1.0 - weight ** np.arange(1, len(values) + 1)
    return out / debias
